use super::*;

fn list(v: &[&str]) -> Option<Vec<String>> {
    Some(v.iter().map(|s| s.to_string()).collect())
}

fn checker(p: Permissions) -> PermissionChecker {
    PermissionChecker::from_permissions(Some(&p)).expect("valid permissions")
}

#[test]
fn no_permissions_allows_everything() {
    let mut c = PermissionChecker::from_permissions(None).expect("none");
    assert!(!c.is_restricted());
    assert!(c.can_publish(b"anything"));
    assert!(c.can_subscribe(b">", Some(b"q")));
    assert!(c.can_receive(b"x"));
}

#[test]
fn publish_allow_and_deny_with_wildcards() {
    let mut c = checker(Permissions {
        publish_allow: list(&["foo.*", "bar.>"]),
        publish_deny: list(&["foo.secret", "bar.x.>"]),
        ..Default::default()
    });
    assert!(c.can_publish(b"foo.a"));
    assert!(!c.can_publish(b"foo.a.b"));
    assert!(!c.can_publish(b"foo.secret"));
    assert!(c.can_publish(b"bar.x"));
    assert!(!c.can_publish(b"bar.x.y"));
    assert!(!c.can_publish(b"baz"));
    // Cached answers stay the same, in any order.
    for _ in 0..3 {
        assert!(c.can_publish(b"foo.a"));
        assert!(!c.can_publish(b"foo.secret"));
    }
}

#[test]
fn deny_only_and_empty_allow() {
    let mut c = checker(Permissions {
        publish_deny: list(&[">"]),
        ..Default::default()
    });
    assert!(!c.can_publish(b"a"));
    let mut c = checker(Permissions {
        publish_allow: list(&[]),
        ..Default::default()
    });
    assert!(!c.can_publish(b"a"), "an empty allow list allows nothing");
    let mut c = checker(Permissions {
        publish_deny: list(&["a"]),
        ..Default::default()
    });
    assert!(c.can_publish(b"b"));
    assert!(c.can_subscribe(b">", None), "no subscribe rules");
}

#[test]
fn publish_cache_is_bounded_and_correct() {
    let mut c = checker(Permissions {
        publish_allow: list(&["ok.>"]),
        ..Default::default()
    });
    for i in 0..(PUB_CACHE_MAX * 3) {
        let ok = format!("ok.{i}");
        let no = format!("no.{i}");
        assert!(c.can_publish(ok.as_bytes()));
        assert!(!c.can_publish(no.as_bytes()));
        assert!(c.cache.len() <= PUB_CACHE_MAX);
    }
}

#[test]
fn subscribe_wildcards_must_be_subsets_of_allow() {
    let mut c = checker(Permissions {
        subscribe_allow: list(&["foo.*", "bar.>"]),
        ..Default::default()
    });
    assert!(c.can_subscribe(b"foo.a", None));
    assert!(c.can_subscribe(b"foo.*", None));
    assert!(!c.can_subscribe(b"foo.>", None), "wider than foo.*");
    assert!(c.can_subscribe(b"bar.*.x", None));
    assert!(c.can_subscribe(b"bar.>", None));
    assert!(!c.can_subscribe(b">", None));
    assert!(!c.can_subscribe(b"*.a", None));
    assert!(!c.can_subscribe(b"bar", None));
}

#[test]
fn subscribe_deny_inside_refuses_overlap_filters_delivery() {
    let mut c = checker(Permissions {
        subscribe_deny: list(&["foo.secret", "private.>"]),
        ..Default::default()
    });
    assert!(!c.can_subscribe(b"foo.secret", None));
    assert!(!c.can_subscribe(b"private.a.b", None));
    assert!(!c.can_subscribe(b"private.*", None));
    assert!(!c.needs_delivery_filter());
    assert!(c.can_receive(b"foo.secret"), "filter off until needed");
    assert!(
        c.can_subscribe(b"foo.*", None),
        "overlap is allowed, then filtered"
    );
    assert!(c.needs_delivery_filter());
    assert!(!c.can_receive(b"foo.secret"));
    assert!(!c.can_receive(b"private.x"));
    assert!(c.can_receive(b"foo.public"));
}

