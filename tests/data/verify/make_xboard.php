<?php
// Reference vectors for XBoard's payment schemes (epay_md5, mgate_md5,
// alipay_rsa2, btcpay, coinbase, coinpayments), signed by PHP itself.
//
//   php tests/data/verify/make_xboard.php   (Debian's php-cli 8.2, openssl)
//
// Writes xboard.jsonl and alipay_public*.{pem,b64} next to this file. The
// RSA key is a throw-away one made by `openssl genrsa` in a temporary
// directory; only its public half is kept.
//
// What XBoard does to a notify before a plugin sees it is rebuilt here from
// PHP's own functions: parse_str (which is what PHP's SAPI does for the query
// and a urlencoded POST body), json_decode, preg_replace (PCRE, Unicode),
// ksort, http_build_query, urldecode, stripslashes, md5, hash_hmac,
// openssl_sign. The Laravel glue around them is a few lines that follow
// Laravel 12 (packagist is out of reach from here):
//   - Request::input(): $inputSource->all() + $query->all(), the source being
//     (array) json_decode($content ?: '[]', true) when Content-Type contains
//     "/json" or "+json", else the parsed form body;
//   - TrimStrings with XBoard's except list (password, password_confirmation,
//     encrypted_data, signature) and Str::trim; ConvertEmptyStringsToNull;
//     both recursing into arrays with "parent.child" keys.
// What each plugin then signs follows its notify() in XBoard's plugins-core.
// Every "ok" vector is also checked here with that plugin's own test.

mt_srand((int) (getenv("VECTORS_SEED") ?: 31));
const NOW = 1767225600; // 2026-01-01T00:00:00Z
const EPAY_KEY = 'Kq3mT8vXe2pL9sWd';
const MGATE_KEY = 'mgate-app-secret-7f1c';
const BTCPAY_KEY = 'btcpay webhook key';
const COINBASE_KEY = 'coinbase-shared-secret';
const COINPAYMENTS_KEY = 'ipn secret 42';
const XBOARD_UNTRIMMED = ['password', 'password_confirmation', 'encrypted_data', 'signature'];
const LARAVEL_INVISIBLE = '\x{0009}\x{0020}\x{00A0}\x{00AD}\x{034F}\x{061C}\x{115F}\x{1160}\x{17B4}\x{17B5}\x{180E}\x{2000}\x{2001}\x{2002}\x{2003}\x{2004}\x{2005}\x{2006}\x{2007}\x{2008}\x{2009}\x{200A}\x{200B}\x{200C}\x{200D}\x{200E}\x{200F}\x{202F}\x{205F}\x{2060}\x{2061}\x{2062}\x{2063}\x{2064}\x{2065}\x{206A}\x{206B}\x{206C}\x{206D}\x{206E}\x{206F}\x{3000}\x{2800}\x{3164}\x{FEFF}\x{FFA0}\x{1D159}\x{1D173}\x{1D174}\x{1D175}\x{1D176}\x{1D177}\x{1D178}\x{1D179}\x{1D17A}\x{E0020}';

$dir = __DIR__;
$out = [];

// ---- Laravel, as XBoard runs it -------------------------------------------

function str_trim(string $value): string
{
    $set = '[\s' . LARAVEL_INVISIBLE . " \n\r\t\v\0" . ']';
    return preg_replace('~^' . $set . '+|' . $set . '+$~u', '', $value) ?? trim($value);
}

function middleware(array $data, string $prefix = ''): array
{
    foreach ($data as $k => $v) {
        $key = $prefix . $k;
        if (is_array($v)) {
            $data[$k] = middleware($v, $key . '.');
            continue;
        }
        if (is_string($v) && !in_array($key, XBOARD_UNTRIMMED, true)) {
            $v = str_trim($v);
        }
        $data[$k] = $v === '' ? null : $v;
    }
    return $data;
}

function laravel_input(?string $query, ?string $contentType, string $body): array
{
    $q = [];
    if ($query !== null) {
        parse_str($query, $q);
    }
    $type = $contentType ?? '';
    $b = [];
    if (str_contains($type, '/json') || str_contains($type, '+json')) {
        $b = (array) json_decode($body ?: '[]', true);
    } elseif (strtolower(preg_split('/[;, ]/', $type)[0]) === 'application/x-www-form-urlencoded') {
        parse_str($body, $b);
    }
    return middleware($b) + middleware($q);
}

