//! `natrium-bench`: a load generator for any NATS server, with honest latency
//! (fixed-rate requests, corrected and uncorrected HdrHistograms) and an A/B
//! comparison mode.
//!
//! Owns the command line, the runtime, Ctrl-C handling and output files. It
//! must not touch the server's code: it only speaks the protocol, through the
//! project's `protocol::server_ops` parser.
//!
//! Exit codes: 0 ok, 1 error, 2 messages lost or duplicated, 130 interrupted.

mod compare;
mod conn;
mod hist;
mod latency;
mod pace;
mod progress;
mod stats;
mod throughput;

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};

use conn::Endpoint;
use progress::Progress;
use stats::Report;

/// The workloads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// N publishers, nobody subscribed.
    Pub,
    /// M subscribers only (someone else publishes).
    Sub,
    /// N publishers × M subscribers, every subscriber gets every message.
    Pubsub,
    /// 1 publisher → M subscribers.
    Fanout,
    /// N publishers → a queue group of M members (each message once).
    Queue,
    /// Request/reply round trips at --rate (N requesters, M responders).
    #[value(name = "reqrep")]
    ReqRep,
    /// One-way latency at --rate, timestamps in the payload.
    Latency,
    /// No server: draw --plot from .hgrm files (--series, --dashed-series).
    Plot,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Pub => "pub",
            Workload::Sub => "sub",
            Workload::Pubsub => "pubsub",
            Workload::Fanout => "fanout",
            Workload::Queue => "queue",
            Workload::ReqRep => "reqrep",
            Workload::Latency => "latency",
            Workload::Plot => "plot",
        }
    }
}

#[derive(Debug, Parser)]
#[command(
    name = "natrium-bench",
    version,
    about = "Load generator for NATS servers"
)]
struct Cli {
    workload: Workload,
    /// Server URL(s), comma separated; clients are spread round-robin.
    /// Credentials may be in the URL: nats://user:pass@host:port, nats://token@host.
    #[arg(short, long, default_value = "nats://127.0.0.1:4222")]
    server: String,
    /// Messages per publisher (requests per requester). Default 100000
    /// (10000 for latency workloads) unless --duration is given.
    #[arg(short = 'n', long)]
    msgs: Option<u64>,
    /// Run for this long instead (e.g. 10s, 500ms, 2m).
    #[arg(short, long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Payload bytes.
    #[arg(long, default_value_t = 16)]
    size: usize,
    #[arg(long, default_value = "bench.load")]
    subject: String,
    /// Publishers (requesters for reqrep, senders for latency).
    #[arg(short, long, default_value_t = 1)]
    pubs: usize,
    /// Subscribers (queue members, responders: 0 = someone else responds).
    #[arg(short = 'c', long, default_value_t = 1)]
    subs: usize,
    /// Queue group name for `queue`.
    #[arg(long, default_value = "natrium-bench")]
    queue: String,
    /// Target rate, messages (requests) per second over all senders. reqrep and
    /// latency: default 1000. pub, pubsub, fanout, queue: paced sends at this
    /// rate instead of as fast as possible (equal offered load).
    #[arg(long)]
    rate: Option<f64>,
    /// Cycle publishes over SUBJECT.0 … SUBJECT.K-1.
    #[arg(long, default_value_t = 1)]
    subjects: usize,
    /// Before measuring, create this many non-matching wildcard subscriptions
    /// on one extra connection.
    #[arg(long, default_value_t = 0)]
    extra_subs: usize,
    /// How long subscribers wait for stragglers once publishers are done.
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    wait: Duration,
    #[arg(long)]
    user: Option<String>,
    #[arg(long)]
    pass: Option<String>,
    #[arg(long)]
    token: Option<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
    /// Write the corrected latency distribution (.hgrm text) here.
    #[arg(long)]
    hist: Option<std::path::PathBuf>,
    /// Draw latency by percentile (SVG, log scales) here.
    #[arg(long)]
    plot: Option<std::path::PathBuf>,
    /// `plot`: a solid line, LABEL=FILE.hgrm (repeatable).
    #[arg(long, value_name = "LABEL=FILE")]
    series: Vec<String>,
    /// `plot`: a dashed line, LABEL=FILE.hgrm (repeatable); the k-th dashed
    /// line has the k-th solid line's colour.
    #[arg(long, value_name = "LABEL=FILE")]
    dashed_series: Vec<String>,
    /// `plot`: the plot's title.
    #[arg(long, default_value = "latency by percentile")]
    title: String,
    /// Run against two servers, alternating A B A B.
    #[arg(long, num_args = 2, value_names = ["URL_A", "URL_B"])]
    compare: Option<Vec<String>>,
    /// Rounds for --compare.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Progress bar: auto (when stderr is a terminal), always, never.
    #[arg(long, default_value = "auto")]
    progress: String,
}

