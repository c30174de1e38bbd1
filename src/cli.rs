//! The command line, declared once: `main` parses it, and the man pages and
//! shell completions are generated from it (`examples/gen_docs.rs`), so
//! `--help` and the manual never disagree.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config;

#[derive(Parser)]
#[command(name = "hookgate", version, about = "Route webhooks to the backend, everything else to the frontend.")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the proxy daemon.
    Run(ConfigArg),
    /// Validate the config, print the route table and warn about dead routes.
    Check(ConfigArg),
    /// Validate the config, then make the running daemon load it (via [admin] addr).
    Reload(ConfigArg),
    /// Ask the running daemon's /healthz (via [admin] addr): exit 0 if it is
    /// alive, 1 if not; exit 0 without asking when the config has no [admin]
    /// (for container health checks).
    Health(ConfigArg),
    /// The status page's summary from the running daemon (via [admin] addr):
    /// exit 0 if healthy, 1 if a route, an upstream or the webhook needs attention.
    Status(ConfigArg),
    /// Set, inspect or delete the Telegram webhook described by [telegram].
    Telegram {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        action: TelegramAction,
    },
    /// List, show, retry or drop the requests the spool keeps: through the
    /// running daemon ([admin] addr), or on the spool file when no daemon
    /// answers. Exit 0 when done, 1 when the request is not there (or not a
    /// dead letter), 69 when neither the daemon nor the file can be used.
    Spool {
        #[command(flatten)]
        config: ConfigArg,
        #[command(subcommand)]
        action: SpoolAction,
    },
    /// Write a commented config for your URLs and domain names (refuses to overwrite).
    Init(InitArgs),
    /// Explain which route and upstream a request would get, and why.
    Route {
        #[command(flatten)]
        config: ConfigArg,
        /// Request method, e.g. POST.
        method: String,
        /// Absolute URL (https://host/path?query) or a path with -H 'Host: ...'.
        url: String,
        /// Extra request header, 'Name: value'; repeatable.
        #[arg(short = 'H', long = "header")]
        headers: Vec<String>,
        /// The address the request comes from, to check allow_from guards.
        #[arg(long)]
        from: Option<std::net::IpAddr>,
        /// The request body, to check the route's verify signature against it.
        #[arg(long, value_name = "FILE")]
        body: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
pub enum TelegramAction {
    /// Check the webhook URL against this config, then register it with the route's secret.
    SetWebhook,
    /// Show getWebhookInfo in plain words, compared with this config.
    Info,
    /// Remove the webhook.
    Delete {
        /// Also drop the updates Telegram is holding.
        #[arg(long)]
        drop_pending: bool,
    },
}

#[derive(Subcommand)]
pub enum SpoolAction {
    /// The waiting requests (the dead letters with --dead), oldest first.
    List {
        /// Only this route's.
        #[arg(long)]
        route: Option<String>,
        /// Dead letters instead of waiting requests.
        #[arg(long)]
        dead: bool,
    },
    /// One kept request: its head and body (secrets redacted) and its last answer.
    Show {
        /// The request's id, as `list` shows it.
        id: i64,
    },
    /// Put a dead letter back in its queue, or every dead letter with --dead.
    #[command(
        override_usage = "hookgate spool retry [OPTIONS] <ID>\n       hookgate spool retry [OPTIONS] --dead [--route <ROUTE>]"
    )]
    Retry {
        /// The dead letter's id.
        #[arg(required_unless_present = "dead", conflicts_with = "dead")]
        id: Option<i64>,
        /// Every dead letter (of --route, if given).
        #[arg(long)]
        dead: bool,
        /// With --dead: only this route's.
        #[arg(long, requires = "dead")]
        route: Option<String>,
    },
    /// Forget a kept request, waiting or dead: it is never delivered.
    Drop {
        /// The request's id.
        id: i64,
    },
}

#[derive(Args)]
pub struct ConfigArg {
    /// Path of the TOML route file.
    #[arg(short, long = "config", env = "HOOKGATE_CONFIG", default_value = config::DEFAULT_PATH, global = true)]
    pub config: PathBuf,
}