// ---- What each plugin signs (XBoard plugins-core, notify) ------------------

function epay_md5(array $p, string $key): string
{
    unset($p['sign'], $p['sign_type']);
    ksort($p);
    return md5(stripslashes(urldecode(http_build_query($p))) . $key);
}

function mgate_md5(array $p, string $key): string
{
    unset($p['sign']);
    ksort($p);
    return md5(http_build_query($p) . $key);
}

function alipay_text(array $p): string
{
    unset($p['sign'], $p['sign_type']);
    ksort($p);
    $pairs = [];
    foreach ($p as $k => $v) {
        if (is_array($v)) {
            throw new RuntimeException('an array value: the plugin fails');
        }
        $pairs[] = $k . '=' . $v;
    }
    return implode('&', $pairs);
}

function coinpayments_hmac(array $p, string $key): string
{
    ksort($p);
    return hash_hmac('sha512', stripslashes(http_build_query($p)), trim($key));
}

// ---- Vectors --------------------------------------------------------------

function vector(array $v): array
{
    $base = ['method' => 'POST', 'query' => null, 'content_type' => null, 'headers' => [], 'body' => '', 'now' => NOW, 'expect' => 'ok'];
    $v = array_merge($base, $v);
    if (!mb_check_encoding($v['body'], 'UTF-8')) {
        $v['body_b64'] = base64_encode($v['body']);
        unset($v['body']);
    }
    return $v;
}

/// A notify whose parameters (without sign) are `$query` and `$body`; `$where`
/// says whether the sign goes to the query or the body.
function param_vector(string $scheme, string $name, ?string $query, ?string $type, string $body, string $where, callable $sign, array $extra = []): array
{
    $sig = $sign(laravel_input($query, $type, $body));
    $append = fn (?string $s, string $pair) => ($s === null || $s === '') ? $pair : $s . '&' . $pair;
    $pairs = $extra['sign_pairs'] ?? ['sign=' . urlencode($sig) . ($scheme === 'epay_md5' ? '&sign_type=MD5' : '')];
    foreach ($pairs as $pair) {
        if ($where === 'query') {
            $query = $append($query, $pair);
        } else {
            $body = $append($body, $pair);
        }
    }
    unset($extra['sign_pairs']);
    return vector(array_merge(['name' => $name, 'scheme' => $scheme, 'query' => $query, 'content_type' => $type, 'body' => $body, 'method' => $query !== null && $body === '' ? 'GET' : 'POST'], $extra));
}

$form = 'application/x-www-form-urlencoded';
$epay = fn (array $p) => epay_md5($p, EPAY_KEY);
$mgate = fn (array $p) => mgate_md5($p, MGATE_KEY);
$epayKeys = ['secrets' => [EPAY_KEY]];
$mgateKeys = ['secrets' => [MGATE_KEY]];

