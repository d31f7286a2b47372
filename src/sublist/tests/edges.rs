//! Unit tests of the matching engine's wildcard edge cases, queue grouping,
//! invalid input, literal matching and statistics.

use crate::subject::SubjectError;
use crate::sublist::{Matched, Sublist, SublistError};

fn plain(r: &Matched<u32>) -> Vec<u32> {
    let mut v = r.plain().to_vec();
    v.sort_unstable();
    v
}

fn engines() -> Vec<Sublist<u32>> {
    vec![
        Sublist::new(),
        Sublist::with_cache_capacity(0),
        Sublist::with_cache_capacity(1),
    ]
}

#[test]
fn full_wildcard_needs_one_token() {
    for s in engines() {
        s.insert(b"foo.>", None, 1).unwrap();
        assert_eq!(plain(&s.match_subject(b"foo.bar")), [1]);
        assert_eq!(plain(&s.match_subject(b"foo.bar.baz")), [1]);
        assert!(s.match_subject(b"foo").is_empty());
        assert!(s.match_subject(b"bar.foo").is_empty());
    }
}

#[test]
fn partial_wildcard_is_one_token() {
    for s in engines() {
        s.insert(b"foo.*", None, 1).unwrap();
        s.insert(b"*.bar", None, 2).unwrap();
        s.insert(b"*", None, 3).unwrap();
        assert_eq!(plain(&s.match_subject(b"foo.bar")), [1, 2]);
        assert!(s.match_subject(b"foo.bar.baz").is_empty());
        assert_eq!(plain(&s.match_subject(b"foo")), [3]);
        assert_eq!(plain(&s.match_subject(b"x.bar")), [2]);
    }
}

#[test]
fn full_wildcard_alone_matches_everything() {
    for s in engines() {
        s.insert(b">", None, 7).unwrap();
        for subj in [&b"a"[..], b"a.b", b"a.b.c.d.e.f"] {
            assert_eq!(plain(&s.match_subject(subj)), [7]);
        }
    }
}

#[test]
fn all_combinations_together() {
    for s in engines() {
        for (i, p) in ["a.b.c", "a.*.c", "a.>", "*.b.>", "*.*.*", ">", "a.b"]
            .iter()
            .enumerate()
        {
            s.insert(p.as_bytes(), None, i as u32).unwrap();
        }
        assert_eq!(plain(&s.match_subject(b"a.b.c")), [0, 1, 2, 3, 4, 5]);
        assert_eq!(plain(&s.match_subject(b"a.b")), [2, 5, 6]);
        assert_eq!(plain(&s.match_subject(b"a")), [5]);
        assert_eq!(plain(&s.match_subject(b"x.b.c.d")), [3, 5]);
    }
}

#[test]
fn queue_groups_are_grouped_by_name() {
    for s in engines() {
        s.insert(b"foo.bar", Some(b"q1"), 1).unwrap();
        s.insert(b"foo.*", Some(b"q1"), 2).unwrap();
        s.insert(b"foo.>", Some(b"q2"), 3).unwrap();
        s.insert(b"foo.bar", None, 4).unwrap();
        let r = s.match_subject(b"foo.bar");
        assert_eq!(plain(&r), [4]);
        let mut groups: Vec<(Vec<u8>, Vec<u32>)> = r
            .queues()
            .iter()
            .map(|g| {
                let mut m = g.members.clone();
                m.sort_unstable();
                (g.name.to_vec(), m)
            })
            .collect();
        groups.sort();
        assert_eq!(
            groups,
            vec![(b"q1".to_vec(), vec![1, 2]), (b"q2".to_vec(), vec![3])]
        );
        assert_eq!(r.len(), 3);
        s.remove(b"foo.*", Some(b"q1"), &2).unwrap();
        assert_eq!(s.match_subject(b"foo.bar").queues()[0].members.len(), 1);
    }
}

#[test]
fn invalid_subjects_are_refused() {
    let s: Sublist<u32> = Sublist::new();
    let cases: &[(&[u8], SubjectError)] = &[
        (b"", SubjectError::Empty),
        (b"foo..bar", SubjectError::EmptyToken),
        (b".foo", SubjectError::EmptyToken),
        (b"foo.", SubjectError::EmptyToken),
        (b"foo.>.bar", SubjectError::FullWildcardNotLast),
        (b"foo bar", SubjectError::InvalidCharacter),
        (b"foo\tbar", SubjectError::InvalidCharacter),
        (b"foo\nbar", SubjectError::InvalidCharacter),
    ];
    for (subj, want) in cases {
        match s.insert(subj, None, 1) {
            Err(SublistError::InvalidSubject(e)) => assert_eq!(e, *want, "{subj:?}"),
            other => panic!("{subj:?}: {other:?}"),
        }
    }
    assert!(matches!(
        s.insert(b"foo", Some(b""), 1),
        Err(SublistError::InvalidQueue)
    ));
    assert!(matches!(
        s.insert(b"foo", Some(b"a b"), 1),
        Err(SublistError::InvalidQueue)
    ));
    assert_eq!(s.count(), 0);
    assert_eq!(s.stats().num_inserts, 0);
}