#[derive(Args)]
pub struct InitArgs {
    /// The kind of deployment to write a config for.
    #[arg(long, value_enum, default_value = "xboard")]
    pub preset: Preset,
    /// The frontend's URL, e.g. http://127.0.0.1:3000 (with --compose: the
    /// template's panel, unless given).
    #[arg(long, required_unless_present = "compose")]
    pub frontend: Option<String>,
    /// The backend's URL, e.g. http://127.0.0.1:7001 (with --compose: the
    /// template's, unless given).
    #[arg(long, required_unless_present = "compose")]
    pub backend: Option<String>,
    /// Which of XBoard's docker compose templates XBoard runs from: writes
    /// that template's upstreams, and listen addresses for hookgate in the
    /// same compose project (default, split) or on the host behind the
    /// panel's OpenResty (host, 1panel).
    #[arg(long, value_enum)]
    pub compose: Option<ComposeTemplate>,
    /// A public name of the site (XBoard's site URL host); repeatable. The first
    /// one is the origin the Telegram webhook is registered for.
    #[arg(long = "domain")]
    pub domains: Vec<String>,
    /// The backend's own public name, when it points at hookgate too.
    #[arg(long)]
    pub api_domain: Option<String>,
    /// Where clients connect, repeatable: the HTTPS addresses with --tls acme or
    /// files (default 0.0.0.0:443), the plain ones with --tls none (default
    /// 127.0.0.1:8080, for a proxy or tunnel in front that terminates TLS).
    #[arg(long)]
    pub listen: Vec<String>,
    /// How HTTPS is served: certificates from an ACME CA (Let's Encrypt),
    /// certificate files (--cert, --key), or not at all. Telegram delivers
    /// webhooks only over HTTPS.
    #[arg(long, value_enum, default_value = "none")]
    pub tls: TlsMode,
    /// With --tls acme: where the CA sends expiry warnings.
    #[arg(long)]
    pub email: Option<String>,
    /// With --tls acme: another ACME directory than Let's Encrypt's
    /// (`letsencrypt-staging` to try a setup).
    #[arg(long)]
    pub acme_directory: Option<String>,
    /// With --tls acme: PEM CAs the ACME server's own certificate is checked
    /// against, for a private ACME server.
    #[arg(long)]
    pub acme_ca_file: Option<String>,
    /// With --tls files: the PEM certificate chain (leaf first).
    #[arg(long)]
    pub cert: Option<String>,
    /// With --tls files: the PEM private key.
    #[arg(long)]
    pub key: Option<String>,
    /// With --tls acme or files: the plain-HTTP address that redirects to
    /// HTTPS (the callbacks excepted; default 0.0.0.0:80); "none" for no
    /// such listener.
    #[arg(long)]
    pub redirect_from: Option<String>,
    /// Cloudflare proxies the site: trust its published ranges (the built-in
    /// set `cloudflare`) and 127.0.0.1, so that the client address, and with it
    /// `allow_from = ["telegram"]`, comes from Cloudflare's CF-Connecting-IP.
    #[arg(long)]
    pub cloudflare: bool,
    /// Where to write the config. An untouched copy of the example the
    /// package installs there is replaced; any other file is never overwritten.
    #[arg(short, long, default_value = config::DEFAULT_PATH)]
    pub output: PathBuf,
}

/// How `hookgate init` has HTTPS served.
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TlsMode {
    /// Certificates obtained and renewed from an ACME CA ([listen.tls.acme]).
    Acme,
    /// Certificate and key files ([listen.tls] certificates).
    Files,
    /// Plain HTTP only.
    None,
}

/// XBoard's compose templates, as its installation guide names them.
#[derive(Clone, Copy, PartialEq, Eq, Debug, clap::ValueEnum)]
pub enum ComposeTemplate {
    /// compose.sample.yaml: one service `xboard` on 7001 (panel, API and /ws).
    Default,
    /// compose.split.sample.yaml: `web` on 7001, `ws-server` on 8076 (/ws).
    Split,
    /// compose.host.sample.yaml: host networking, XBoard on 127.0.0.1:7001
    /// behind aaPanel's OpenResty.
    Host,
    /// compose.1panel.sample.yaml: XBoard's 7001 published on the host for
    /// 1Panel's OpenResty.
    #[value(name = "1panel")]
    OnePanel,
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum Preset {
    /// XBoard with the frontend and the Laravel backend on separate hosts.
    Xboard,
}