// EPay: the shapes a notify takes.
$q = 'pid=1001&trade_no=2026010112000001&out_trade_no=202601011200001234&type=alipay&name=202601011200001234&money=10.00&trade_status=TRADE_SUCCESS';
$cases = [
    ['get query', $q, null, '', 'query'],
    ['post form', null, $form, $q, 'body'],
    ['post form, charset parameter', null, 'Application/X-WWW-Form-Urlencoded; charset=UTF-8', $q, 'body'],
    ['leading and trailing spaces (trimmed by TrimStrings)', $q . '&param=%20%20vip%20plan%20', null, '', 'query'],
    ['empty fields (null, left out by http_build_query)', $q . '&param=&attach=%20', null, '', 'query'],
    ['plus and %20 are spaces, %2B a plus', $q . '&param=a+b%20c%2Bd', null, '', 'query'],
    ['non-ASCII name', 'pid=1001&out_trade_no=42&name=%E8%AE%A2%E9%98%85%E5%A5%97%E9%A4%90&money=1', null, '', 'query'],
    ['raw non-ASCII in the form body', null, $form, "pid=1001&out_trade_no=42&name=\xE8\xAE\xA2\xE9\x98\x85&money=1", 'body'],
    ['& and = inside values', $q . '&param=a%26b%3Dc', null, '', 'query'],
    ['backslashes and quotes (stripslashes)', $q . '&param=%5C%27quoted%5C%27+%5C%5C+%5C0', null, '', 'query'],
    ['unicode spaces trimmed, NBSP and zero-width', $q . '&param=%C2%A0x%E2%80%8B', null, '', 'query'],
    ['invalid UTF-8 trimmed by PHP trim', $q . '&param=%FF%20', null, '', 'query'],
    ['"signature" is not trimmed', $q . '&signature=+padded+', null, '', 'query'],
    ['body wins over query', 'money=99.00&pid=1001', $form, 'money=10.00&out_trade_no=42', 'body'],
    ['array parameter', $q . '&extra[]=1&extra[k]=v&extra[n][]=%20x', null, '', 'query'],
    ['dots and spaces in names', $q . '&a.b=1&c+d=2&+lead=3', null, '', 'query'],
    ['duplicate parameter, the last wins', $q . '&money=1.00&money=10.00', null, '', 'query'],
    ['json body', null, 'application/json', '{"pid":"1001","out_trade_no":"42","money":" 10.00 ","n":7,"ok":true,"off":false,"none":null,"empty":"","nest":{"a":" b ","c":[1,"2"]}}', 'query'],
    ['json body with charset', 'x=1', 'application/json; charset=utf-8', '{"pid":"1001","money":"1"}', 'query'],
    ['invalid json body adds nothing', $q, 'application/json', '{"pid":', 'query'],
    ['text body adds nothing', $q, 'text/plain', 'pid=9999', 'query'],
];
foreach ($cases as [$name, $query, $type, $body, $where]) {
    $out[] = param_vector('epay_md5', "epay: $name", $query, $type, $body, $where, $epay, $epayKeys);
}

// EPay: refusals.
$out[] = param_vector('epay_md5', 'epay: wrong key', $q, null, '', 'query', fn ($p) => epay_md5($p, 'not the key'), $epayKeys + ['expect' => 'bad_signature']);
$v = param_vector('epay_md5', 'epay: changed amount', $q, null, '', 'query', $epay, $epayKeys + ['expect' => 'bad_signature']);
$v['query'] = str_replace('money=10.00', 'money=0.01', $v['query']);
$out[] = $v;
$out[] = vector(['name' => 'epay: no sign', 'scheme' => 'epay_md5', 'method' => 'GET', 'query' => $q, 'expect' => 'missing'] + $epayKeys);
$out[] = vector(['name' => 'epay: empty sign', 'scheme' => 'epay_md5', 'method' => 'GET', 'query' => $q . '&sign=+', 'expect' => 'missing'] + $epayKeys);
$out[] = param_vector('epay_md5', 'epay: upper-case sign (PHP compares text)', $q, null, '', 'query', fn ($p) => strtoupper(epay_md5($p, EPAY_KEY)), $epayKeys + ['expect' => 'malformed']);
$out[] = param_vector('epay_md5', 'epay: sign as an array', $q, null, '', 'query', $epay, $epayKeys + ['expect' => 'malformed', 'sign_pairs' => ['sign[]=x']]);
$out[] = param_vector('epay_md5', 'epay: rotation, the second key', $q, null, '', 'query', $epay, ['secrets' => ['old key', EPAY_KEY]]);

