//! `hookgate init`: a commented config for the operator's URLs, names, listen
//! addresses and HTTPS, written from the shipped preset (`config/xboard.toml`)
//! so the two never drift. Every option is checked on its own first, so an
//! error names the option; the result is then validated like `hookgate
//! check` before anything is written. A file is never overwritten, except an
//! untouched copy of the example the Debian package installs at the default
//! path, which is all the package leaves there. `--compose` picks the
//! upstreams and listen address that one of XBoard's compose templates needs
//! (the `Template` table at the end).

use std::io::Write;
use std::path::Path;

use crate::cli::{ComposeTemplate, InitArgs, Preset, TlsMode};
use crate::config::{Config, ConfigError};

const XBOARD: &str = include_str!("../config/xboard.toml");
/// What the Debian package installs at the default path (a conffile).
const PACKAGED_EXAMPLE: &str = include_str!("../config/hookgate.toml");

/// The preset's placeholders, as the shipped file spells them.
const FRONTEND_URL: &str = "url = \"http://127.0.0.1:3000\"";
const BACKEND_URL: &str = "url = \"http://127.0.0.1:7001\"";
/// The preset's `[listen]` keys, which `listen_section` writes anew.
const LISTEN: &str = "addrs = [\"127.0.0.1:8080\"]\n";
const TRUSTED_PROXIES: &str =
    "trusted_proxies = []             # add your CDN / load balancer ranges if one sits in front\n";
const SITE: &str = "www.example.com";
const API_SITE: &str = "api.example.com";

/// `TRUSTED_PROXIES` with `--cloudflare`.
const TRUSTED_CLOUDFLARE: &str = "trusted_proxies = [\"cloudflare\", \"127.0.0.1\"]   # Cloudflare in front (--cloudflare): see README \"Behind Cloudflare\"\n";

/// Callbacks the plain-HTTP listener serves instead of redirecting: Telegram
/// and payment gateways do not follow redirects.
const NOT_REDIRECTED: &str = r#"["/api/v1/guest/telegram/webhook", "/api/v1/guest/payment/notify"]"#;

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{0} exists; hookgate init never overwrites a config (choose another path with -o)")]
    Exists(String),
    #[error("cannot write {path}: {source} (choose another path with -o)")]
    Write { path: String, source: std::io::Error },
    #[error("{0}: {1}")]
    BadOption(&'static str, String),
    #[error("the config these options make is invalid (nothing was written): {0}")]
    Invalid(#[from] ConfigError),
}

/// The config text for `args`, validated.
pub fn render(args: &InitArgs) -> Result<String, InitError> {
    let Preset::Xboard = args.preset;
    let template = args.compose.map(template);
    let (frontend, backend) = upstream_urls(args, template.as_ref())?;
    check_options(args, &frontend, &backend)?;
    let mut text = format!(
        "# Written by `hookgate init --preset xboard`; the notes below come from the\n\
         # preset and still apply. Check it with `hookgate check -c <this file>`.\n#\n{XBOARD}"
    );
    text = text.replacen(FRONTEND_URL, &format!("url = {}", toml_string(&frontend)), 1);
    text = text.replacen(BACKEND_URL, &format!("url = {}", toml_string(&backend)), 1);
    text = text.replacen(&format!("{LISTEN}{TRUSTED_PROXIES}"), &listen_section(args), 1);
    if let Some(template) = &template {
        text = with_template(text, template, args.tls);
    }
    text = match &args.api_domain {
        Some(api) => text.replace(API_SITE, api),
        None => without_backend_domain_route(&text),
    };
    if let Some(site) = args.domains.first() {
        text = text.replace(SITE, site);
        // Telegram's webhook URL names the HTTPS port when it is not 443.
        if let Some(port) = https_port(args).filter(|port| *port != 443) {
            text = text.replace(
                &format!("public_url = \"https://{site}\""),
                &format!("public_url = \"https://{site}:{port}\""),
            );
        }
    }
    text = text.replace(crate::config::DEFAULT_PATH, &args.output.display().to_string());
    if args.domains.len() > 1 {
        let names = args.domains.join(", ");
        text = text.replacen("[listen]\n", &format!("# Public names of this site: {names}.\n[listen]\n"), 1);
    }
    Config::from_toml_str(&text, &args.output.display().to_string())?;
    Ok(text)
}

/// Each option on its own, so a mistake names the option rather than a line
/// of a file the operator never wrote.
fn check_options(args: &InitArgs, frontend: &str, backend: &str) -> Result<(), InitError> {
    for (option, url) in [("--frontend", frontend), ("--backend", backend)] {
        let plausible = url.parse::<http::Uri>().is_ok_and(|uri| {
            matches!(uri.scheme_str(), Some("http" | "https"))
                && uri.authority().is_some_and(|a| !a.as_str().contains('@'))
        });
        if !plausible {
            let why = format!("{url:?} is not a URL like http://127.0.0.1:3000 (scheme, host and port, nothing else)");
            return Err(InitError::BadOption(option, why));
        }
    }
    for name in args.domains.iter().chain(&args.api_domain) {
        let plausible = !name.is_empty()
            && name.len() <= 253
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'*');
        if !plausible {
            let option = if args.api_domain.as_ref() == Some(name) { "--api-domain" } else { "--domain" };
            return Err(InitError::BadOption(option, format!("{name:?} is not a domain name")));
        }
    }
    for addr in &args.listen {
        if addr.parse::<std::net::SocketAddr>().is_err() {
            return Err(InitError::BadOption("--listen", format!("{addr:?} is not an address like 0.0.0.0:443")));
        }
    }
    if args.tls != TlsMode::None
        && redirect_from(args) != "none"
        && redirect_from(args).parse::<std::net::SocketAddr>().is_err()
    {
        let why = format!("{:?} is not an address like 0.0.0.0:80, or none", redirect_from(args));
        return Err(InitError::BadOption("--redirect-from", why));
    }
    check_tls_options(args)
}

