//! The `hookgate` binary: parses the command line, loads the config, sets up
//! logging and hands over to the library. Errors are printed once, with their
//! cause chain; configuration errors exit with 78 (EX_CONFIG).

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use hookgate::cli::{Cli, Command, InitArgs, SpoolAction, TelegramAction};
use hookgate::{Config, ConfigError, telegram_cli};
use hookgate::{control, init, lifecycle, logging, report, spool_cli, systemd};

/// EX_CONFIG from sysexits.h: the configuration is invalid.
const EX_CONFIG: u8 = 78;
/// EX_UNAVAILABLE from sysexits.h: a service the command needs cannot be used.
const EX_UNAVAILABLE: u8 = 69;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(arg) => load_to_serve(&arg.config).and_then(|config| run(&arg.config, config)),
        Command::Reload(arg) => load(&arg.config).and_then(|config| reload(&config, &arg.config)),
        Command::Health(arg) => load(&arg.config).and_then(|config| health(&config)),
        Command::Status(arg) => status(&arg.config),
        Command::Telegram { config, action } => load(&config.config).and_then(|config| telegram(&config, action)),
        Command::Spool { config, action } => load(&config.config).and_then(|config| spool(&config, &action)),
        Command::Check(arg) => load_to_serve(&arg.config).map(|config| check(&config, &arg.config)),
        Command::Init(args) => write_config(&args),
        Command::Route { config, method, url, headers, from, body } => load(&config.config).and_then(|config| {
            let body = match body {
                Some(file) => Some(
                    std::fs::read(&file)
                        .map_err(|e| Failure::Usage(format!("--body: cannot read {}: {e}", file.display())))?,
                ),
                None => None,
            };
            let text = report::explain(&config, &method, &url, &headers, from, body.as_deref())
                .map_err(|e| Failure::Usage(e.to_string()))?;
            print!("{text}");
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("{e}");
            ExitCode::from(EX_CONFIG)
        }
        Err(Failure::Usage(e)) => {
            eprintln!("hookgate: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Rejected) => ExitCode::FAILURE,
        Err(Failure::Refused(why)) => {
            eprintln!("hookgate: {why}");
            ExitCode::FAILURE
        }
        Err(Failure::Unavailable(why)) => {
            eprintln!("hookgate: {why}");
            ExitCode::from(EX_UNAVAILABLE)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("hookgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(ConfigError),
    Usage(String),
    /// The daemon answered and said no; its answer was printed.
    Rejected,
    /// A check or a remote service said no; the reason is printed.
    Refused(String),
    /// Neither the daemon nor the file a command works on could be used (69).
    Unavailable(String),
    Runtime(anyhow::Error),
}

/// A single-threaded runtime, for the daemon and for one-shot commands.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        // Access lines a busy runtime kept are written before it sleeps.
        .on_thread_park(hookgate::access_log_before_park)
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Runtime)
}

fn load(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(Failure::Config)
}

/// For `run`, and for `check`, which refuses what `run` would: also a config
/// with nowhere to listen (see `Config::load_to_serve`).
fn load_to_serve(path: &Path) -> Result<Config, Failure> {
    Config::load_to_serve(path).map_err(Failure::Config)
}

/// `hookgate init`: renders, validates and writes a new config.
fn write_config(args: &InitArgs) -> Result<(), Failure> {
    let text = init::render(args).map_err(|e| match e {
        init::InitError::Invalid(e) => Failure::Config(e),
        other => Failure::Usage(other.to_string()),
    })?;
    let replaced = init::write_new(&args.output, &text).map_err(|e| Failure::Refused(e.to_string()))?;
    print!("{}", init::next_steps(&args.output, args, replaced));
    Ok(())
}

fn check(config: &Config, file: &Path) {
    print!("{}", report::route_table(config));
    let warnings = report::warnings(config, file);
    for warning in &warnings {
        println!("warning: {warning}");
    }
    let routes = config.routes.routes().len();
    println!("config OK ({}, {})", counted(routes, "route"), counted(warnings.len(), "warning"));
}

/// `1 route`, `2 routes`, `0 warnings`.
fn counted(n: usize, noun: &str) -> String {
    if n == 1 { format!("1 {noun}") } else { format!("{n} {noun}s") }
}

fn run(path: &Path, config: Config) -> Result<(), Failure> {
    logging::init(&config.log);
    // Before any thread starts: taking the sockets edits the environment.
    let activated = systemd::take_activated().context("cannot take sockets from systemd").map_err(Failure::Runtime)?;
    // A single-threaded runtime; `[runtime] workers` adds worker threads with
    // runtimes of their own (see `server::workers`).
    let runtime = runtime()?;
    return_freed_memory_periodically();
    runtime.block_on(lifecycle::run(path.to_path_buf(), config, activated)).map_err(Failure::Runtime)
}

/// `hookgate telegram ...`: one Bot API exchange, printed in plain words.
fn telegram(config: &Config, action: TelegramAction) -> Result<(), Failure> {
    let outcome = runtime()?.block_on(async {
        match action {
            TelegramAction::SetWebhook => telegram_cli::set_webhook(config).await,
            TelegramAction::Info => {
                // The daemon knows its last repair; ask it when it can be reached.
                let daemon = match config.admin {
                    Some(admin) => control::readyz(admin, config.admin_token.as_ref()).await,
                    None => Err(anyhow::anyhow!("no [admin] listener to ask the daemon")),
                };
                telegram_cli::info(config, daemon.as_deref().map_err(|e| e.as_ref())).await
            }
            TelegramAction::Delete { drop_pending } => telegram_cli::delete(config, drop_pending).await,
        }
    });
    match outcome {
        Ok(text) => {
            print!("{text}");
            Ok(())
        }
        Err(error) => Err(Failure::Refused(error.to_string())),
    }
}

/// `hookgate spool ...`: through the daemon, or on the file when none runs
/// (see `spool_cli`). Exit 1 when the request is not there, 69 when neither
/// way can be used.
fn spool(config: &Config, action: &SpoolAction) -> Result<(), Failure> {
    match runtime()?.block_on(spool_cli::run(config, action)) {
        Ok(text) => {
            print!("{text}");
            Ok(())
        }
        Err(spool_cli::ToolError::NotFound(why)) => Err(Failure::Refused(why)),
        Err(spool_cli::ToolError::Unavailable(why)) => Err(Failure::Unavailable(why)),
    }
}

/// `hookgate reload`: validates the file here, then asks the running daemon
/// (through `[admin] addr`) to load it, and prints what the daemon answered.
/// The daemon reloads the file it was started with: a daemon serving another
/// file is not asked (it would load its own and say "reloaded").
fn reload(config: &Config, path: &Path) -> Result<(), Failure> {
    let Some(admin) = config.admin else {
        return Err(Failure::Usage(
            "hookgate reload talks to the daemon through [admin] addr, which this config does not set; \
             use `systemctl reload hookgate` or `kill -HUP <pid>` instead"
                .to_string(),
        ));
    };
    let runtime = runtime()?;
    let token = config.admin_token.as_ref();
    // A daemon that cannot be asked is left to the reload request to report.
    if let Ok(status) = runtime.block_on(control::status(admin, token))
        && let Some(served) = status["config_file"].as_str()
        && !same_file(Path::new(served), path)
    {
        return Err(Failure::Usage(format!(
            "the daemon at {admin} serves {served}, not {}; it reloads only its own file: edit that one, \
             or restart the daemon with -c {}",
            path.display(),
            path.display()
        )));
    }
    let (ok, answer) = runtime.block_on(control::request_reload(admin, token)).map_err(Failure::Runtime)?;
    print!("{answer}");
    if ok { Ok(()) } else { Err(Failure::Rejected) }
}

/// Whether two paths name one file (through links); as written, made absolute, when either cannot be resolved.
fn same_file(a: &Path, b: &Path) -> bool {
    let resolved = |p: &Path| std::fs::canonicalize(p).or_else(|_| std::path::absolute(p));
    matches!((resolved(a), resolved(b)), (Ok(a), Ok(b)) if a == b)
}

/// `hookgate health`: is the daemon behind this config's `[admin]` alive?
fn health(config: &Config) -> Result<(), Failure> {
    let Some(admin) = config.admin else {
        println!("no [admin] listener in this config: nothing to ask");
        return Ok(());
    };
    match runtime()?.block_on(control::healthz(admin)) {
        Ok(true) => {
            println!("ok: {admin} answers /healthz");
            Ok(())
        }
        Ok(false) => Err(Failure::Refused(format!("{admin} answered /healthz with an error"))),
        Err(e) => Err(Failure::Refused(format!("{e:#}"))),
    }
}

/// `hookgate status`: the status page's summary in the terminal; exit 1 when
/// something needs attention. A file invalid elsewhere than `[admin]` (a
/// reload of it just failed, say) is said, and the daemon asked all the same.
fn status(path: &Path) -> Result<(), Failure> {
    let (admin, token) = match Config::load(path) {
        Ok(config) => (config.admin, config.admin_token),
        Err(invalid) => match Config::load_admin(path) {
            Ok(access) => {
                eprintln!(
                    "{invalid}\nnote: the file is not valid as it is; asking the daemon through its [admin] all the same\n"
                );
                access
            }
            Err(_) => return Err(Failure::Config(invalid)),
        },
    };
    let Some(admin) = admin else {
        return Err(Failure::Usage(
            "hookgate status reads /status.json through [admin] addr, which this config does not set; add \
             [admin] with an addr (commented out in the example config) and restart the daemon"
                .to_string(),
        ));
    };
    let snapshot = runtime()?.block_on(control::status(admin, token.as_ref())).map_err(Failure::Runtime)?;
    let colour = std::io::IsTerminal::is_terminal(&std::io::stdout());
    print!("{}", hookgate::status_summary(&snapshot, colour));
    let trouble = snapshot["trouble"].as_array().is_some_and(|t| !t.is_empty());
    if trouble { Err(Failure::Rejected) } else { Ok(()) }
}

/// Hands memory freed by departed connections back to the OS every 10 s.
///
/// glibc's malloc keeps freed memory in its arenas: after 10,000 idle
/// keep-alive clients left, RSS stayed at 29 MiB; with `malloc_trim` it fell
/// to 8 MiB within seconds. mimalloc and jemalloc were measured too and kept
/// it (41 and 30 MiB), with a higher idle RSS for mimalloc (13 vs 7 MiB).
#[cfg(target_env = "gnu")]
#[allow(unsafe_code)]
fn return_freed_memory_periodically() {
    unsafe extern "C" {
        /// glibc: releases free memory at the top of the heap and in free pages.
        fn malloc_trim(pad: usize) -> i32;
    }
    let trim = || loop {
        std::thread::sleep(std::time::Duration::from_secs(10));
        // SAFETY: malloc_trim takes no pointers and is thread-safe in glibc.
        unsafe { malloc_trim(0) };
    };
    let _ = std::thread::Builder::new().name("hookgate-trim".into()).spawn(trim);
}

#[cfg(not(target_env = "gnu"))]
fn return_freed_memory_periodically() {}
