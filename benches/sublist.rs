//! Benchmarks of the matching engine against its baselines (naive scan, the
//! talk's single-RwLock trie) and against the rejected design (global cache
//! invalidation), on the four workloads of issue 2:
//! 1. micro: subscribe / unsubscribe / match, cold (empty) and hot (1,000 subs);
//! 2. throughput: 1,000 `d.d.d` subs with `*`, 100,000 derived messages;
//! 3. concurrency: 1..16 threads, 50/50 and 90/10 lookup/subscribe;
//! 4. scale: 10k / 100k / 1M subs, match latency and bytes per subscription.
//!
//! Run: `cargo bench --bench sublist -- --warm-up-time 1 --measurement-time 2`
//! (results and the design decision: docs/PERFORMANCE.md, sublist section).
//! Memory figures are printed to stderr (`scale-mem ...` lines); a counting
//! global allocator measures live heap bytes (it adds one relaxed atomic per
//! allocation to every engine alike; the cache-hit path allocates nothing).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
#[path = "support/baseline.rs"]
mod baseline;

use baseline::{NaiveScan, RwLockTrie};
use natrium::sublist::{Invalidation, Sublist, SublistConfig};

// ---------------------------------------------------------------- allocator

struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
        LIVE.fetch_add(n as isize - l.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(p, l, n) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn rss_bytes() -> i64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: i64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

// ---------------------------------------------------------------- engines

trait Engine: Send + Sync + 'static {
    fn ins(&self, s: &[u8], id: u64);
    fn rem(&self, s: &[u8], id: u64);
    fn lookup(&self, s: &[u8]) -> usize;
}

impl Engine for Sublist<u64> {
    fn ins(&self, s: &[u8], id: u64) {
        self.insert(s, None, id).unwrap();
    }
    fn rem(&self, s: &[u8], id: u64) {
        self.remove(s, None, &id).unwrap();
    }
    #[inline]
    fn lookup(&self, s: &[u8]) -> usize {
        self.match_subject(s).len()
    }
}

impl Engine for RwLockTrie<u64> {
    fn ins(&self, s: &[u8], id: u64) {
        self.insert(s, None, id).unwrap();
    }
    fn rem(&self, s: &[u8], id: u64) {
        self.remove(s, None, &id).unwrap();
    }
    fn lookup(&self, s: &[u8]) -> usize {
        self.match_subject(s).len()
    }
}

impl Engine for NaiveScan<u64> {
    fn ins(&self, s: &[u8], id: u64) {
        self.insert(s, None, id).unwrap();
    }
    fn rem(&self, s: &[u8], id: u64) {
        self.remove(s, None, &id).unwrap();
    }
    fn lookup(&self, s: &[u8]) -> usize {
        self.match_subject(s).len()
    }
}

type Factory = fn() -> Arc<dyn EngineDyn>;

/// Object-safe wrapper so one table can list every engine.
trait EngineDyn: Send + Sync {
    fn ins(&self, s: &[u8], id: u64);
    fn rem(&self, s: &[u8], id: u64);
    fn lookup(&self, s: &[u8]) -> usize;
}
impl<E: Engine> EngineDyn for E {
    fn ins(&self, s: &[u8], id: u64) {
        Engine::ins(self, s, id)
    }
    fn rem(&self, s: &[u8], id: u64) {
        Engine::rem(self, s, id)
    }
    #[inline]
    fn lookup(&self, s: &[u8]) -> usize {
        Engine::lookup(self, s)
    }
}

fn sublist() -> Arc<dyn EngineDyn> {
    Arc::new(Sublist::<u64>::new())
}
fn sublist_nocache() -> Arc<dyn EngineDyn> {
    Arc::new(Sublist::<u64>::with_cache_capacity(0))
}
fn sublist_global() -> Arc<dyn EngineDyn> {
    let mut cfg = SublistConfig::with_capacity(1024);
    cfg.invalidation = Invalidation::Global;
    Arc::new(Sublist::<u64>::with_config(cfg))
}
fn sublist_1shard() -> Arc<dyn EngineDyn> {
    let mut cfg = SublistConfig::with_capacity(1024);
    cfg.cache_shards = 1;
    Arc::new(Sublist::<u64>::with_config(cfg))
}
fn rwlock_trie() -> Arc<dyn EngineDyn> {
    Arc::new(RwLockTrie::<u64>::default())
}
fn naive() -> Arc<dyn EngineDyn> {
    Arc::new(NaiveScan::<u64>::default())
}