#[test]
fn queue_allow_entries_restrict_queue_names() {
    let mut c = checker(Permissions {
        subscribe_allow: list(&["foo.> workers", "bar", "v.> v1.*"]),
        ..Default::default()
    });
    assert!(c.can_subscribe(b"foo.a", Some(b"workers")));
    assert!(!c.can_subscribe(b"foo.a", Some(b"other")));
    assert!(
        !c.can_subscribe(b"foo.a", None),
        "queue entry only allows that queue"
    );
    assert!(c.can_subscribe(b"bar", None));
    assert!(
        c.can_subscribe(b"bar", Some(b"any")),
        "plain entry allows any queue"
    );
    assert!(c.can_subscribe(b"v.x", Some(b"v1.blue")));
    assert!(!c.can_subscribe(b"v.x", Some(b"v2.blue")));
}

#[test]
fn queue_deny_entries() {
    let mut c = checker(Permissions {
        subscribe_deny: list(&["foo.> bad", "nope"]),
        ..Default::default()
    });
    assert!(!c.can_subscribe(b"foo.a", Some(b"bad")));
    assert!(c.can_subscribe(b"foo.a", Some(b"good")));
    assert!(c.can_subscribe(b"foo.a", None));
    assert!(
        !c.can_subscribe(b"nope", Some(b"good")),
        "plain deny covers queues"
    );
}

#[test]
fn invalid_permission_subjects_are_config_errors() {
    for bad in ["", "foo..bar", "foo.>.bar", "a q extra"] {
        let p = Permissions {
            subscribe_allow: list(&[bad]),
            ..Default::default()
        };
        assert_eq!(
            PermissionChecker::from_permissions(Some(&p)).err(),
            Some(AuthError::InvalidPermissionSubject(bad.to_string())),
            "{bad:?}"
        );
    }
    let p = Permissions {
        publish_deny: list(&["a b"]),
        ..Default::default()
    };
    assert!(PermissionChecker::from_permissions(Some(&p)).is_err());
}

#[test]
fn allow_responses_grants_one_reply() {
    let mut c = checker(Permissions {
        subscribe_allow: list(&["svc.>"]),
        allow_responses: true,
        ..Default::default()
    });
    assert!(
        !c.can_publish(b"_INBOX.abc"),
        "publish off except responses"
    );
    c.note_reply_subject(b"_INBOX.abc");
    assert!(c.can_publish(b"_INBOX.abc"));
    assert!(!c.can_publish(b"_INBOX.abc"), "only once");
    assert!(!c.can_publish(b"_INBOX.other"));
    c.note_reply_subject(b"_INBOX.abc");
    assert!(c.can_publish(b"_INBOX.abc"), "a new request grants again");
}

#[test]
fn allow_responses_keeps_explicit_allow_list() {
    let mut c = checker(Permissions {
        publish_allow: list(&["pub.>"]),
        allow_responses: true,
        ..Default::default()
    });
    assert!(c.can_publish(b"pub.a"));
    c.note_reply_subject(b"r.1");
    assert!(c.can_publish(b"r.1"));
}

#[test]
fn reply_grants_are_bounded_and_ignored_without_allow_responses() {
    let mut c = checker(Permissions {
        allow_responses: true,
        ..Default::default()
    });
    for i in 0..(REPLY_GRANTS_MAX * 2) {
        c.note_reply_subject(format!("r.{i}").as_bytes());
        assert!(c.replies.len() <= REPLY_GRANTS_MAX);
    }
    let mut plain = checker(Permissions {
        publish_allow: list(&["a"]),
        ..Default::default()
    });
    plain.note_reply_subject(b"r.1");
    assert!(plain.replies.is_empty());
    assert!(!plain.can_publish(b"r.1"));
}
