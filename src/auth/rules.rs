//! Pure subject-set relations that permissions (and the account import
//! checks) need beyond plain matching
//! ([`crate::subject::subject_matches`] answers "does this pattern match this
//! literal subject"): is one wildcard subject a subset of another, do two
//! overlap, does a queue name fit a queue pattern. No state, no allocation.

use crate::subject::tokens;

/// True if every literal subject matched by `sub` is also matched by `pattern`
/// (both may hold `*`/`>`). `foo.*` ⊆ `foo.>`, `foo.bar` ⊆ `foo.*`, but
/// `foo.>` ⊄ `foo.*` and `>` ⊄ `*` — stricter than nats-server, whose sublist
/// lookup lets a `*` pattern token cover a `>` subject token.
pub fn is_subset(sub: &[u8], pattern: &[u8]) -> bool {
    let mut s = tokens(sub);
    for p in tokens(pattern) {
        let Some(st) = s.next() else {
            return false;
        };
        match (p, st) {
            (b">", _) => return true,
            (_, b">") => return false,
            (b"*", _) => {}
            (_, b"*") => return false,
            _ if p == st => {}
            _ => return false,
        }
    }
    s.next().is_none()
}

/// True if some literal subject is matched by both `a` and `b`: a wildcard
/// subscription that intersects a deny pattern without being inside it.
pub fn intersects(a: &[u8], b: &[u8]) -> bool {
    let mut bt = tokens(b);
    for at in tokens(a) {
        let Some(btok) = bt.next() else {
            return false;
        };
        match (at, btok) {
            (b">", _) | (_, b">") => return true,
            (b"*", _) | (_, b"*") => {}
            _ if at == btok => {}
            _ => return false,
        }
    }
    bt.next().is_none()
}

/// True if queue name `queue` is allowed by the queue `pattern` of a permission
/// entry: equal, or the pattern has wildcard tokens and covers it (queue names
/// may themselves contain `*`, so the literal comparison comes first).
pub fn queue_matches(queue: &[u8], pattern: &[u8]) -> bool {
    queue == pattern || (crate::subject::has_wildcard(pattern) && is_subset(queue, pattern))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subset_relation() {
        let yes: &[(&str, &str)] = &[
            ("foo", "foo"),
            ("foo.bar", "foo.*"),
            ("foo.bar", "foo.>"),
            ("foo.*", "foo.*"),
            ("foo.*", "foo.>"),
            ("foo.>", "foo.>"),
            ("foo.*.baz", "foo.>"),
            ("foo.*.baz", "*.*.baz"),
            ("*", "*"),
            (">", ">"),
            ("foo.bar", ">"),
        ];
        for (s, p) in yes {
            assert!(is_subset(s.as_bytes(), p.as_bytes()), "{s} ⊆ {p}");
        }
        let no: &[(&str, &str)] = &[
            ("foo.*", "foo.bar"),
            ("foo.>", "foo.*"),
            (">", "*"),
            (">", "foo.>"),
            ("foo", "foo.>"),
            ("foo.bar.baz", "foo.*"),
            ("foo", "foo.bar"),
            ("*.bar", "foo.bar"),
            ("foo*", "foo"),
        ];
        for (s, p) in no {
            assert!(!is_subset(s.as_bytes(), p.as_bytes()), "{s} ⊄ {p}");
        }
    }

    #[test]
    fn intersection_relation() {
        let yes: &[(&str, &str)] = &[
            ("foo.*", "foo.bar"),
            ("foo.bar", "foo.*"),
            (">", "foo.bar"),
            ("foo.>", "*.bar"),
            ("*.bar", "foo.*"),
            ("foo.bar", "foo.bar"),
        ];
        for (a, b) in yes {
            assert!(intersects(a.as_bytes(), b.as_bytes()), "{a} ∩ {b}");
            assert!(intersects(b.as_bytes(), a.as_bytes()), "{b} ∩ {a}");
        }
        let no: &[(&str, &str)] = &[
            ("foo.*", "bar.*"),
            ("foo", "foo.>"),
            ("foo.*", "foo.bar.baz"),
            ("foo.bar", "foo.baz"),
        ];
        for (a, b) in no {
            assert!(!intersects(a.as_bytes(), b.as_bytes()), "{a} ∩ {b}");
            assert!(!intersects(b.as_bytes(), a.as_bytes()), "{b} ∩ {a}");
        }
    }

    #[test]
    fn queue_patterns() {
        assert!(queue_matches(b"q1", b"q1"));
        assert!(!queue_matches(b"q2", b"q1"));
        assert!(queue_matches(b"v1.a", b"v1.*"));
        assert!(queue_matches(b"v1.*", b"v1.*"));
        assert!(!queue_matches(b"v2.a", b"v1.*"));
        assert!(queue_matches(b"v1.a.b", b"v1.>"));
    }

    /// Every literal subject of up to five tokens over {a, b, c}: a bounded
    /// model of "the subjects a pattern matches" (patterns here have at most
    /// three tokens, so `>` is witnessed by tails of one and two tokens).
    fn literals() -> Vec<Vec<u8>> {
        let mut all: Vec<Vec<u8>> = vec![];
        let mut layer: Vec<Vec<u8>> = vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()];
        for _ in 0..5 {
            all.extend(layer.iter().cloned());
            let mut next = Vec::new();
            for s in &layer {
                for t in [b"a", b"b", b"c"] {
                    let mut n = s.clone();
                    n.push(b'.');
                    n.extend_from_slice(t);
                    next.push(n);
                }
            }
            layer = next;
        }
        all
    }

    fn pattern() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        proptest::collection::vec(prop_oneof![Just("a"), Just("b"), Just("*")], 0..3)
            .prop_flat_map(|head| {
                (
                    Just(head),
                    prop_oneof![Just("a"), Just("b"), Just("*"), Just(">")],
                )
            })
            .prop_map(|(head, last)| {
                let mut toks = head;
                toks.push(last);
                toks.join(".").into_bytes()
            })
    }

    proptest::proptest! {
        /// `is_subset` and `intersects` (permissions, account import checks)
        /// agree with the bounded model of what each pattern matches.
        #[test]
        fn subset_and_intersects_match_the_model(inner in pattern(), outer in pattern()) {
            let lits = literals();
            let m = |p: &[u8], l: &[u8]| crate::subject::subject_matches(p, l);
            let subset = lits.iter().all(|l| !m(&inner, l) || m(&outer, l));
            let meet = lits.iter().any(|l| m(&inner, l) && m(&outer, l));
            proptest::prop_assert_eq!(is_subset(&inner, &outer), subset);
            proptest::prop_assert_eq!(intersects(&inner, &outer), meet);
        }
    }

    #[test]
    fn subsets_and_collisions() {
        assert!(is_subset(b"foo.bar", b"foo.>"));
        assert!(is_subset(b"foo.*", b"foo.>"));
        assert!(is_subset(b"foo.>", b"foo.>"));
        assert!(is_subset(b"foo.bar", b"foo.*"));
        assert!(!is_subset(b">", b"foo.>"));
        assert!(!is_subset(b"foo.>", b"foo.*"));
        assert!(!is_subset(b"foo", b"foo.>"));
        assert!(!is_subset(b"foo.*", b"foo.bar"));
        assert!(intersects(b"foo.*", b"*.bar"));
        assert!(intersects(b">", b"a.b"));
        assert!(intersects(b"a.>", b"a.b.c"));
        assert!(!intersects(b"a.b", b"a.c"));
        assert!(!intersects(b"a.*", b"a.b.c"));
    }
}