/// The options of one `--tls` mode are refused with another (they would be
/// left out of the file without a word), a mode's own are required, and the
/// files named must be there.
fn check_tls_options(args: &InitArgs) -> Result<(), InitError> {
    let (acme, files) = (args.tls == TlsMode::Acme, args.tls == TlsMode::Files);
    let redirect = args.redirect_from.as_deref().is_some_and(|addr| addr != "none");
    let misplaced = [
        ("--email", args.email.is_some() && !acme, "--tls acme"),
        ("--acme-directory", args.acme_directory.is_some() && !acme, "--tls acme"),
        ("--acme-ca-file", args.acme_ca_file.is_some() && !acme, "--tls acme"),
        ("--cert", args.cert.is_some() && !files, "--tls files"),
        ("--key", args.key.is_some() && !files, "--tls files"),
        ("--redirect-from", redirect && args.tls == TlsMode::None, "--tls acme or files"),
    ];
    if let Some((option, _, mode)) = misplaced.into_iter().find(|(_, misplaced, _)| *misplaced) {
        return Err(InitError::BadOption(option, format!("applies only with {mode}")));
    }
    match args.tls {
        TlsMode::Acme if args.domains.is_empty() => {
            return Err(InitError::BadOption("--tls acme", "needs the site's names: give --domain".to_string()));
        }
        TlsMode::Files if args.cert.is_none() || args.key.is_none() => {
            return Err(InitError::BadOption("--tls files", "needs --cert FILE and --key FILE".to_string()));
        }
        _ => {}
    }
    let named = [("--cert", &args.cert), ("--key", &args.key), ("--acme-ca-file", &args.acme_ca_file)];
    for (option, path) in named {
        if let Some(path) = path
            && let Err(e) = std::fs::File::open(path)
        {
            return Err(InitError::BadOption(option, format!("cannot read {path}: {e}")));
        }
    }
    Ok(())
}