// ---------------------------------------------------------------- data

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// 1,000 random 5-token subscriptions (10% of tokens `*`) and literal
/// subjects derived from them.
fn micro_set() -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = Rng(1);
    let words = [
        "foo", "bar", "baz", "qux", "quux", "corge", "grault", "garply", "waldo", "fred",
    ];
    let mut subs = Vec::new();
    let mut msgs = Vec::new();
    for _ in 0..1000 {
        let mut s = Vec::new();
        let mut m = Vec::new();
        for t in 0..5 {
            let w = words[rng.below(10) as usize];
            let wild = rng.below(10) == 0;
            if t > 0 {
                s.push(b'.');
                m.push(b'.');
            }
            s.extend_from_slice(if wild { b"*" } else { w.as_bytes() });
            m.extend_from_slice(w.as_bytes());
        }
        subs.push(s);
        msgs.push(m);
    }
    (subs, msgs)
}

/// Issue 2 workload 2: `d.d.d`, `*` in token 1 every 10th, token 2 every 25th,
/// token 3 every 45th; messages replace `*` by a random number.
fn throughput_set(n_msgs: usize) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let mut rng = Rng(2);
    let mut subs: Vec<[Option<u64>; 3]> = Vec::new();
    for i in 0..1000u64 {
        let mut t = [
            Some(rng.below(100)),
            Some(rng.below(100)),
            Some(rng.below(100)),
        ];
        if i % 10 == 0 {
            t[0] = None;
        }
        if i % 25 == 0 {
            t[1] = None;
        }
        if i % 45 == 0 {
            t[2] = None;
        }
        subs.push(t);
    }
    let fmt = |t: &[Option<u64>; 3], rng: Option<&mut Rng>| -> Vec<u8> {
        let mut rng = rng;
        let parts: Vec<String> = t
            .iter()
            .map(|x| match (x, rng.as_deref_mut()) {
                (Some(v), _) => v.to_string(),
                (None, Some(r)) => r.below(100).to_string(),
                (None, None) => "*".to_string(),
            })
            .collect();
        parts.join(".").into_bytes()
    };
    let sub_subjects = subs.iter().map(|t| fmt(t, None)).collect();
    let msgs = (0..n_msgs)
        .map(|k| fmt(&subs[k % 1000], Some(&mut rng)))
        .collect();
    (sub_subjects, msgs)
}

// ---------------------------------------------------------------- 1. micro

fn timed_batches(
    iters: u64,
    mut setup: impl FnMut(u64),
    mut op: impl FnMut(u64),
    mut undo: impl FnMut(u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (iters - done).min(100);
        for i in 0..n {
            setup(i);
        }
        let t = Instant::now();
        for i in 0..n {
            op(i);
        }
        total += t.elapsed();
        for i in 0..n {
            undo(i);
        }
        done += n;
    }
    total
}