// Mgate: sign_type stays signed; no urldecode or stripslashes.
$mq = 'app_id=mg1&out_trade_no=42&trade_no=T9&total_amount=1000&status=paid';
$cases = [
    ['post form', null, $form, $mq, 'body'],
    ['sign_type stays in what is signed', null, $form, $mq . '&sign_type=MD5', 'body'],
    ['encoded values stay encoded', null, $form, $mq . '&note=a+b%26c%5C', 'body'],
    ['spaces trimmed and empty fields dropped', null, $form, $mq . '&note=%20x%20&empty=', 'body'],
    ['json body', null, 'application/json', '{"app_id":"mg1","out_trade_no":"42","total_amount":1000,"status":"paid"}', 'query'],
];
foreach ($cases as [$name, $query, $type, $body, $where]) {
    $out[] = param_vector('mgate_md5', "mgate: $name", $query, $type, $body, $where, $mgate, $mgateKeys);
}
$out[] = param_vector('mgate_md5', 'mgate: signed the EPay way (urldecoded)', null, $form, $mq . '&note=a+b', 'body', fn ($p) => md5(urldecode(http_build_query((function ($p) { unset($p['sign']); ksort($p); return $p; })($p))) . MGATE_KEY), $mgateKeys + ['expect' => 'bad_signature']);
$out[] = vector(['name' => 'mgate: no sign', 'scheme' => 'mgate_md5', 'content_type' => $form, 'body' => $mq, 'expect' => 'missing'] + $mgateKeys);

// Randomised parameters: PHP's parsing and encoding against hookgate's.
function pick(array $a) { return $a[mt_rand(0, count($a) - 1)]; }
function random_name(bool $arrays): string
{
    $tail = ['a', 'b', 'z', 'Q', '_', '-', '.', '+', '%20', '%2E', '%5F', '%C3%A9', '1', '9', '%25', '%zz', '~', '%7E'];
    if ($arrays) {
        array_push($tail, '[', ']', '[]', '[x]', '[0]', '[1]', '[%20]', '%5B', '%5D', '[a.b]', '[+]', '[%09]', '[+x]', '[-1]', '[[', ']]', '%00', '[%00]', '[01]');
    }
    $name = pick(['a', 'b', 'c', 'm', 'n', 'x', 'y', 'Z', 'k']);
    for ($i = mt_rand(0, 5); $i > 0; $i--) {
        $name .= pick($tail);
    }
    return $name;
}
function random_value(): string
{
    $pieces = ['a', 'Z', '0', '9', '+', '%20', '%2B', '%26', '%3D', '%25', '%', '%zz', '%5C', '%5C0', '%5C%5C', '%27', '%22',
        '%E4%B8%AD', '%C2%A0', '%E2%80%8B', '%E3%80%80', '%FF', '%09', '%0A', '%00', '=', '.', '-', '~', '*', '/', ':', ','];
    $value = '';
    for ($i = mt_rand(0, 6); $i > 0; $i--) {
        $value .= pick($pieces);
    }
    return $value;
}
function random_pairs(bool $arrays): string
{
    $pairs = [];
    for ($i = mt_rand(1, 7); $i > 0; $i--) {
        $pairs[] = mt_rand(0, 9) === 0 ? random_name($arrays) : random_name($arrays) . '=' . random_value();
    }
    return implode('&', $pairs);
}
function random_json(int $depth = 0)
{
    $kind = mt_rand(0, $depth > 1 ? 5 : 7);
    return match ($kind) {
        0 => null, 1 => (bool) mt_rand(0, 1), 2 => mt_rand(-1000, 1000),
        3, 4, 5 => pick([' padded ', '', ' ', 'plain', "tab\t", "\u{00a0}nbsp", 'a&b=c', 'back\\slash', '中文', '+']),
        6 => array_map(fn () => random_json($depth + 1), range(0, mt_rand(0, 3))),
        7 => (function () use ($depth) { $o = []; for ($i = mt_rand(0, 3); $i > 0; $i--) { $o[pick(['k', 'v', ' s', 'a.b', 'x y'])] = random_json($depth + 1); } return $o; })(),
    };
}
for ($n = 0; $n < (int) (getenv("VECTORS_RANDOM") ?: 200); $n++) {
    $scheme = $n % 4 === 3 ? 'mgate_md5' : 'epay_md5';
    $sign = $scheme === 'epay_md5' ? $epay : $mgate;
    $keys = $scheme === 'epay_md5' ? $epayKeys : $mgateKeys;
    $shape = $n % 5;
    if ($shape === 4) {
        $doc = [];
        for ($i = mt_rand(1, 5); $i > 0; $i--) {
            $doc[pick(['pid', 'money', 'name', 'note', 'signature', 'password', 'extra', 'list'])] = random_json();
        }
        $out[] = param_vector($scheme, "random $n: json", random_pairs(false), 'application/json', json_encode($doc, JSON_UNESCAPED_UNICODE), 'query', $sign, $keys);
    } elseif ($shape === 3) {
        $out[] = param_vector($scheme, "random $n: query and form", random_pairs(true), $form, random_pairs(true), $n % 2 ? 'query' : 'body', $sign, $keys);
    } else {
        $out[] = param_vector($scheme, "random $n: " . ($shape ? 'form' : 'query'), $shape ? null : random_pairs(true), $shape ? $form : null, $shape ? random_pairs(true) : '', $shape ? 'body' : 'query', $sign, $keys);
    }
}

