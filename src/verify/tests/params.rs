//! The PHP emulation piece by piece, each case as PHP 8.2 answered it
//! (`php -r`); the vectors check the whole pipeline against PHP itself.

use crate::verify::php::{Array, Key, Value, http_build_query, stripslashes, trim, urldecode};
use crate::verify::{Refused, Signed, params};

fn parsed(query: &str) -> Array {
    let mut array = Array::default();
    params::parse_str(query.as_bytes(), &mut array).expect("within the limits");
    array
}

/// An array written as PHP's `json_encode` would, keys and strings as text.
fn show(array: &Array) -> String {
    let items: Vec<String> = array
        .iter()
        .map(|(key, value)| {
            let value = match value {
                Value::Null => "null".into(),
                Value::Bool(flag) => flag.to_string(),
                Value::Int(int) => int.to_string(),
                Value::Float => "float".into(),
                Value::Str(text) => format!("{:?}", String::from_utf8_lossy(text)),
                Value::Array(inner) => show(inner),
            };
            format!("{:?}:{value}", String::from_utf8_lossy(&key.text()))
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

#[test]
fn parse_str_as_php() {
    let cases = [
        ("a.b=1&+c d=2", r#"{"a_b":"1","c_d":"2"}"#),
        ("x[a.b=3", r#"{"x_a_b":"3"}"#),
        ("y[]=1&y[]=2&y[k]=v", r#"{"y":{"0":"1","1":"2","k":"v"}}"#),
        ("z[a]x=9", r#"{"z":{"a":"9"}}"#),
        ("[q]=7&=8&&", "{}"),
        ("n%00ul=9&w[%00]=1", r#"{"n":"9","w_":"1"}"#),
        ("arr=1&arr[]=2", r#"{"arr":{"0":"2"}}"#),
        ("k[-5]=a&k[]=b", r#"{"k":{"-5":"a","-4":"b"}}"#),
        ("a[b[c]=1&a[=2", r#"{"a":{"b[c":"1"},"a_":"2"}"#),
        ("b[x][y=3&c]d=4&e[x]]=5", r#"{"b":{"x":"3"},"c]d":"4","e":{"x":"5"}}"#),
        ("a[ ]=1&a[  ]=2&a[ x]=3&a[%09]=4", r#"{"a":{"0":"1","  ":"2"," x":"3","1":"4"}}"#),
        ("a[ =1&b[ x=2", r#"{"a__":"1","b__x":"2"}"#),
        ("v=1&v=2&w", r#"{"v":"2","w":""}"#),
        ("p=a+b%20c%2Bd%zz%4", r#"{"p":"a b c+d%zz%4"}"#),
        ("07=a&7=b&-0=c&-3=d", r#"{"07":"a","7":"b","-0":"c","-3":"d"}"#),
    ];
    for (query, php) in cases {
        assert_eq!(show(&parsed(query)), php, "{query}");
    }
    let keys: Vec<Key> = parsed("7=b&-3=d&07=a").iter().map(|(key, _)| key.clone()).collect();
    assert_eq!(keys, [Key::Int(7), Key::Int(-3), Key::Str(b"07".to_vec())]);
}

#[test]
fn nesting_past_64_levels_drops_the_variable() {
    let deep = |levels: usize| format!("a=keep&a{}=x", "[b]".repeat(levels));
    assert!(show(&parsed(&deep(64))).contains("\"x\""));
    assert_eq!(show(&parsed(&deep(65))), "{}", "PHP deletes `a`, even its earlier value");
}

#[test]
fn http_build_query_as_php() {
    let mut array = parsed("b=1&g=a+b~*&f[y][]=1&f[y][]=2&e[x]=&5=n");
    array.set(Key::Str(b"t".to_vec()), Value::Bool(true));
    array.set(Key::Str(b"f0".to_vec()), Value::Bool(false));
    array.set(Key::Str(b"n".to_vec()), Value::Null);
    let query = http_build_query(&array).expect("no floats");
    // PHP: b=1&g=a+b%7E%2A&f%5By%5D%5B0%5D=1&f%5By%5D%5B1%5D=2&e%5Bx%5D=&5=n&t=1&f0=0
    assert_eq!(query, b"b=1&g=a+b%7E%2A&f%5By%5D%5B0%5D=1&f%5By%5D%5B1%5D=2&e%5Bx%5D=&5=n&t=1&f0=0");
    array.set(Key::Str(b"x".to_vec()), Value::Float);
    assert_eq!(http_build_query(&array), Err(Refused::Malformed));
}

#[test]
fn ksort_as_php_or_refused() {
    let sorted = |query: &str| {
        let mut array = parsed(query);
        array.ksort().map(|()| show(&array))
    };
    assert_eq!(sorted("b=1&a=2&ab=3&B=4&_=5"), Ok(r#"{"B":"4","_":"5","a":"2","ab":"3","b":"1"}"#.into()));
    assert_eq!(sorted("10=a&9=b&-1=c"), Ok(r#"{"-1":"c","9":"b","10":"a"}"#.into()));
    assert_eq!(sorted("b=1&10=a&a=2"), Ok(r#"{"10":"a","a":"2","b":"1"}"#.into()), "one number among names: as text");
    assert_eq!(sorted("b=1&1.5=a&a=2"), Ok(r#"{"1_5":"a","a":"2","b":"1"}"#.into()));
    assert_eq!(sorted("9=a&10=b&1a=c"), Err(Refused::Malformed));
    assert_eq!(sorted("9=a&1e1=b"), Err(Refused::Malformed));
}

#[test]
fn urldecode_stripslashes_and_trim_as_php() {
    assert_eq!(urldecode(b"a+b%2Bc%zz%4%41"), b"a b+c%zz%4A");
    assert_eq!(stripslashes(b"a\\\\b\\0c\\'d\\"), b"a\\b\0c'd");
    assert_eq!(trim(b" \t\n\r\0\x0bx\x0c "), b"x\x0c");
    assert_eq!(trim(b"  "), b"");
}

fn input(pairs: &[(&str, &str)], query: Option<&str>, body: &[u8]) -> Result<String, Refused> {
    input_of(&http::Method::POST, pairs, query, body)
}

fn input_of(
    method: &http::Method,
    pairs: &[(&str, &str)],
    query: Option<&str>,
    body: &[u8],
) -> Result<String, Refused> {
    let headers = super::headers(pairs);
    params::input(&Signed { method, headers: &headers, query, body }).map(|array| show(&array))
}

/// Laravel's `getInputSource()`: a GET or HEAD has only its query, unless its body is JSON.
#[test]
fn a_get_form_body_is_not_read_and_a_get_json_body_is() {
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for method in [http::Method::GET, http::Method::HEAD] {
        assert_eq!(input_of(&method, &form, Some("a=1"), b"b=2").unwrap(), r#"{"a":"1"}"#);
    }
    let json = [("content-type", "application/json")];
    assert_eq!(input_of(&http::Method::GET, &json, Some("a=1"), br#"{"b":"2"}"#).unwrap(), r#"{"b":"2","a":"1"}"#);
    assert_eq!(input(&form, Some("a=1"), b"b=2").unwrap(), r#"{"b":"2","a":"1"}"#);
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");

#[test]
fn laravel_input_merges_trims_and_nulls() {
    let body = b"a=%20x%20&b=&c=%C2%A0y%E2%80%8B&signature=+s+&password=+&n[m]=+z+&bad=%FF%20";
    assert_eq!(
        input(&[FORM], Some("a=query&q=1"), body),
        // `signature` and `password` are not trimmed; `%FF ` is not UTF-8, so PHP's `trim` applies.
        Ok(r#"{"a":"x","b":null,"c":"y","signature":" s ","password":" ","n":{"m":"z"},"bad":"�","q":"1"}"#.into())
    );
    assert_eq!(input(&[("content-type", "text/plain")], Some("q=1"), b"a=1"), Ok(r#"{"q":"1"}"#.into()));
    assert_eq!(input(&[], None, b"a=1"), Ok("{}".into()));
    assert_eq!(
        input(&[("content-type", "APPLICATION/X-WWW-FORM-URLENCODED;charset=utf-8")], None, b"a=1"),
        Ok(r#"{"a":"1"}"#.into())
    );
}

#[test]
fn laravel_reads_json_as_php_decodes_it() {
    assert_eq!(
        input(
            &[JSON],
            Some("q=1&a=query"),
            br#"{"a":" x ","1":2,"t":true,"n":null,"e":"","o":{"k":" v "},"a":"again"}"#
        ),
        Ok(r#"{"a":"again","1":2,"t":true,"n":null,"e":null,"o":{"k":"v"},"q":"1"}"#.into())
    );
    assert_eq!(
        input(&[("content-type", "application/vnd.api+json")], None, b"[\"x\",[1]]"),
        Ok(r#"{"0":"x","1":{"0":1}}"#.into())
    );
    assert_eq!(input(&[JSON], None, b"\"s\""), Ok(r#"{"0":"s"}"#.into()));
    assert_eq!(input(&[JSON], Some("q=1"), b"{\"a\":"), Ok(r#"{"q":"1"}"#.into()), "invalid JSON is null");
    assert_eq!(input(&[JSON], None, b"0"), Ok("{}".into()), "PHP reads a body of 0 as false");
    assert_eq!(input(&[JSON], None, b"null"), Ok("{}".into()));
    assert_eq!(
        input(&[JSON], None, b"{\"f\":1.5,\"big\":18446744073709551615}"),
        Ok(r#"{"f":float,"big":float}"#.into())
    );
    let deep = format!("{}{}", "[".repeat(101), "]".repeat(101));
    assert_eq!(input(&[JSON], None, deep.as_bytes()), Err(Refused::Malformed));
    let wide = format!("[{}0]", "0,".repeat(10_000));
    assert_eq!(input(&[JSON], None, wide.as_bytes()), Err(Refused::Malformed));
}
