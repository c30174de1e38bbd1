//! What `hookgate check` and `hookgate route` say about `verify` (issue 31):
//! the scheme shown and the secret never, the warnings about settings that
//! are valid but probably wrong, `route --body`'s verdict on a body, and
//! each mistake in a `verify` refused with its key path and line.

use crate::common::signers::{self, body};

const KEY: &[u8] = b"test-secret-one";

fn hookgate(args: &[&str]) -> (Option<i32>, String, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookgate"))
        .args(args)
        .env_remove("HOOKGATE_CONFIG")
        .output()
        .unwrap();
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

const UPSTREAM: &str = "[listen]\naddrs = [\"127.0.0.1:0\"]\n[upstreams.app]\nurl = \"http://127.0.0.1:7001\"\n";

/// `route --body` says whether a body would pass; `check` shows the scheme,
/// never the secret, and warns about what is valid but probably wrong.
#[test]
fn route_and_check_explain_verify() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("gh.key");
    std::fs::write(&key, KEY).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = format!(
        "{UPSTREAM}[[routes]]\nname = \"gh\"\npath = \"/gh\"\nupstream = \"app\"\n\
         verify = {{ scheme = \"github\", secret_file = \"gh.key\" }}\n\
         [[routes]]\nname = \"ep\"\npath = \"/ep\"\nupstream = \"app\"\n\
         verify = {{ scheme = \"epay_md5\", secret_file = \"gh.key\" }}\n[default]\nupstream = \"app\"\n"
    );
    let path = dir.path().join("hookgate.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.to_str().unwrap();

    let (code, stdout, _) = hookgate(&["check", "-c", path]);
    assert_eq!(code, Some(0), "{stdout}");
    assert!(stdout.contains("verify = { scheme = \"github\", mode = \"enforce\" }  # 1 secret"), "{stdout}");
    assert!(!stdout.contains(std::str::from_utf8(KEY).unwrap()), "the secret is never shown: {stdout}");
    assert!(stdout.contains("warning: route gh: verify scheme github signs the body"), "{stdout}");
    assert!(stdout.contains("may be read by its group or others: chmod 600"), "{stdout}");

    let payload = body("github", "100");
    let body_file = dir.path().join("body.json");
    std::fs::write(&body_file, &payload).unwrap();
    let signature = format!("X-Hub-Signature-256: sha256={}", signers::hex(&signers::hmac_sha256(KEY, &payload)));
    let body_arg = body_file.to_str().unwrap();
    let route =
        |header: &str| hookgate(&["route", "-c", path, "POST", "http://x/gh", "-H", header, "--body", body_arg]);
    let (code, stdout, stderr) = route(&signature);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stdout.contains("verify github (enforce: refused with 401 when it fails): the signature holds"),
        "{stdout}"
    );
    assert!(stdout.contains("=> route gh -> upstream app"), "{stdout}");
    let (_, stdout, _) = route("X-Hub-Signature-256: sha256=00");
    assert!(stdout.contains("bad_signature"), "{stdout}");
    assert!(stdout.contains("=> route gh refuses this request with 401"), "{stdout}");
    let (_, stdout, _) = hookgate(&["route", "-c", path, "POST", "http://x/gh"]);
    assert!(stdout.contains("pass --body FILE to check a signature"), "{stdout}");
    let (code, _, stderr) = route_missing_body(path);
    assert_eq!(code, Some(2), "a usage error: {stderr}");
    assert!(stderr.contains("--body: cannot read"), "{stderr}");

    // A form notify given without its Content-Type: its parameters are not read, and route says why.
    let form = dir.path().join("notify.form");
    std::fs::write(&form, "out_trade_no=1&money=5&sign=00").unwrap();
    let notify = |extra: &[&str]| {
        let mut args = vec!["route", "-c", path, "POST", "http://x/ep", "--body", form.to_str().unwrap()];
        args.extend_from_slice(extra);
        hookgate(&args).1
    };
    let hint = "the body was not read as parameters";
    let bare = notify(&[]);
    assert!(bare.contains(hint), "{bare}");
    let typed = notify(&["-H", "Content-Type: application/x-www-form-urlencoded"]);
    assert!(typed.contains("bad_signature") && !typed.contains(hint), "{typed}");
}

fn route_missing_body(path: &str) -> (Option<i32>, String, String) {
    hookgate(&["route", "-c", path, "POST", "http://x/gh", "--body", "/nonexistent/body"])
}

/// Each mistake in a `verify` is refused with the key path and line.
#[test]
fn verify_mistakes_are_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.key"), "secret").unwrap();
    std::fs::write(dir.path().join("bad.pem"), "-----BEGIN PUBLIC KEY-----\nnot a key\n-----END PUBLIC KEY-----\n")
        .unwrap();
    let cases = [
        ("{ scheme = \"paypal\", secret_file = \"s.key\" }", "routes[0].verify.scheme: unknown scheme \"paypal\""),
        ("{ scheme = \"github\" }", "routes[0].verify: needs secret_file or secret_files"),
        ("{ scheme = \"github\", secret_file = \"none.key\" }", "routes[0].verify.secret_file: cannot read"),
        ("{ scheme = \"hmac_sha256\", secret_file = \"s.key\" }", "hmac_sha256 needs header"),
        ("{ scheme = \"github\", secret_file = \"s.key\", header = \"X-S\" }", "for scheme = \"hmac_sha256\" only"),
        ("{ scheme = \"github\", secret_file = \"s.key\", tolerance = \"1m\" }", "github signs no timestamp"),
        ("{ scheme = \"stripe\", secret_file = \"s.key\", tolerance = \"0s\" }", "tolerance: must be above 0"),
        ("{ scheme = \"alipay_rsa2\", secret_file = \"s.key\" }", "alipay_rsa2 is checked with public_key_file"),
        ("{ scheme = \"alipay_rsa2\", public_key_file = \"bad.pem\" }", "routes[0].verify.public_key_file: "),
        ("{ scheme = \"github\", secret_file = \"s.key\", mode = \"audit\" }", "routes[0].verify.mode"),
        ("{ scheme = \"standard_webhooks\", secret_file = \"s.key\" }", "routes[0].verify"),
    ];
    for (verify, expected) in cases {
        let config = format!(
            "{UPSTREAM}\n[[routes]]\nname = \"r\"\npath = \"/r\"\nmethods = [\"POST\"]\nupstream = \"app\"\nverify = {verify}\n"
        );
        let path = dir.path().join("hookgate.toml");
        std::fs::write(&path, config).unwrap();
        let (code, _, stderr) = hookgate(&["check", "-c", path.to_str().unwrap()]);
        assert_eq!(code, Some(78), "{verify}: {stderr}");
        assert!(stderr.contains(expected), "{verify}: expected {expected:?} in {stderr}");
        assert!(stderr.contains("hookgate.toml:11"), "{verify}: the line: {stderr}");
        assert!(!stderr.contains("\"secret\""), "{verify}: the secret is never echoed: {stderr}");
    }
}
