//! Property test: the engine (several cache shapes) equals a naive reference
//! matcher over random interleavings of insert, remove and match.

use std::collections::BTreeMap;

use crate::sublist::{Invalidation, MatchResult, Matched, Sublist, SublistConfig, SublistError};
use proptest::prelude::*;

/// Reference: every subscription in a list, each tested token by token.
#[derive(Default)]
struct Reference {
    subs: Vec<(String, Option<String>, u32)>,
}

fn ref_matches(pattern: &str, subject: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let s: Vec<&str> = subject.split('.').collect();
    for (i, pt) in p.iter().enumerate() {
        if *pt == ">" {
            return s.len() > i;
        }
        match s.get(i) {
            None => return false,
            Some(st) if *pt == "*" || pt == st => {}
            Some(_) => return false,
        }
    }
    p.len() == s.len()
}

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

impl Reference {
    /// `*`/`>` in `subject` (a publish to a wildcard subject) are literal
    /// tokens, as nats-server matches them.
    fn matching(&self, subject: &str) -> Norm {
        let mut out = MatchResult::new();
        for (p, q, id) in &self.subs {
            if !ref_matches(p, subject) {
                continue;
            }
            match q {
                None => out.plain.push(*id),
                Some(name) => match out.queues.iter_mut().find(|g| g.name == name.as_bytes()) {
                    Some(g) => g.members.push(*id),
                    None => out.queues.push(crate::sublist::QueueGroup {
                        name: bytes::Bytes::copy_from_slice(name.as_bytes()),
                        members: vec![*id],
                    }),
                },
            }
        }
        norm(&Matched::from(out))
    }
}

#[derive(Debug, Clone)]
enum Op {
    Insert(String, Option<String>, u32),
    /// Remove the n-th live subscription (modulo), or a missing one if none.
    Remove(usize),
    RemoveMissing(String, u32),
    Match(String),
}

fn token() -> impl Strategy<Value = String> {
    prop_oneof![Just("a"), Just("b"), Just("c"), Just("dd")].prop_map(String::from)
}

fn literal() -> impl Strategy<Value = String> {
    prop::collection::vec(token(), 1..5).prop_map(|t| t.join("."))
}

fn pattern() -> impl Strategy<Value = String> {
    let tok = prop_oneof![3 => token(), 1 => Just("*".to_string())];
    (prop::collection::vec(tok, 1..5), any::<bool>()).prop_map(|(mut t, fwc)| {
        if fwc {
            let last = t.len() - 1;
            t[last] = ">".to_string();
        }
        t.join(".")
    })
}

fn op() -> impl Strategy<Value = Op> {
    let queue = prop::option::weighted(
        0.3,
        prop_oneof![Just("q1"), Just("q2")].prop_map(String::from),
    );
    prop_oneof![
        4 => (pattern(), queue, 0u32..20).prop_map(|(p, q, id)| Op::Insert(p, q, id)),
        2 => any::<usize>().prop_map(Op::Remove),
        1 => (pattern(), 0u32..20).prop_map(|(p, id)| Op::RemoveMissing(p, id + 100)),
        5 => prop_oneof![literal(), pattern()].prop_map(Op::Match),
    ]
}

fn engines() -> Vec<(&'static str, Sublist<u32>)> {
    let global = SublistConfig {
        cache_capacity: 3,
        cache_shards: 1,
        invalidation: Invalidation::Global,
    };
    let sharded = SublistConfig {
        cache_capacity: 8,
        cache_shards: 4,
        invalidation: Invalidation::Targeted,
    };
    vec![
        ("default", Sublist::new()),
        ("cap2", Sublist::with_cache_capacity(2)),
        ("off", Sublist::with_cache_capacity(0)),
        ("global3", Sublist::with_config(global)),
        ("sharded8", Sublist::with_config(sharded)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn engine_equals_reference(ops in prop::collection::vec(op(), 1..120)) {
        let engines = engines();
        let mut reference = Reference::default();
        for op in ops {
            match op {
                Op::Insert(p, q, id) => {
                    for (_, e) in &engines {
                        e.insert(p.as_bytes(), q.as_deref().map(str::as_bytes), id).unwrap();
                    }
                    reference.subs.push((p, q, id));
                }
                Op::Remove(n) => {
                    if reference.subs.is_empty() {
                        continue;
                    }
                    let (p, q, id) = reference.subs.remove(n % reference.subs.len());
                    for (name, e) in &engines {
                        let r = e.remove(p.as_bytes(), q.as_deref().map(str::as_bytes), &id);
                        prop_assert!(r.is_ok(), "{name}: remove {p} {q:?} {id}: {r:?}");
                    }
                }
                Op::RemoveMissing(p, id) => {
                    for (_, e) in &engines {
                        let r = e.remove(p.as_bytes(), None, &id);
                        prop_assert!(matches!(r, Err(SublistError::NotFound)));
                    }
                }
                Op::Match(s) => {
                    let want = reference.matching(&s);
                    for (name, e) in &engines {
                        // Twice: the second answer may come from the cache.
                        prop_assert_eq!(&norm(&e.match_subject(s.as_bytes())), &want, "{} {}", name, s);
                        prop_assert_eq!(&norm(&e.match_subject(s.as_bytes())), &want, "{} {} (cached)", name, s);
                    }
                }
            }
            for (name, e) in &engines {
                prop_assert_eq!(e.count(), reference.subs.len(), "{} count", name);
            }
        }
        // Final sweep over every literal subject of the small alphabet.
        for a in ["a", "b", "dd"] {
            for s in [a.to_string(), format!("{a}.b"), format!("{a}.c.a"), format!("a.{a}.b.c")] {
                let want = reference.matching(&s);
                for (name, e) in &engines {
                    prop_assert_eq!(&norm(&e.match_subject(s.as_bytes())), &want, "{} final {}", name, s);
                }
            }
        }
    }
}