/// `--redirect-from`, or its default.
fn redirect_from(args: &InitArgs) -> &str {
    args.redirect_from.as_deref().unwrap_or("0.0.0.0:80")
}

/// The `[listen]` addresses, and for HTTPS the `[listen.tls]` (and its
/// `acme`) and `[listen.redirect]` tables, in place of the preset's address.
fn listen_section(args: &InitArgs) -> String {
    let trusted = if args.cloudflare { TRUSTED_CLOUDFLARE } else { TRUSTED_PROXIES };
    let addrs = |default: &str| {
        let given: Vec<String> = args.listen.iter().map(|a| toml_string(a)).collect();
        if given.is_empty() { format!("[{}]", toml_string(default)) } else { format!("[{}]", given.join(", ")) }
    };
    if args.tls == TlsMode::None {
        let plain = addrs(args.compose.map_or("127.0.0.1:8080", |compose| template(compose).plain_listen));
        return format!("addrs = {plain}          # plain HTTP: put HTTPS in front, or see --tls\n{trusted}");
    }
    let plain = if redirect_from(args) == "none" { "no plain HTTP" } else { "plain HTTP only redirects (below)" };
    let mut tls = format!(
        "addrs = []                       # {plain}\n{trusted}\n\
         [listen.tls]                     # Telegram delivers webhooks only over HTTPS\n\
         addrs = {}\n",
        addrs("0.0.0.0:443")
    );
    match args.tls {
        TlsMode::Files => {
            let (cert, key) = (args.cert.as_deref().unwrap_or_default(), args.key.as_deref().unwrap_or_default());
            tls.push_str(&format!(
                "certificates = [{{ cert_file = {}, key_file = {} }}]\n",
                toml_string(&from_here(cert)),
                toml_string(&from_here(key))
            ));
        }
        TlsMode::Acme => {
            let mut names: Vec<String> = args.domains.iter().chain(&args.api_domain).map(|d| toml_string(d)).collect();
            names.dedup();
            let ca = if args.acme_directory.is_some() { "the ACME directory below" } else { "Let's Encrypt" };
            tls.push_str(&format!(
                "\n[listen.tls.acme]                # certificates from {ca}, renewed by hookgate\ndomains = [{}]\n",
                names.join(", ")
            ));
            let ca_file = args.acme_ca_file.as_deref().map(from_here);
            let optional =
                [("contact", args.email.clone()), ("directory", args.acme_directory.clone()), ("ca_file", ca_file)];
            for (key, value) in optional {
                if let Some(value) = value {
                    tls.push_str(&format!("{key} = {}\n", toml_string(&value)));
                }
            }
            if args.cloudflare {
                // Cloudflare answers the TLS handshake itself: tls-alpn-01 never reaches hookgate.
                tls.push_str("challenge = \"http-01\"             # tls-alpn-01 cannot pass Cloudflare's proxy\n");
            }
        }
        TlsMode::None => {}
    }
    if redirect_from(args) != "none" {
        tls.push_str(&format!(
            "\n[listen.redirect]                # plain HTTP answers 308 to https://, except these callbacks\n\
             addrs = [{}]\nexempt = {NOT_REDIRECTED}\n",
            toml_string(redirect_from(args))
        ));
        if let Some(port) = https_port(args).filter(|port| *port != 443) {
            tls.push_str(&format!("https_port = {port}\n"));
        }
    }
    tls
}

/// The port clients reach HTTPS on: the first --listen address's (443 by
/// default); `None` without HTTPS.
fn https_port(args: &InitArgs) -> Option<u16> {
    if args.tls == TlsMode::None {
        return None;
    }
    let first = args.listen.first().and_then(|addr| addr.parse::<std::net::SocketAddr>().ok());
    Some(first.map_or(443, |addr| addr.port()))
}

