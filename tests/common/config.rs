//! Config text more than one test file writes: XBoard's Telegram webhook
//! route and the `[telegram]` table that names it.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The path XBoard serves Telegram's webhook on.
pub const WEBHOOK_PATH: &str = "/api/v1/guest/telegram/webhook";

/// The `telegram-webhook` route (Telegram's POST on XBoard's path) and the
/// `[telegram]` table for it, with the bot token read from `{dir}/token` (and
/// the route's secret, when asked for, from `{dir}/secret`). A test writes the
/// rest of its config around the two parts:
///
/// ```text
/// let webhook = Webhook::new(dir.path(), api).secret();
/// format!("[upstreams.backend]\n…\n{}[default]\n…\n{}", webhook.route(), webhook.telegram())
/// ```
#[derive(Clone)]
pub struct Webhook {
    dir: PathBuf,
    api: String,
    upstream: String,
    monitor_interval: String,
    route_lines: Vec<String>,
    telegram_lines: Vec<String>,
}

impl Webhook {
    /// To upstream `backend`, with the Bot API at `http://{api}`, checked
    /// every second.
    pub fn new(dir: &Path, api: impl Display) -> Webhook {
        Webhook {
            dir: dir.to_path_buf(),
            api: api.to_string(),
            upstream: "backend".to_string(),
            monitor_interval: "1s".to_string(),
            route_lines: Vec::new(),
            telegram_lines: Vec::new(),
        }
    }

    /// The route goes to upstream `name`.
    pub fn upstream(mut self, name: &str) -> Webhook {
        self.upstream = name.to_string();
        self
    }

    /// Only from Telegram's addresses, and loopback (where the tests send from).
    pub fn allow_telegram(self) -> Webhook {
        self.route_line(r#"allow_from = ["127.0.0.0/8", "telegram"]"#)
    }

    /// The route requires Telegram's secret header, its value in `{dir}/secret`.
    pub fn secret(self) -> Webhook {
        let dir = self.dir.display().to_string();
        self.route_line(&format!(
            r#"secret_header = {{ name = "X-Telegram-Bot-Api-Secret-Token", value_file = "{dir}/secret" }}"#
        ))
    }

    /// `[telegram] monitor_interval`.
    pub fn monitor_interval(mut self, interval: &str) -> Webhook {
        self.monitor_interval = interval.to_string();
        self
    }

    /// One more line in the route.
    pub fn route_line(mut self, line: &str) -> Webhook {
        self.route_lines.push(line.to_string());
        self
    }

    /// One more line in `[telegram]`.
    pub fn telegram_line(mut self, line: &str) -> Webhook {
        self.telegram_lines.push(line.to_string());
        self
    }

    /// The `[[routes]]` entry, ending in a newline.
    pub fn route(&self) -> String {
        let mut text = format!(
            "[[routes]]\nname = \"telegram-webhook\"\npath = \"{WEBHOOK_PATH}\"\nmethods = [\"POST\"]\nupstream = \"{}\"\n",
            self.upstream
        );
        for line in &self.route_lines {
            text += &format!("{line}\n");
        }
        text
    }

    /// The `[telegram]` table, ending in a newline.
    pub fn telegram(&self) -> String {
        let mut text = format!(
            "[telegram]\nbot_token_file = \"{}/token\"\npublic_url = \"https://www.example.com\"\n\
             route = \"telegram-webhook\"\napi_url = \"http://{}\"\n",
            self.dir.display(),
            self.api
        );
        for line in &self.telegram_lines {
            text += &format!("{line}\n");
        }
        text + &format!("monitor_interval = \"{}\"\n", self.monitor_interval)
    }
}
