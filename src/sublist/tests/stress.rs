//! Multi-threaded stress: threads subscribe, unsubscribe and match at once.
//! Each thread owns a subject prefix, so its own view must be exact at every
//! step (read-your-writes); on the shared subjects every result may only hold
//! ids that were inserted under a matching pattern. At the end the survivors
//! are exactly the expected ones, on every cache shape.

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::thread;

use crate::sublist::{Invalidation, Sublist, SublistConfig};

const THREADS: u32 = 4;
const ROUNDS: u32 = 300;

/// Patterns thread `t` uses under its own prefix; ids encode (t, round, k).
fn own_patterns(t: u32) -> [String; 4] {
    [
        format!("t{t}.x"),
        format!("t{t}.*"),
        format!("t{t}.>"),
        format!("t{t}.x"),
    ]
}

fn id(t: u32, round: u32, k: u32) -> u32 {
    (t << 24) | (round << 4) | k
}

fn run(engine: Arc<Sublist<u32>>) {
    let barrier = Arc::new(Barrier::new(THREADS as usize));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let engine = Arc::clone(&engine);
            let barrier = Arc::clone(&barrier);
            thread::spawn(move || {
                barrier.wait();
                let pats = own_patterns(t);
                let own = format!("t{t}.x");
                let mut live: BTreeSet<u32> = BTreeSet::new();
                for round in 0..ROUNDS {
                    for (k, p) in pats.iter().enumerate() {
                        let q = (k == 3).then_some(&b"q"[..]);
                        let i = id(t, round, k as u32);
                        engine.insert(p.as_bytes(), q, i).unwrap();
                        live.insert(i);
                    }
                    // Shared subjects: everyone writes and reads them.
                    let shared = format!("s.{}", round % 7);
                    engine
                        .insert(shared.as_bytes(), None, id(t, round, 8))
                        .unwrap();
                    engine.insert(b"s.*", None, id(t, round, 9)).unwrap();
                    for other in 0..7 {
                        let r = engine.match_subject(format!("s.{other}").as_bytes());
                        for &x in r.plain() {
                            let k = x & 0xf;
                            let rr = (x >> 4) & 0xf_ffff;
                            assert!(
                                k == 9 || (k == 8 && rr % 7 == other),
                                "bad id {x:#x} for s.{other}"
                            );
                        }
                    }
                    // Own subject: exactly what this thread holds now.
                    let r = engine.match_subject(own.as_bytes());
                    let mut got: BTreeSet<u32> = r.plain().iter().copied().collect();
                    for g in r.queues() {
                        got.extend(g.members.iter().copied());
                    }
                    assert_eq!(got, live, "thread {t} round {round}");
                    // Unsubscribe every other round's subs, keep the rest.
                    if round % 2 == 1 {
                        for (k, p) in pats.iter().enumerate() {
                            let q = (k == 3).then_some(&b"q"[..]);
                            let i = id(t, round, k as u32);
                            engine.remove(p.as_bytes(), q, &i).unwrap();
                            live.remove(&i);
                        }
                        engine
                            .remove(shared.as_bytes(), None, &id(t, round, 8))
                            .unwrap();
                        engine.remove(b"s.*", None, &id(t, round, 9)).unwrap();
                    }
                }
                live
            })
        })
        .collect();
    let mut survivors = BTreeSet::new();
    for h in handles {
        survivors.extend(h.join().unwrap());
    }
    // Final state: per thread 4 own subs + 2 shared per kept (even) round.
    let kept = ROUNDS.div_ceil(2);
    assert_eq!(engine.count() as u32, THREADS * kept * 6);
    for t in 0..THREADS {
        let r = engine.match_subject(format!("t{t}.x").as_bytes());
        let mut got: BTreeSet<u32> = r.plain().iter().copied().collect();
        for g in r.queues() {
            got.extend(g.members.iter().copied());
        }
        let want: BTreeSet<u32> = survivors.iter().copied().filter(|x| x >> 24 == t).collect();
        assert_eq!(got, want);
    }
    for other in 0..7u32 {
        let r = engine.match_subject(format!("s.{other}").as_bytes());
        let got: BTreeSet<u32> = r.plain().iter().copied().collect();
        let want: BTreeSet<u32> = (0..THREADS)
            .flat_map(|t| (0..ROUNDS).step_by(2).map(move |round| (t, round)))
            .flat_map(|(t, round)| {
                let mut v = vec![id(t, round, 9)];
                if round % 7 == other {
                    v.push(id(t, round, 8));
                }
                v
            })
            .collect();
        assert_eq!(got, want, "s.{other}");
    }
    let st = engine.stats();
    assert_eq!(st.num_inserts, u64::from(THREADS * ROUNDS * 6));
    assert_eq!(st.num_removes, u64::from(THREADS * (ROUNDS / 2) * 6));
}

#[test]
fn concurrent_default_cache() {
    run(Arc::new(Sublist::new()));
}

#[test]
fn concurrent_tiny_cache() {
    run(Arc::new(Sublist::with_cache_capacity(2)));
}

#[test]
fn concurrent_no_cache() {
    run(Arc::new(Sublist::with_cache_capacity(0)));
}

#[test]
fn concurrent_global_invalidation() {
    run(Arc::new(Sublist::with_config(SublistConfig {
        cache_capacity: 64,
        cache_shards: 4,
        invalidation: Invalidation::Global,
    })));
}

/// Writers change literal subjects while readers fill the cache of a fresh
/// engine (the window where writers may skip invalidation): every writer must
/// read its own writes through the cache, on many fresh engines.
#[test]
fn literal_writers_race_first_cache_stores() {
    for round in 0..150u32 {
        let engine: Arc<Sublist<u32>> = Arc::new(Sublist::new());
        engine.insert(b"w.*", None, 999).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (engine, stop) = (Arc::clone(&engine), Arc::clone(&stop));
                thread::spawn(move || {
                    let mut k = 0u32;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let r = engine.match_subject(format!("w.{}", k % 4).as_bytes());
                        assert!(r.plain().contains(&999));
                        k += 1;
                    }
                })
            })
            .collect();
        for i in 0..40u32 {
            let subj = format!("w.{}", i % 4);
            let id = round * 100 + i;
            engine.insert(subj.as_bytes(), None, id).unwrap();
            let r = engine.match_subject(subj.as_bytes());
            assert!(r.plain().contains(&id), "round {round} op {i}: lost insert");
            engine.remove(subj.as_bytes(), None, &id).unwrap();
            let r = engine.match_subject(subj.as_bytes());
            assert!(
                !r.plain().contains(&id),
                "round {round} op {i}: stale after remove"
            );
            assert_eq!(r.plain(), [999]);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for h in readers {
            h.join().unwrap();
        }
    }
}