// AlipayF2F: SHA256withRSA with a throw-away key.
$tmp = sys_get_temp_dir() . '/hookgate-alipay-' . getmypid();
@mkdir($tmp);
shell_exec("openssl genrsa -out $tmp/private.pem 2048 2>/dev/null");
shell_exec("openssl rsa -in $tmp/private.pem -pubout -out $dir/alipay_public.pem 2>/dev/null");
shell_exec("openssl rsa -in $tmp/private.pem -RSAPublicKey_out -out $dir/alipay_public_pkcs1.pem 2>/dev/null");
$private = openssl_pkey_get_private(file_get_contents("$tmp/private.pem"));
$spki = preg_replace('/-----[^-]+-----|\s+/', '', file_get_contents("$dir/alipay_public.pem"));
file_put_contents("$dir/alipay_public.b64", chunk_split($spki, 76, "\n"));
unlink("$tmp/private.pem");
rmdir($tmp);
$alipayKey = ['public_key' => 'alipay_public.pem'];
$rsa = function (array $p) use ($private) {
    openssl_sign(alipay_text($p), $signature, $private, OPENSSL_ALGO_SHA256);
    return base64_encode($signature);
};
$aq = 'gmt_create=2026-01-01+08%3A00%3A00&charset=UTF-8&seller_email=shop%40example.com&subject=VIP+plan&buyer_id=2088102177846880'
    . '&invoice_amount=10.00&notify_id=2026010100222080000080171458&fund_bill_list=%5B%7B%22amount%22%3A%2210.00%22%2C%22fundChannel%22%3A%22ALIPAYACCOUNT%22%7D%5D'
    . '&notify_type=trade_status_sync&trade_status=TRADE_SUCCESS&receipt_amount=10.00&app_id=2021000000000000&buyer_pay_amount=10.00'
    . '&seller_id=2088102177000000&gmt_payment=2026-01-01+08%3A00%3A01&notify_time=2026-01-01+08%3A00%3A01&version=1.0'
    . '&out_trade_no=202601011200001234&total_amount=10.00&trade_no=2026010122001446880000000001&auth_app_id=2021000000000000&point_amount=0.00';