fn micro(c: &mut Criterion) {
    let (subs, msgs) = micro_set();
    let engines: [(&str, Factory); 4] = [
        ("sublist", sublist),
        ("sublist_nocache", sublist_nocache),
        ("rwlock_trie", rwlock_trie),
        ("naive", naive),
    ];
    let mut g = c.benchmark_group("micro");
    for (name, make) in engines {
        for hot in [false, true] {
            let state = if hot { "hot" } else { "cold" };
            let e = make();
            if hot {
                for (i, s) in subs.iter().enumerate() {
                    e.ins(s, i as u64);
                }
            }
            let extra = |i: u64| &subs[(i as usize * 7) % subs.len()];
            g.bench_function(BenchmarkId::new(format!("subscribe/{state}"), name), |b| {
                b.iter_custom(|iters| {
                    timed_batches(
                        iters,
                        |_| {},
                        |i| e.ins(extra(i), 1_000_000 + i),
                        |i| e.rem(extra(i), 1_000_000 + i),
                    )
                })
            });
            g.bench_function(
                BenchmarkId::new(format!("unsubscribe/{state}"), name),
                |b| {
                    b.iter_custom(|iters| {
                        timed_batches(
                            iters,
                            |i| e.ins(extra(i), 1_000_000 + i),
                            |i| e.rem(extra(i), 1_000_000 + i),
                            |_| {},
                        )
                    })
                },
            );
            let mut k = 0usize;
            g.bench_function(BenchmarkId::new(format!("match/{state}"), name), |b| {
                b.iter(|| {
                    k = (k + 1) & 63;
                    black_box(e.lookup(black_box(&msgs[k])))
                })
            });
        }
    }
    g.finish();
}

// ---------------------------------------------------------------- 2. throughput

fn throughput(c: &mut Criterion) {
    let (subs, msgs) = throughput_set(100_000);
    let engines: [(&str, Factory); 4] = [
        ("sublist", sublist),
        ("sublist_nocache", sublist_nocache),
        ("rwlock_trie", rwlock_trie),
        ("naive", naive),
    ];
    let mut g = c.benchmark_group("throughput");
    g.sample_size(10);
    for (name, make) in engines {
        let e = make();
        for (i, s) in subs.iter().enumerate() {
            e.ins(s, i as u64);
        }
        // The naive scan gets a 10k-message slice; rates are per message.
        let n = if name == "naive" { 10_000 } else { msgs.len() };
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(BenchmarkId::new("ddd_1000subs", name), |b| {
            b.iter(|| {
                let mut total = 0;
                for m in &msgs[..n] {
                    total += e.lookup(m);
                }
                black_box(total)
            })
        });
    }
    g.finish();
}

// ---------------------------------------------------------------- 3. concurrency

/// Where the driver hands each iteration's engine to the workers.
type Slot = Arc<Mutex<Option<Arc<dyn EngineDyn>>>>;

/// Worker threads kept across iterations; each iteration gets a fresh engine.
struct Pool {
    slot: Slot,
    start: Arc<Barrier>,
    end: Arc<Barrier>,
    stop: Arc<AtomicBool>,
    handles: Vec<thread::JoinHandle<()>>,
}

impl Pool {
    fn new(threads: usize, read_pct: u64, subjects: Arc<Vec<Vec<u8>>>) -> Pool {
        let slot: Slot = Arc::new(Mutex::new(None));
        let start = Arc::new(Barrier::new(threads + 1));
        let end = Arc::new(Barrier::new(threads + 1));
        let stop = Arc::new(AtomicBool::new(false));
        let handles = (0..threads as u64)
            .map(|t| {
                let (slot, start, end, stop, subjects) = (
                    slot.clone(),
                    start.clone(),
                    end.clone(),
                    stop.clone(),
                    subjects.clone(),
                );
                thread::spawn(move || loop {
                    start.wait();
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let e = slot.lock().unwrap().clone().unwrap();
                    let mut rng = Rng(t + 17);
                    for (j, s) in subjects.iter().enumerate() {
                        if rng.below(100) < read_pct {
                            black_box(e.lookup(s));
                        } else {
                            e.ins(s, (t << 32) | j as u64);
                        }
                    }
                    drop(e);
                    end.wait();
                })
            })
            .collect();
        Pool {
            slot,
            start,
            end,
            stop,
            handles,
        }
    }

