//! The `hookgate` binary: parses the command line, loads the config, sets up
//! logging and hands over to the library. Errors are printed once, with their
//! cause chain; configuration errors exit with 78 (EX_CONFIG).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use hookgate::config::{self, Config};
use hookgate::{lifecycle, logging, proxy, report, server};

/// EX_CONFIG from sysexits.h: the configuration is invalid.
const EX_CONFIG: u8 = 78;

#[derive(Parser)]
#[command(name = "hookgate", version, about = "Route webhooks to the backend, everything else to the frontend.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the proxy daemon.
    Run(ConfigArg),
    /// Validate the config, print the route table and warn about dead routes.
    Check(ConfigArg),
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
    },
}

#[derive(Args)]
struct ConfigArg {
    /// Path of the TOML route file.
    #[arg(short, long = "config", env = "HOOKGATE_CONFIG", default_value = config::DEFAULT_PATH)]
    config: PathBuf,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(arg) => load(&arg.config).and_then(run),
        Command::Check(arg) => load(&arg.config).map(|config| check(&config)),
        Command::Route { config, method, url, headers } => load(&config.config).and_then(|config| {
            let text = report::explain(&config, &method, &url, &headers).map_err(Failure::Usage)?;
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
        Err(Failure::Runtime(e)) => {
            eprintln!("hookgate: {e:#}");
            ExitCode::FAILURE
        }
    }
}

enum Failure {
    Config(config::ConfigError),
    Usage(String),
    Runtime(anyhow::Error),
}

fn load(path: &Path) -> Result<Config, Failure> {
    Config::load(path).map_err(Failure::Config)
}

fn check(config: &Config) {
    print!("{}", report::route_table(config));
    let shadowed = config.routes.shadowed();
    for s in &shadowed {
        println!("warning: {s}");
    }
    println!("config OK ({} routes, {} warnings)", config.routes.routes().len(), shadowed.len());
}

fn run(config: Config) -> Result<(), Failure> {
    logging::init(&config.log);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .map_err(Failure::Runtime)?;
    runtime.block_on(serve(config)).map_err(Failure::Runtime)
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let shutdown = lifecycle::shutdown_signal().context("cannot install signal handlers")?;
    anyhow::ensure!(!config.listen.addrs.is_empty(), "no listen address: set [listen] addrs");
    let mut listeners = Vec::new();
    for addr in &config.listen.addrs {
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        tracing::info!(addr = %listener.local_addr()?, "listening");
        listeners.push(listener);
    }
    for up in &config.upstreams {
        tracing::info!(name = %up.name, url = %up.url, "upstream");
    }
    for route in config.routes.routes() {
        let action = report::describe_action(&config, &route.action);
        tracing::info!(name = %route.name, r#match = %route.describe_match(), %action, "route");
    }
    tracing::info!(action = %report::describe_action(&config, config.routes.default_action()), "default");
    server::run(listeners, Arc::new(proxy::State::new(config)), shutdown).await;
    Ok(())
}