foreach ([
    ['notify form', null, $form, $aq, 'body'],
    ['empty field written as key= (XBoard does not skip it)', null, $form, $aq . '&passback_params=', 'body'],
    ['spaces trimmed', null, $form, $aq . '&body=%20VIP%20', 'body'],
    ['json body', null, 'application/json', '{"out_trade_no":"42","trade_status":"TRADE_SUCCESS","total_amount":"1.00","n":3,"t":true,"f":false}', 'query'],
    ['query and form', 'from=query&out_trade_no=shadowed', $form, $aq, 'body'],
] as [$name, $query, $type, $body, $where]) {
    $out[] = param_vector('alipay_rsa2', "alipay: $name", $query, $type, $body, $where, $rsa, $alipayKey + ['sign_pairs' => ['sign=' . urlencode($rsa(laravel_input($query, $type, $body))) . '&sign_type=RSA2']]);
}
$good = $out[count($out) - 5];
$out[] = array_merge($good, ['name' => 'alipay: sign with line breaks (base64_decode strict skips them)', 'body' => preg_replace_callback('/sign=([^&]+)/', fn ($m) => 'sign=' . urlencode(chunk_split(urldecode($m[1]), 64, "\r\n")), $good['body'])]);
$out[] = array_merge($good, ['name' => 'alipay: changed amount', 'body' => str_replace('total_amount=10.00', 'total_amount=0.01', $good['body']), 'expect' => 'bad_signature']);
$out[] = array_merge($good, ['name' => 'alipay: sign not base64', 'body' => preg_replace('/sign=[^&]+/', 'sign=%21%21%21', $good['body']), 'expect' => 'malformed']);
$out[] = array_merge($good, ['name' => 'alipay: no sign', 'body' => preg_replace('/&sign=[^&]+/', '', $good['body']), 'expect' => 'missing']);
$out[] = array_merge($good, ['name' => 'alipay: an array parameter (the plugin throws)', 'body' => $good['body'] . '&extra[]=1', 'expect' => 'malformed']);
for ($n = 0; $n < 40; $n++) {
    $type = $n % 2 ? $form : 'application/json';
    $body = $n % 2 ? random_pairs(false) : json_encode(['out_trade_no' => (string) $n, 'note' => random_json(2), 'k' => pick(['', ' ', ' v ', null, 5, true, false])], JSON_UNESCAPED_UNICODE);
    $params = laravel_input(null, $type, $body);
    unset($params['sign'], $params['sign_type']);
    if ($params === [] || array_filter($params, 'is_array')) {
        continue; // the plugin throws: not a vector of what it admits
    }
    $sig = $rsa(laravel_input(null, $type, $body));
    $out[] = $n % 2
        ? vector(['name' => "alipay random $n: form", 'scheme' => 'alipay_rsa2', 'content_type' => $type, 'body' => $body . '&sign=' . urlencode($sig)] + $alipayKey)
        : vector(['name' => "alipay random $n: json", 'scheme' => 'alipay_rsa2', 'query' => 'sign=' . urlencode($sig), 'content_type' => $type, 'body' => $body] + $alipayKey);
}

// BTCPay and Coinbase: HMAC-SHA256 of the PHP-trimmed raw body.
$json = '{"deliveryId":"Xk2","webhookId":"W1","type":"InvoiceSettled","invoiceId":"INV42","metadata":{"orderId":"42"}}';
foreach (['' => 'body', "\n" => 'body with a trailing newline (PHP trims it before signing)'] as $tail => $what) {
    $body = $json . $tail;
    $out[] = vector(['name' => "btcpay: $what", 'scheme' => 'btcpay', 'secrets' => [BTCPAY_KEY], 'content_type' => 'application/json',
        'headers' => [['Btcpay-Sig', 'sha256=' . hash_hmac('sha256', trim($body), BTCPAY_KEY)]], 'body' => $body]);
    $out[] = vector(['name' => "coinbase: $what", 'scheme' => 'coinbase', 'secrets' => [COINBASE_KEY], 'content_type' => 'application/json',
        'headers' => [['X-Cc-Webhook-Signature', hash_hmac('sha256', trim($body), COINBASE_KEY)]], 'body' => $body]);
}
$sig = hash_hmac('sha256', $json, BTCPAY_KEY);
$out[] = vector(['name' => 'btcpay: wrong key', 'scheme' => 'btcpay', 'secrets' => ['other'], 'headers' => [['Btcpay-Sig', "sha256=$sig"]], 'body' => $json, 'expect' => 'bad_signature']);
$out[] = vector(['name' => 'btcpay: changed body', 'scheme' => 'btcpay', 'secrets' => [BTCPAY_KEY], 'headers' => [['Btcpay-Sig', "sha256=$sig"]], 'body' => str_replace('42', '43', $json), 'expect' => 'bad_signature']);
$out[] = vector(['name' => 'btcpay: no prefix', 'scheme' => 'btcpay', 'secrets' => [BTCPAY_KEY], 'headers' => [['Btcpay-Sig', $sig]], 'body' => $json, 'expect' => 'malformed']);
$out[] = vector(['name' => 'btcpay: repeated header', 'scheme' => 'btcpay', 'secrets' => [BTCPAY_KEY], 'headers' => [['Btcpay-Sig', "sha256=$sig"], ['Btcpay-Sig', "sha256=$sig"]], 'body' => $json, 'expect' => 'malformed']);
$out[] = vector(['name' => 'btcpay: no header', 'scheme' => 'btcpay', 'secrets' => [BTCPAY_KEY], 'body' => $json, 'expect' => 'missing']);
$out[] = vector(['name' => 'coinbase: upper-case hex (hash_equals compares text)', 'scheme' => 'coinbase', 'secrets' => [COINBASE_KEY],
    'headers' => [['X-Cc-Webhook-Signature', strtoupper(hash_hmac('sha256', $json, COINBASE_KEY))]], 'body' => $json, 'expect' => 'malformed']);