    fn run(&self, e: Arc<dyn EngineDyn>) -> Duration {
        *self.slot.lock().unwrap() = Some(e);
        let t = Instant::now();
        self.start.wait();
        self.end.wait();
        let d = t.elapsed();
        self.slot.lock().unwrap().take();
        d
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.start.wait();
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

fn concurrency(c: &mut Criterion) {
    let subjects: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..1000)
            .map(|j| format!("{}.{}.{}", j % 10, j % 50, j).into_bytes())
            .collect(),
    );
    let engines: [(&str, Factory); 4] = [
        ("sublist", sublist),
        ("sublist_global_inval", sublist_global),
        ("sublist_1shard", sublist_1shard),
        ("rwlock_trie", rwlock_trie),
    ];
    for read_pct in [50u64, 90] {
        let mut g = c.benchmark_group(format!("concurrency_{read_pct}_{}", 100 - read_pct));
        g.sample_size(20);
        for threads in [1usize, 2, 4, 8, 16] {
            let pool = Pool::new(threads, read_pct, subjects.clone());
            for (name, make) in engines {
                g.bench_function(BenchmarkId::new(name, threads), |b| {
                    b.iter_custom(|iters| {
                        let mut total = Duration::ZERO;
                        for _ in 0..iters {
                            let e = make();
                            for (j, s) in subjects.iter().enumerate() {
                                e.ins(s, j as u64);
                            }
                            total += pool.run(e);
                        }
                        total
                    })
                });
            }
        }
        g.finish();
    }
}

// ---------------------------------------------------------------- 4. scale

fn scale_subject(i: u64) -> Vec<u8> {
    let (a, b) = (i % 64, (i / 64) % 256);
    let s = if i % 100 == 0 {
        format!("app{a}.svc{b}.>")
    } else if i % 10 == 0 {
        format!("app{a}.*.{i}")
    } else {
        format!("app{a}.svc{b}.{i}")
    };
    s.into_bytes()
}

fn build_measured(name: &str, make: Factory, n: u64) -> Arc<dyn EngineDyn> {
    let subjects: Vec<Vec<u8>> = (0..n).map(scale_subject).collect();
    let (live0, rss0) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    let t = Instant::now();
    let e = make();
    for (i, s) in subjects.iter().enumerate() {
        e.ins(s, i as u64);
    }
    let build = t.elapsed();
    let (live1, rss1) = (LIVE.load(Ordering::Relaxed), rss_bytes());
    eprintln!(
        "scale-mem engine={name} subs={n} heap_bytes_per_sub={:.1} rss_bytes_per_sub={:.1} insert_ns_per_sub={:.0}",
        (live1 - live0) as f64 / n as f64,
        (rss1 - rss0) as f64 / n as f64,
        build.as_nanos() as f64 / n as f64,
    );
    e
}

fn scale(c: &mut Criterion) {
    let mut g = c.benchmark_group("scale");
    g.sample_size(10);
    for n in [10_000u64, 100_000, 1_000_000] {
        let mut engines: Vec<(&str, Factory)> =
            vec![("sublist", sublist), ("rwlock_trie", rwlock_trie)];
        if n <= 100_000 {
            engines.push(("naive", naive));
        }
        // Literal subjects hitting a plain sub, a `*` sub and a `>` sub.
        let probes: Vec<Vec<u8>> = (0..50_000u64)
            .map(|k| {
                let i = (k * 7919) % n;
                let (a, b) = (i % 64, (i / 64) % 256);
                format!("app{a}.svc{b}.{i}").into_bytes()
            })
            .collect();
        for (name, make) in engines {
            let e = build_measured(name, make, n);
            if name == "sublist" {
                let mut k = 0usize;
                g.bench_function(BenchmarkId::new("match_hit/sublist", n), |b| {
                    b.iter(|| {
                        k = (k + 1) & 63;
                        black_box(e.lookup(&probes[k]))
                    })
                });
            }
            let mut k = 0usize;
            let label = if name == "sublist" {
                "match_miss/sublist".to_string()
            } else {
                format!("match/{name}")
            };
            g.bench_function(BenchmarkId::new(label, n), |b| {
                b.iter(|| {
                    k = (k + 1) % probes.len();
                    black_box(e.lookup(&probes[k]))
                })
            });
            let t = Instant::now();
            drop(e);
            eprintln!(
                "scale-drop engine={name} subs={n} ms={}",
                t.elapsed().as_millis()
            );
        }
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .sample_size(30)
}

criterion_group! {
    name = benches;
    config = config();
    targets = micro, throughput, concurrency, scale
}
criterion_main!(benches);
