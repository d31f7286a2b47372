//! Pure subject-set relations that permissions need beyond plain matching
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
}