#[test]
fn star_inside_token_is_literal() {
    for s in engines() {
        s.insert(b"foo*", None, 1).unwrap();
        s.insert(b"foo.b>", None, 2).unwrap();
        assert!(s.match_subject(b"foox").is_empty());
        assert_eq!(plain(&s.match_subject(b"foo*")), [1]);
        assert_eq!(plain(&s.match_subject(b"foo.b>")), [2]);
        assert!(s.match_subject(b"foo.bar").is_empty());
    }
}

#[test]
fn remove_unknown_is_not_found() {
    let s: Sublist<u32> = Sublist::new();
    s.insert(b"foo", None, 1).unwrap();
    assert!(matches!(
        s.remove(b"foo", None, &2),
        Err(SublistError::NotFound)
    ));
    assert!(matches!(
        s.remove(b"foo", Some(b"q"), &1),
        Err(SublistError::NotFound)
    ));
    assert!(matches!(
        s.remove(b"bar", None, &1),
        Err(SublistError::NotFound)
    ));
    assert!(matches!(
        s.remove(b"foo.*", None, &1),
        Err(SublistError::NotFound)
    ));
    s.remove(b"foo", None, &1).unwrap();
    assert!(s.match_subject(b"foo").is_empty());
}

#[test]
fn duplicates_are_stored_twice() {
    let s: Sublist<u32> = Sublist::new();
    s.insert(b"foo", None, 1).unwrap();
    s.insert(b"foo", None, 1).unwrap();
    assert_eq!(s.count(), 2);
    assert_eq!(plain(&s.match_subject(b"foo")), [1, 1]);
    s.remove(b"foo", None, &1).unwrap();
    assert_eq!(plain(&s.match_subject(b"foo")), [1]);
}

#[test]
fn cache_is_invalidated_by_changes() {
    let s: Sublist<u32> = Sublist::new();
    assert!(s.match_subject(b"a.b").is_empty());
    s.insert(b"a.b", None, 1).unwrap();
    assert_eq!(plain(&s.match_subject(b"a.b")), [1]);
    s.insert(b"a.*", None, 2).unwrap();
    assert_eq!(plain(&s.match_subject(b"a.b")), [1, 2]);
    s.remove(b"a.b", None, &1).unwrap();
    assert_eq!(plain(&s.match_subject(b"a.b")), [2]);
    s.remove(b"a.*", None, &2).unwrap();
    assert!(s.match_subject(b"a.b").is_empty());
}

#[test]
fn generation_and_stats() {
    let s: Sublist<u32> = Sublist::new();
    let g0 = s.generation();
    s.insert(b"a", None, 1).unwrap();
    let g1 = s.generation();
    assert_ne!(g0, g1);
    s.insert(b"a", Some(b"q"), 2).unwrap();
    s.insert(b"b.>", None, 3).unwrap();
    let _ = s.match_subject(b"a");
    let _ = s.match_subject(b"a");
    let _ = s.match_subject(b"b.c");
    s.remove(b"b.>", None, &3).unwrap();
    assert_ne!(s.generation(), g1);
    // A wildcard change makes every cached entry stale.
    assert_eq!(s.stats().num_cache, 0);
    let _ = s.match_subject(b"a");
    let st = s.stats();
    assert_eq!(st.num_subscriptions, 2);
    assert_eq!(st.num_inserts, 3);
    assert_eq!(st.num_removes, 1);
    assert_eq!(st.num_matches, 4);
    assert!((st.cache_hit_rate - 0.25).abs() < 1e-9);
    assert_eq!(st.num_cache, 1);
    assert_eq!(st.max_fanout, 2);
    assert!((st.avg_fanout - 2.0).abs() < 1e-9);
    assert_eq!(s.count(), 2);
}

#[test]
fn cache_hit_returns_the_same_arc() {
    let s: Sublist<u32> = Sublist::new();
    s.insert(b"a.b", None, 1).unwrap();
    s.insert(b"a.b", None, 2).unwrap();
    let r1 = s.match_subject(b"a.b");
    let r2 = s.match_subject(b"a.b");
    assert!(r1.same_shared(&r2));
}