/// A path given on the command line, made absolute from the current folder:
/// the config's own relative paths are relative to the config file, which may
/// be elsewhere (`-o`).
fn from_here(path: &str) -> String {
    std::path::absolute(path).map_or_else(|_| path.to_string(), |p| p.display().to_string())
}

/// Comments out the backend-domain route when no backend name was given.
fn without_backend_domain_route(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_route = false;
    for line in text.lines() {
        if line == "name = \"backend-domain\"" {
            in_route = true;
            // The `[[routes]]` line just written belongs to this route.
            if let Some(start) = out.trim_end_matches('\n').rfind('\n') {
                out.truncate(start + 1);
            }
            out.push_str("# [[routes]]                     # no --api-domain given\n");
        }
        if in_route && line.is_empty() {
            in_route = false;
        }
        if in_route {
            out.push_str("# ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// `value` as a TOML basic string.
fn toml_string(value: &str) -> String {
    toml::Value::String(value.to_string()).to_string()
}

/// Writes `text` to `path`, creating its folder, and refusing to replace a
/// file unless it is the package's untouched example. Returns whether it
/// replaced that example.
pub fn write_new(path: &Path, text: &str) -> Result<bool, InitError> {
    let shown = path.display().to_string();
    let write_error = |source| InitError::Write { path: shown.clone(), source };
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(write_error)?;
    }
    // Only a regular file of the example's size is read: `/dev/full` or a
    // FIFO would be read forever, and is not the example anyway.
    let example_sized = std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == PACKAGED_EXAMPLE.len() as u64);
    let example = example_sized && std::fs::read_to_string(path).is_ok_and(|existing| existing == PACKAGED_EXAMPLE);
    if example {
        // Beside it first, then over it: a failed write leaves the example whole.
        let fresh = path.with_extension("toml.new");
        std::fs::write(&fresh, text).map_err(write_error)?;
        std::fs::rename(&fresh, path).map_err(write_error)?;
        return Ok(true);
    }
    let mut file = match std::fs::OpenOptions::new().write(true).create_new(true).open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(InitError::Exists(shown)),
        Err(source) => return Err(write_error(source)),
    };
    file.write_all(text.as_bytes()).map_err(write_error)?;
    Ok(false)
}

/// What to run next, for the config at `path` written by `args`. In XBoard's
/// compose project (`--compose default|split`) the upstreams' service names
/// resolve only inside it: the steps go through the override, which mounts
/// the config under its own name.
pub fn next_steps(path: &Path, args: &InitArgs, replaced_example: bool) -> String {
    let path = path.display();
    let site = args.domains.first().map_or(SITE, String::as_str);
    let replaced = if replaced_example { " (in place of the package's untouched example)" } else { "" };
    let override_name = match args.compose {
        Some(ComposeTemplate::Default) => "xboard-compose-default",
        Some(ComposeTemplate::Split) => "xboard-compose-split",
        _ => {
            return format!(
                "wrote {path}{replaced}\nnext:\n  hookgate check -c {path}\n  hookgate route -c {path} POST 'https://{site}/api/v1/guest/telegram/webhook?access_token=x'\n  hookgate run -c {path}\n"
            );
        }
    };
    let compose = format!("docker compose -f compose.yaml -f {override_name}.yaml");
    format!(
        "wrote {path}{replaced}\nnext, beside XBoard's compose.yaml with examples/{override_name}.yaml (which mounts ./{override_name}.toml):\n  cp {path} {override_name}.toml\n  {compose} run --rm hookgate check -c /etc/hookgate/hookgate.toml\n  {compose} up -d\n"
    )
}

/// What one of XBoard's compose templates decides for hookgate's config.
struct Template {
    /// Where XBoard's panel and API answer, seen from where hookgate runs.
    backend: &'static str,
    /// XBoard's WebSocket server, when a service of its own serves `/ws`.
    ws: Option<&'static str>,
    /// The plain-HTTP address without --listen and --tls: all addresses in a
    /// container (the compose override publishes it), loopback on the host.
    plain_listen: &'static str,
    /// The panel's OpenResty on this host terminates TLS in front of hookgate.
    behind_panel_proxy: bool,
    /// Said at the top of the file.
    note: &'static str,
}

/// The facts of XBoard's templates (its installation guide at ee2c12e;
/// stand-ins under tests/data/compose, checked by tests/compose/check.py).
fn template(compose: ComposeTemplate) -> Template {
    let on_host = |note| Template {
        backend: "http://127.0.0.1:7001",
        ws: None,
        plain_listen: "127.0.0.1:8080",
        behind_panel_proxy: true,
        note,
    };
    match compose {
        ComposeTemplate::Default => Template {
            backend: "http://xboard:7001",
            ws: None,
            plain_listen: "0.0.0.0:80",
            behind_panel_proxy: false,
            note: "XBoard's compose.sample.yaml, with examples/xboard-compose-default.yaml: service `xboard`\n\
                   # serves the panel, its API and /ws on 7001.",
        },
        ComposeTemplate::Split => Template {
            backend: "http://web:7001",
            ws: Some("http://ws-server:8076"),
            plain_listen: "0.0.0.0:80",
            behind_panel_proxy: false,
            note: "XBoard's compose.split.sample.yaml, with examples/xboard-compose-split.yaml: `web` serves\n\
                   # the panel and its API on 7001, `ws-server` the node WebSocket (/ws) on 8076.",
        },
        ComposeTemplate::Host => on_host(
            "XBoard's compose.host.sample.yaml: XBoard on the host's 127.0.0.1:7001, hookgate on the\n\
             # host behind aaPanel's OpenResty (README: \"Behind aaPanel, 1Panel or another nginx\").",
        ),
        ComposeTemplate::OnePanel => on_host(
            "XBoard's compose.1panel.sample.yaml: XBoard's 7001 published on the host, hookgate on the\n\
             # host behind 1Panel's OpenResty (README: \"Behind aaPanel, 1Panel or another nginx\").",
        ),
    }
}

/// The frontend's and the backend's URLs: as given, else the template's.
fn upstream_urls(args: &InitArgs, template: Option<&Template>) -> Result<(String, String), InitError> {
    let given_or_template = |given: &Option<String>, option| {
        given.clone().or_else(|| template.map(|t| t.backend.to_string())).ok_or_else(|| {
            InitError::BadOption(option, "needed unless --compose names XBoard's compose template".to_string())
        })
    };
    Ok((given_or_template(&args.frontend, "--frontend")?, given_or_template(&args.backend, "--backend")?))
}

/// The template's note, its WebSocket upstream, and loopback trusted when the
/// panel's OpenResty on this host terminates TLS in front of hookgate.
fn with_template(text: String, template: &Template, tls: TlsMode) -> String {
    let note = format!("# For {}\n#\n", template.note);
    let mut text = text.replacen("#\n", &format!("#\n{note}"), 1);
    if let Some(ws) = template.ws {
        let backend = text.find("[upstreams.backend]").unwrap_or(0);
        let end = text[backend..].find("\n\n").map_or(text.len(), |at| backend + at + 1);
        text.insert_str(
            end,
            &format!("\n[upstreams.ws]                   # XBoard's WebSocket server\nurl = {}\n", toml_string(ws)),
        );
        text = text.replacen(
            "name = \"node-websocket\"\npath = \"/ws\"\nupstream = \"backend\"",
            "name = \"node-websocket\"\npath = \"/ws\"\nupstream = \"ws\"",
            1,
        );
    }
    if template.behind_panel_proxy && tls == TlsMode::None {
        let trusted = "trusted_proxies = [\"127.0.0.1\"]  # the panel's OpenResty on this host sets X-Forwarded-For\n";
        text = text.replacen(TRUSTED_PROXIES, trusted, 1);
    }
    text
}
