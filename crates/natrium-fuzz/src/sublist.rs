//! The matching-engine target: a byte-coded sequence of insert, remove and
//! match over a small alphabet, run against engines of several cache shapes
//! and a naive list; every match (first and cached) and every count must
//! agree with the list.

use std::collections::BTreeMap;

use natrium::sublist::{Invalidation, Matched, Sublist, SublistConfig};

const TOKENS: [&str; 6] = ["a", "b", "cc", "*", ">", "a"];
const QUEUES: [Option<&str>; 4] = [None, None, Some("q1"), Some("q2")];

type Norm = (Vec<u32>, BTreeMap<Vec<u8>, Vec<u32>>);

fn norm(r: &Matched<u32>) -> Norm {
    let mut plain = r.plain().to_vec();
    plain.sort_unstable();
    let mut q = BTreeMap::new();
    for g in r.queues() {
        let mut m = g.members.clone();
        m.sort_unstable();
        assert!(
            q.insert(g.name.to_vec(), m).is_none(),
            "queue group listed twice"
        );
    }
    (plain, q)
}

fn model(subs: &[(String, Option<&str>, u32)], subject: &str) -> Norm {
    let mut plain = Vec::new();
    let mut q: BTreeMap<Vec<u8>, Vec<u32>> = BTreeMap::new();
    for (p, queue, id) in subs {
        if !crate::model_matches(p.as_bytes(), subject.as_bytes()) {
            continue;
        }
        match queue {
            None => plain.push(*id),
            Some(name) => q.entry(name.as_bytes().to_vec()).or_default().push(*id),
        }
    }
    plain.sort_unstable();
    q.values_mut().for_each(|m| m.sort_unstable());
    (plain, q)
}

/// A subject of 1..=4 tokens from two bytes; `literal` keeps wildcards out,
/// otherwise `>` is kept only as the last token (anything else is invalid
/// and the engine would refuse it, which is the subject target's business).
fn subject(x: u8, y: u8, literal: bool) -> String {
    let n = usize::from(x % 4) + 1;
    let mut toks = Vec::with_capacity(n);
    let mut bits = u16::from(x) << 8 | u16::from(y);
    for i in 0..n {
        let mut t = TOKENS[usize::from(bits % 6)];
        bits /= 6;
        if (literal && (t == "*" || t == ">")) || (t == ">" && i + 1 < n) {
            t = "b";
        }
        toks.push(t);
    }
    toks.join(".")
}

pub fn sublist(data: &[u8]) {
    let engines = [
        Sublist::<u32>::new(),
        Sublist::with_cache_capacity(0),
        Sublist::with_config(SublistConfig {
            cache_capacity: 3,
            cache_shards: 1,
            invalidation: Invalidation::Global,
        }),
        Sublist::with_config(SublistConfig {
            cache_capacity: 8,
            cache_shards: 4,
            invalidation: Invalidation::Targeted,
        }),
    ];
    let mut subs: Vec<(String, Option<&str>, u32)> = Vec::new();
    let mut next_id = 0u32;
    for op in data.chunks_exact(3) {
        let &[kind, x, y] = op else { continue };
        match kind % 4 {
            0 | 1 => {
                let (p, q) = (subject(x, y, false), QUEUES[usize::from(kind >> 2) % 4]);
                for e in &engines {
                    e.insert(p.as_bytes(), q.map(str::as_bytes), next_id)
                        .expect("valid insert refused");
                }
                subs.push((p, q, next_id));
                next_id += 1;
            }
            2 if !subs.is_empty() => {
                let (p, q, id) = subs.remove(usize::from(x) % subs.len());
                for e in &engines {
                    e.remove(p.as_bytes(), q.map(str::as_bytes), &id)
                        .expect("remove of a live subscription failed");
                }
            }
            _ => {
                let s = subject(x, y, kind & 4 == 0);
                let want = model(&subs, &s);
                for e in &engines {
                    assert_eq!(norm(&e.match_subject(s.as_bytes())), want, "match {s}");
                    assert_eq!(
                        norm(&e.match_subject(s.as_bytes())),
                        want,
                        "cached match {s}"
                    );
                }
            }
        }
        for e in &engines {
            assert_eq!(e.count(), subs.len(), "count");
        }
    }
}
