//! `natrium`: argv -> Options -> Server::run, and signals -> server controls.
//! Nothing else: parsing, serving and reloading live in the library.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser as _;
use natrium::logging::LogHandle;
use natrium::options::Options;
use natrium::server::{ControlHandle, Server, VERSION};

/// Command line, with nats-server's flag names.
#[derive(clap::Parser, Debug, Clone)]
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
    /// Monitoring port (HTTP).
    #[arg(short = 'm', long = "http_port", allow_negative_numbers = true)]
    http_port: Option<i32>,
    /// Configuration file.
    #[arg(short = 'c', long = "config")]
    config: Option<PathBuf>,
    /// Test the configuration file and exit.
    #[arg(short = 't')]
    test_config: bool,
    /// User required for connections.
    #[arg(long = "user")]
    user: Option<String>,
    /// Password required for connections.
    #[arg(long = "pass")]
    pass: Option<String>,
    /// Authorization token required for connections.
    #[arg(long = "auth")]
    auth: Option<String>,
    /// Enable TLS (no client certificate verification).
    #[arg(long = "tls")]
    tls: bool,
    /// Server certificate file (PEM).
    #[arg(long = "tlscert")]
    tlscert: Option<PathBuf>,
    /// Private key for the server certificate (PEM).
    #[arg(long = "tlskey")]
    tlskey: Option<PathBuf>,
    /// Enable TLS and verify client certificates.
    #[arg(long = "tlsverify")]
    tlsverify: bool,
    /// Client certificate CA for verification (PEM).
    #[arg(long = "tlscacert")]
    tlscacert: Option<PathBuf>,
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
    /// Send a signal to a running server: stop, quit, term, reopen, reload, ldm
    /// (optionally `=PID`; else the -P pid file, else the only natrium running).
    #[arg(long = "signal")]
    signal: Option<String>,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    /// JetStream storage directory (accepted and ignored: no JetStream).
    #[arg(long = "store_dir", alias = "sd")]
    store_dir: Option<PathBuf>,
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

fn port_from(p: i32, what: &str) -> anyhow::Result<u16> {
    match p {
        -1 => Ok(0),
        p => u16::try_from(p).with_context(|| format!("invalid {what} {p}")),
    }
}

/// Config file (if any) first, then the command line on top, as nats-server.
fn build_options(cli: &Cli) -> anyhow::Result<(Options, Vec<String>)> {
    let (mut opts, warnings) = match &cli.config {
        Some(path) => natrium::config::load(path)?,
        None => (Options::default(), Vec::new()),
    };
    if let Some(a) = &cli.addr {
        opts.host = a.clone();
    }
    if let Some(p) = cli.port {
        opts.port = port_from(p, "port")?;
    }
    if let Some(p) = cli.http_port {
        opts.http_port = Some(port_from(p, "http_port")?);
    }
    if let Some(n) = &cli.name {
        opts.server_name = Some(n.clone());
    }
    if cli.log.is_some() {
        opts.log_file = cli.log.clone();
    }
    if cli.pid.is_some() {
        opts.pid_file = cli.pid.clone();
    }
    if cli.user.is_some() {
        opts.username = cli.user.clone();
    }
    if cli.pass.is_some() {
        opts.password = cli.pass.clone();
    }
    if cli.auth.is_some() {
        opts.token = cli.auth.clone();
    }
    if cli.tls || cli.tlsverify || cli.tlscert.is_some() || cli.tlskey.is_some() {
        let mut tls = opts.tls.clone().unwrap_or_default();
        if cli.tlscert.is_some() {
            tls.cert_file = cli.tlscert.clone();
        }
        if cli.tlskey.is_some() {
            tls.key_file = cli.tlskey.clone();
        }
        if cli.tlscacert.is_some() {
            tls.ca_file = cli.tlscacert.clone();
        }
        tls.verify |= cli.tlsverify;
        opts.tls = Some(tls);
    }
    opts.debug |= cli.debug;
    opts.trace |= cli.trace;
    if let Some(t) = cli.logtime {
        opts.logtime = t;
    }
    Ok((opts, warnings))
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
    if let Some(cmd) = &cli.signal {
        return send_signal(cmd, cli.pid.as_deref());
    }
    natrium::server::raise_fd_limit();
    let (opts, warnings) = match build_options(&cli) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("nats-server: {e:#}");
            std::process::exit(1);
        }
    };
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
    let _ = &cli.store_dir;
    run(cli, opts, warnings)
}