// CoinPayments: HMAC-SHA512 of stripslashes(http_build_query(ksort(params))).
$ipn = 'ipn_version=1.0&ipn_type=simple&ipn_mode=hmac&ipn_id=9f2a&merchant=m123&status=100&status_text=Complete'
    . '&txn_id=CPX42&currency1=USD&currency2=BTC&amount1=10.00&amount2=0.0001&fee=0.000001&buyer_name=CoinPayments+API'
    . '&email=&item_name=202601011200001234&item_number=202601011200001234&received_amount=0.0001&received_confirms=3';
foreach ([
    ['ipn form', $ipn, [COINPAYMENTS_KEY]],
    ['quote in a value (stripslashes)', $ipn . '&custom=O%5C%27Brien', [COINPAYMENTS_KEY]],
    ['secret file with spaces (the plugin trims it)', $ipn, ["  " . COINPAYMENTS_KEY . " "]],
] as [$name, $body, $secrets]) {
    $out[] = vector(['name' => "coinpayments: $name", 'scheme' => 'coinpayments', 'secrets' => $secrets, 'content_type' => $form,
        'headers' => [['HMAC', coinpayments_hmac(laravel_input(null, $form, $body), COINPAYMENTS_KEY)]], 'body' => $body]);
}
$out[] = vector(['name' => 'coinpayments: raw body signed (XBoard signs the parameters)', 'scheme' => 'coinpayments', 'secrets' => [COINPAYMENTS_KEY],
    'content_type' => $form, 'headers' => [['Hmac', hash_hmac('sha512', $ipn, COINPAYMENTS_KEY)]], 'body' => $ipn, 'expect' => 'bad_signature']);
for ($n = 0; $n < 20; $n++) {
    $body = 'merchant=m123&' . random_pairs(true);
    $out[] = vector(['name' => "coinpayments random $n", 'scheme' => 'coinpayments', 'secrets' => [COINPAYMENTS_KEY], 'content_type' => $form,
        'headers' => [['Hmac', coinpayments_hmac(laravel_input(null, $form, $body), COINPAYMENTS_KEY)]], 'body' => $body]);
}

// Each "ok" vector once more, the way its plugin tests it.
foreach ($out as $v) {
    if ($v['expect'] !== 'ok') {
        continue;
    }
    $body = isset($v['body_b64']) ? base64_decode($v['body_b64']) : $v['body'];
    $p = laravel_input($v['query'], $v['content_type'], $body);
    $ok = match ($v['scheme']) {
        'epay_md5' => is_string($p['sign'] ?? null) && $p['sign'] === epay_md5($p, EPAY_KEY),
        'mgate_md5' => is_string($p['sign'] ?? null) && $p['sign'] === mgate_md5($p, MGATE_KEY),
        'alipay_rsa2' => openssl_verify(alipay_text($p), base64_decode($p['sign'], true), file_get_contents("$dir/alipay_public.pem"), OPENSSL_ALGO_SHA256) === 1,
        default => true,
    };
    if (!$ok) {
        fwrite(STDERR, "not admitted by its plugin's test: {$v['name']}\n");
        exit(1);
    }
}

$order = array_flip(['name', 'scheme', 'secrets', 'public_key', 'method', 'query', 'content_type', 'headers', 'body', 'body_b64', 'now', 'expect']);
$lines = array_map(function ($v) use ($order) {
    uksort($v, fn ($a, $b) => $order[$a] <=> $order[$b]);
    return json_encode($v, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
}, $out);
file_put_contents("$dir/xboard.jsonl", implode("\n", $lines) . "\n");
fwrite(STDERR, count($lines) . " vectors in xboard.jsonl\n");