/// Literal subscriptions live in a hash map, wildcard ones in the trie; a
/// queue group spanning both is still one group, and the engine answers the
/// same whether wildcards exist (cached merge) or not (direct literal path).
#[test]
fn literal_and_wildcard_interest_merge() {
    for s in engines() {
        s.insert(b"a.b", Some(b"q"), 1).unwrap();
        s.insert(b"a.b", None, 2).unwrap();
        let r = s.match_subject(b"a.b");
        assert_eq!(plain(&r), [2]);
        assert_eq!(r.queues().len(), 1);
        s.insert(b"a.*", Some(b"q"), 3).unwrap();
        s.insert(b"*.b", None, 4).unwrap();
        for _ in 0..2 {
            let r = s.match_subject(b"a.b");
            assert_eq!(plain(&r), [2, 4]);
            assert_eq!(r.queues().len(), 1);
            let mut m = r.queues()[0].members.clone();
            m.sort_unstable();
            assert_eq!(m, [1, 3]);
            assert_eq!(&r.queues()[0].name[..], b"q");
        }
        // Only wildcard interest for this subject.
        assert_eq!(plain(&s.match_subject(b"x.b")), [4]);
        // A publish to `a.*`: its `*` is a literal token, matched by the
        // wildcard queue subscription `a.*` only.
        let r = s.match_subject(b"a.*");
        assert!(r.plain().is_empty());
        assert_eq!(r.queues()[0].members, [3]);
        s.remove(b"a.*", Some(b"q"), &3).unwrap();
        s.remove(b"*.b", None, &4).unwrap();
        // Back on the direct path: no wildcard left.
        let r = s.match_subject(b"a.b");
        assert_eq!(plain(&r), [2]);
        assert_eq!(r.queues()[0].members, [1]);
        assert_eq!(s.count(), 2);
    }
}

/// A result handed out is a snapshot: later changes copy it (copy-on-write)
/// instead of mutating what a reader holds.
#[test]
fn results_are_snapshots() {
    for s in engines() {
        s.insert(b"a", None, 1).unwrap();
        let before = s.match_subject(b"a");
        s.insert(b"a", None, 2).unwrap();
        assert_eq!(plain(&before), [1]);
        assert_eq!(plain(&s.match_subject(b"a")), [1, 2]);
        let held = s.match_subject(b"a");
        s.remove(b"a", None, &1).unwrap();
        assert_eq!(plain(&held), [1, 2]);
        assert_eq!(plain(&s.match_subject(b"a")), [2]);
        s.remove(b"a", None, &2).unwrap();
        assert!(s.match_subject(b"a").is_empty());
        assert_eq!(
            s.remove(b"a", None, &2).unwrap_err().to_string(),
            "subscription not found"
        );
    }
}

/// Without wildcard subscriptions the literal entry is the cached result: the
/// first match after a change is a miss, later ones hits, counted in `/subsz`.
#[test]
fn direct_path_statistics() {
    let s: Sublist<u32> = Sublist::new();
    s.insert(b"a", None, 1).unwrap();
    s.insert(b"b", Some(b"q"), 2).unwrap();
    s.insert(b"b", None, 3).unwrap();
    let _ = s.match_subject(b"a");
    let _ = s.match_subject(b"a");
    let _ = s.match_subject(b"b");
    let _ = s.match_subject(b"nobody");
    let st = s.stats();
    assert_eq!(st.num_matches, 4);
    assert!((st.cache_hit_rate - 0.25).abs() < 1e-9);
    assert_eq!(st.num_cache, 2);
    assert_eq!(st.max_fanout, 2);
    assert!((st.avg_fanout - 1.5).abs() < 1e-9);
    // A change makes the entry cold again.
    s.insert(b"a", None, 4).unwrap();
    assert_eq!(s.stats().num_cache, 1);
    assert_eq!(plain(&s.match_subject(b"a")), [1, 4]);
    assert_eq!(s.stats().num_cache, 2);
    assert_eq!(s.stats().num_subscriptions, 4);
}

#[test]
fn wildcard_tokens_in_a_published_subject_are_literal_tokens() {
    // What nats-server does with a PUB to `foo.*`: `*`/`>` in the subject are
    // ordinary tokens, so only wildcard subscriptions can match them.
    for s in engines() {
        s.insert(b"foo.*", None, 1).unwrap();
        s.insert(b"foo.a", None, 2).unwrap();
        s.insert(b"foo.>", None, 3).unwrap();
        s.insert(b">", None, 4).unwrap();
        s.insert(b"*.a", None, 5).unwrap();
        assert_eq!(plain(&s.match_subject(b"foo.*")), [1, 3, 4]);
        assert_eq!(plain(&s.match_subject(b"foo.>")), [1, 3, 4]);
        assert_eq!(plain(&s.match_subject(b"*.a")), [4, 5]);
        // A literal subscription added later is not a match either.
        s.insert(b"foo.b", None, 6).unwrap();
        assert_eq!(plain(&s.match_subject(b"foo.*")), [1, 3, 4]);
        s.remove(b"foo.*", None, &1).unwrap();
        assert_eq!(plain(&s.match_subject(b"foo.*")), [3, 4]);
    }
}