fn run(cli: Cli, opts: Options, warnings: Vec<String>) -> anyhow::Result<()> {
    let log = natrium::logging::init(
        opts.log_file.as_deref(),
        opts.debug,
        opts.trace,
        opts.logtime,
    )?;
    for w in warnings {
        tracing::warn!("{w}");
    }
    if let Some(pid) = &opts.pid_file {
        std::fs::write(pid, std::process::id().to_string())
            .with_context(|| format!("cannot write pid file {}", pid.display()))?;
    }
    let pid_file = opts.pid_file.clone();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = Server::bind(opts).await?;
        tokio::spawn(handle_signals(server.control(), cli, log));
        server.run_with_monitor(natrium::monitor::serve).await;
        anyhow::Ok(())
    })?;
    if let Some(pid) = pid_file {
        let _ = std::fs::remove_file(pid);
    }
    Ok(())
}

/// Turns process signals into server controls, as nats-server: INT/TERM stop,
/// HUP reloads the config file, USR2 lame duck mode, USR1 reopens the log file.
async fn handle_signals(control: ControlHandle, cli: Cli, log: LogHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup), Ok(mut usr1), Ok(mut usr2)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
        signal(SignalKind::user_defined1()),
        signal(SignalKind::user_defined2()),
    ) else {
        tracing::error!("cannot install signal handlers");
        return;
    };
    loop {
        tokio::select! {
            _ = int.recv() => {
                control.stop();
                tracing::info!("Trapped \"interrupt\" signal");
            }
            _ = term.recv() => {
                control.stop();
                tracing::info!("Trapped \"terminated\" signal");
            }
            _ = usr2.recv() => control.lame_duck(),
            _ = usr1.recv() => match log.target.reopen() {
                Ok(()) => tracing::info!("Reopened log file"),
                Err(e) => tracing::error!("Failed to reopen log file: {e}"),
            },
            _ = hup.recv() => reload(&control, &cli, &log),
        }
    }
}

fn reload(control: &ControlHandle, cli: &Cli, log: &LogHandle) {
    if cli.config.is_none() {
        tracing::error!("Failed to reload server configuration: no config file (-c) given");
        return;
    }
    match build_options(cli) {
        Ok((opts, warnings)) => {
            for w in warnings {
                tracing::warn!("{w}");
            }
            if let Err(e) = log.set_level(opts.debug, opts.trace) {
                tracing::error!("Failed to change log level: {e}");
            }
            control.reload(opts);
        }
        Err(e) => tracing::error!("Failed to reload server configuration: {e:#}"),
    }
}

/// `--signal CMD[=PID]`: signals a running natrium like nats-server does.
fn send_signal(cmd: &str, pid_file: Option<&Path>) -> anyhow::Result<()> {
    let (cmd, pid) = match cmd.split_once('=') {
        Some((c, p)) => (c, Some(p.trim().parse::<u32>().context("invalid pid")?)),
        None => (cmd, None),
    };
    let sig = match cmd {
        "stop" => "-KILL",
        "quit" => "-INT",
        "term" => "-TERM",
        "reopen" => "-USR1",
        "reload" => "-HUP",
        "ldm" => "-USR2",
        other => anyhow::bail!("unknown signal {other:?} (stop, quit, term, reopen, reload, ldm)"),
    };
    let pid = match (pid, pid_file) {
        (Some(p), _) => p,
        (None, Some(f)) => std::fs::read_to_string(f)
            .with_context(|| format!("cannot read pid file {}", f.display()))?
            .trim()
            .parse()
            .context("pid file does not hold a pid")?,
        (None, None) => find_single_natrium()?,
    };
    let status = std::process::Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .context("cannot run kill")?;
    anyhow::ensure!(status.success(), "signal {cmd} to pid {pid} failed");
    Ok(())
}

fn find_single_natrium() -> anyhow::Result<u32> {
    let me = std::process::id();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
        if pid != me && comm.trim() == "natrium" {
            found.push(pid);
        }
    }
    match found.as_slice() {
        [pid] => Ok(*pid),
        [] => anyhow::bail!("no natrium process is running"),
        _ => anyhow::bail!("multiple natrium processes are running; give one as CMD=PID"),
    }
}
