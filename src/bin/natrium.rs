//! `natrium`: argv -> Options -> Server::run. Nothing else.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser as _;
use natrium::options::Options;
use natrium::server::{Server, VERSION};

/// Command line, with nats-server's flag names.
#[derive(clap::Parser, Debug)]
#[command(
    name = "natrium",
    disable_version_flag = true,
    about = "A NATS protocol message server"
)]
struct Cli {
    /// Client address to listen on.
    #[arg(short = 'a', long = "addr", alias = "net")]
    addr: Option<String>,
    /// Client port (-1 picks a free port).
    #[arg(short = 'p', long = "port", allow_negative_numbers = true)]
    port: Option<i32>,
    /// Server name.
    #[arg(short = 'n', long = "name", alias = "server_name")]
    name: Option<String>,
    /// Log file.
    #[arg(short = 'l', long = "log", alias = "log_file")]
    log: Option<PathBuf>,
    /// PID file.
    #[arg(short = 'P', long = "pid", alias = "pid_file")]
    pid: Option<PathBuf>,
    /// Debug logging.
    #[arg(short = 'D', long = "debug")]
    debug: bool,
    /// Trace logging (protocol lines).
    #[arg(short = 'V', long = "trace")]
    trace: bool,
    /// Timestamps in log lines (-T=false turns them off).
    #[arg(short = 'T', long = "logtime", num_args = 0..=1, require_equals = true,
          default_missing_value = "true", action = clap::ArgAction::Set)]
    logtime: Option<bool>,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// JetStream storage directory (accepted and ignored: no JetStream).
    #[arg(long = "store_dir", alias = "sd")]
    store_dir: Option<PathBuf>,
    /// Configuration file.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Test the configuration file and exit.
    #[arg(short = 't')]
    test_config: bool,
    /// Flags of features that are not built yet: rejected, never ignored.
    #[arg(hide = true, trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<String>,
}

/// Rewrites Go-style argv (`-port 4222`, `-DV`, `-sl`) into what clap parses.
fn normalize_args(args: impl Iterator<Item = String>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, a) in args.enumerate() {
        if i == 0 || !a.starts_with('-') || a.starts_with("--") || a.len() <= 2 {
            out.push(a);
            continue;
        }
        let body = &a[1..];
        if body.parse::<i64>().is_ok() {
            out.push(a); // a negative number: a value, not a flag
        } else if body == "DV" || body == "VD" {
            out.push("-D".into());
            out.push("-V".into());
        } else if body == "sl" || body.starts_with("sl=") {
            out.push(format!("--signal{}", &body[2..]));
        } else if let Some(v) = body.strip_prefix("T=") {
            out.push(format!("--logtime={v}"));
        } else {
            out.push(format!("-{a}"));
        }
    }
    out
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_from(normalize_args(std::env::args()));
    if cli.version {
        println!(
            "natrium: v{} (nats-server v{VERSION} protocol)",
            env!("CARGO_PKG_VERSION")
        );
        return Ok(());
    }
    if let Some(flag) = cli.rest.first() {
        anyhow::bail!("flag or argument {flag:?} is not supported by this natrium build");
    }
    let mut opts = Options::default();
    let mut warnings = Vec::new();
    if let Some(path) = &cli.config {
        match natrium::config::load(path) {
            Ok((o, w)) => {
                opts = o;
                warnings = w;
            }
            Err(e) => {
                eprintln!("nats-server: {e}");
                std::process::exit(1);
            }
        }
    }
    if cli.test_config {
        let Some(path) = &cli.config else {
            eprintln!("nats-server: -t needs a configuration file (-c FILE)");
            std::process::exit(1);
        };
        for w in &warnings {
            eprintln!("nats-server: {}: {w}", path.display());
        }
        println!(
            "nats-server: configuration file {} test is successful",
            path.display()
        );
        return Ok(());
    }
    if let Some(a) = cli.addr {
        opts.host = a;
    }
    if let Some(p) = cli.port {
        opts.port = match p {
            -1 => 0,
            p => u16::try_from(p).with_context(|| format!("invalid port {p}"))?,
        };
    }
    if let Some(n) = cli.name {
        opts.server_name = Some(n);
    }
    opts.log_file = cli.log.or(opts.log_file);
    opts.pid_file = cli.pid.or(opts.pid_file);
    opts.debug |= cli.debug;
    opts.trace |= cli.trace;
    if let Some(t) = cli.logtime {
        opts.logtime = t;
    }
    let _ = cli.store_dir;
    run(opts)
}

fn run(opts: Options) -> anyhow::Result<()> {
    natrium::logging::init(
        opts.log_file.as_deref(),
        opts.debug,
        opts.trace,
        opts.logtime,
    )?;
    if let Some(pid) = &opts.pid_file {
        std::fs::write(pid, std::process::id().to_string())
            .with_context(|| format!("cannot write pid file {}", pid.display()))?;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Server::bind(opts).await?;
        let stop = server.stop_handle();
        tokio::spawn(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut int), Ok(mut term)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
            ) else {
                return;
            };
            tokio::select! {
                _ = int.recv() => tracing::info!("Trapped \"interrupt\" signal"),
                _ = term.recv() => tracing::info!("Trapped \"terminated\" signal"),
            }
            stop.stop();
        });
        server.run().await;
        anyhow::Ok(())
    })
}