/// A workload's parameters, shared by all modules.
#[derive(Debug, Clone)]
pub struct Load {
    pub workload: Workload,
    pub servers: Vec<Endpoint>,
    pub msgs: Option<u64>,
    pub duration: Option<Duration>,
    pub size: usize,
    pub subject: String,
    pub pubs: usize,
    pub subs: usize,
    pub queue: String,
    /// reqrep/latency target rate.
    pub rate: f64,
    /// Throughput workloads: paced at this many msgs/s over all publishers.
    pub pace: Option<f64>,
    pub subjects: usize,
    pub extra_subs: usize,
    pub wait: Duration,
    pub show_progress: bool,
}

/// Run-wide shared state: the Ctrl-C flag and the progress counter.
#[derive(Clone)]
pub struct Ctx {
    pub stop: Arc<AtomicBool>,
    pub progress: Arc<Progress>,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => v / 1e3,
        "us" | "µs" => v / 1e6,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("bad duration unit in {s:?} (ms, s, m)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())
}

fn endpoint(url: &str, cli: &Cli) -> Result<Endpoint> {
    let mut ep = Endpoint::parse(url.trim())?;
    if cli.user.is_some() {
        ep.user.clone_from(&cli.user);
        ep.pass.clone_from(&cli.pass);
    }
    if cli.token.is_some() {
        ep.token.clone_from(&cli.token);
    }
    Ok(ep)
}

/// One run of the workload with a fresh progress counter.
pub async fn run_once(load: &Load, ctx: &Ctx) -> Result<Report> {
    let senders = match load.workload {
        Workload::Sub => load.subs,
        Workload::Fanout => 1,
        _ => load.pubs.max(1),
    } as u64;
    let default_n = matches!(load.workload, Workload::ReqRep | Workload::Latency).then_some(10_000);
    let total = load.msgs.or(default_n).unwrap_or(0) * senders;
    let progress = Arc::new(Progress::new(total, load.duration));
    let ctx = Ctx {
        stop: ctx.stop.clone(),
        progress: progress.clone(),
    };
    let drawer = load.show_progress.then(|| {
        progress.spawn_drawer(format!("{} {}", load.workload.name(), load.servers[0].url))
    });
    let r = match load.workload {
        Workload::ReqRep | Workload::Latency => latency::run(load, &ctx).await,
        _ => throughput::run(load, &ctx).await,
    };
    progress.finish();
    if let Some(d) = drawer {
        let _ = d.await;
    }
    r
}

fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// `natrium-bench plot`: one SVG from .hgrm files.
fn plot_files(cli: &Cli) -> Result<i32> {
    let Some(out) = &cli.plot else {
        bail!("plot needs --plot OUT.svg");
    };
    let mut series = Vec::new();
    for (specs, dashed) in [(&cli.series, false), (&cli.dashed_series, true)] {
        for (color, spec) in specs.iter().enumerate() {
            let (name, path) = spec
                .rsplit_once('=')
                .with_context(|| format!("series {spec:?} is not LABEL=FILE"))?;
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {path}"))?;
            series.push(hist::Series {
                name: name.to_string(),
                points: hist::points_of_hgrm(&text)
                    .with_context(|| format!("{path} is not an .hgrm file"))?,
                dashed,
                color,
            });
        }
    }
    if series.is_empty() {
        bail!("plot needs at least one --series or --dashed-series LABEL=FILE.hgrm");
    }
    write_file(out, &hist::svg(&cli.title, &series))?;
    Ok(0)
}

async fn main_async(cli: Cli) -> Result<i32> {
    if cli.workload == Workload::Plot {
        return plot_files(&cli);
    }
    let servers = cli
        .server
        .split(',')
        .map(|u| endpoint(u, &cli))
        .collect::<Result<Vec<_>>>()?;
    let mut msgs = cli.msgs;
    if msgs.is_none() && cli.duration.is_none() {
        msgs = Some(match cli.workload {
            Workload::ReqRep | Workload::Latency => 10_000,
            _ => 100_000,
        });
    }
    if cli.rate.is_some_and(|r| r <= 0.0 || !r.is_finite()) {
        bail!("--rate must be positive");
    }
    let lat = matches!(cli.workload, Workload::ReqRep | Workload::Latency);
    let load = Load {
        workload: cli.workload,
        servers,
        msgs,
        duration: cli.duration,
        size: cli.size,
        subject: cli.subject.clone(),
        pubs: cli.pubs,
        subs: cli.subs,
        queue: cli.queue.clone(),
        rate: cli.rate.unwrap_or(1000.0),
        pace: cli.rate.filter(|_| !lat),
        subjects: cli.subjects.max(1),
        extra_subs: cli.extra_subs,
        wait: cli.wait,
        show_progress: match cli.progress.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stderr().is_terminal(),
        },
    };
    let ctx = Ctx {
        stop: Arc::new(AtomicBool::new(false)),
        progress: Arc::new(Progress::default()),
    };
    let stop = ctx.stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\nnatrium-bench: interrupted, reporting what was measured so far");
            stop.store(true, Relaxed);
        }
    });
    if let Some(urls) = &cli.compare {
        let eps = [endpoint(&urls[0], &cli)?, endpoint(&urls[1], &cli)?];
        let c = compare::compare(&load, eps, cli.rounds.max(1), &ctx).await?;
        if cli.json {
            println!("{}", serde_json::to_string_pretty(&c)?);
        } else {
            print!("{}", c.table());
        }
        if let Some(p) = &cli.hist {
            write_file(p, &hist::hgrm(&c.hists[0]))?;
            write_file(&p.with_extension("b.hgrm"), &hist::hgrm(&c.hists[1]))?;
        }
        if let (Some(p), true) = (&cli.plot, lat) {
            let series = [
                hist::Series {
                    name: format!("A {}", c.a),
                    points: hist::points(&c.hists[0]),
                    dashed: false,
                    color: 0,
                },
                hist::Series {
                    name: format!("B {}", c.b),
                    points: hist::points(&c.hists[1]),
                    dashed: false,
                    color: 1,
                },
            ];
            write_file(
                p,
                &hist::svg(
                    &format!("{} latency (corrected)", load.workload.name()),
                    &series,
                ),
            )?;
        }
        return Ok(exit_code(c.interrupted, c.lost));
    }
    let r = run_once(&load, &ctx).await?;
    if cli.json {
        println!("{}", serde_json::to_string_pretty(&r)?);
    } else {
        print!("{}", r.table());
    }
    if let Some(l) = &r.latency {
        if let Some(p) = &cli.hist {
            write_file(p, &hist::hgrm(&l.hist_corrected))?;
        }
        if let Some(p) = &cli.plot {
            let series = [
                hist::Series {
                    name: format!("{} corrected", r.server),
                    points: hist::points(&l.hist_corrected),
                    dashed: false,
                    color: 0,
                },
                hist::Series {
                    name: format!("{} uncorrected", r.server),
                    points: hist::points(&l.hist_uncorrected),
                    dashed: true,
                    color: 1,
                },
            ];
            write_file(p, &hist::svg(&format!("{} latency", r.workload), &series))?;
        }
    }
    if r.lost > 0 || r.duplicated > 0 {
        eprintln!(
            "natrium-bench: DELIVERY CHECK FAILED: {} lost, {} duplicated of {} expected",
            r.lost, r.duplicated, r.expected
        );
    }
    Ok(exit_code(r.interrupted, r.lost + r.duplicated))
}

fn exit_code(interrupted: bool, bad: u64) -> i32 {
    match (bad > 0, interrupted) {
        (true, false) => 2,
        (_, true) => 130,
        _ => 0,
    }
}

fn main() {
    let cli = Cli::parse();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    // Pinned to one CPU (`taskset -c 1`), a current-thread runtime avoids a
    // second thread handing tasks over on the same core.
    let rt = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    };
    let code = match rt {
        Ok(rt) => match rt.block_on(main_async(cli)) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("natrium-bench: error: {e:#}");
                1
            }
        },
        Err(e) => {
            eprintln!("natrium-bench: error: cannot start the runtime: {e}");
            1
        }
    };
    std::process::exit(code);
}
