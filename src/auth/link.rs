//! A leaf link's permissions: what may cross it in each direction, built as
//! nats-server builds them. The direction mapping is subtle, so it lives
//! here once and the link only asks two rule sets, both publish-style
//! (literal subject: some allow entry matches, no deny entry does):
//!
//! - `inbound`: what the peer may send us. Checked on every `LMSG`/`HMSG`
//!   in, and (with [`CompiledPermissions::interest_allowed`]) on the
//!   interest we tell the peer: interest it could not serve is not told.
//! - `outbound`: what we may send the peer. Checked on every message out
//!   (the delivery filter) and on each literal `LS+` the peer sends.
//!
//! Mapping, nats-server v2.15.3:
//!
//! - **Hub side** (we accepted the link and authorized it as a client user
//!   with permissions P; `auth.go: isLeafNodeAuthorized` falls back to
//!   `isClientAuthorized`, whose `registerUser` calls `setPermissions(P)`).
//!   `leafnode.go: processLeafNodeConnect` then swaps `c.perms.pub` and
//!   `c.perms.sub`, "since data is flowing in the opposite direction":
//!   messages to the leaf (`client.go: deliverMsg`, `pubAllowedFullCheck`)
//!   and its `LS+` (`processLeafSub`) are checked against **P.subscribe**
//!   (plus the leaf's CONNECT `deny_pub`, merged by `mergeDenyPermissions`);
//!   its messages (`leafMsgAllowed` → `leafSendAllowed`, `c.opts.Export`)
//!   and the interest told to it (`canSubscribe` in `updateLeafNodesEx` and
//!   `initLeafNodeSmapAndSendSubs`) against **P.publish**. So a leaf may
//!   publish across what its user may publish and receives what it may
//!   subscribe to. The INFO answering CONNECT (`sendPermsAndAccountInfo`)
//!   carries P.subscribe as `import` and P.publish as `export`.
//! - **Leaf side** (we dialled): `newLeafNodeCfg` turns `deny_exports` into
//!   publish denies and `deny_imports` into subscribe denies;
//!   `processLeafnodeInfo` adds the hub's `export` (publish) and `import`
//!   (subscribe). Publish rules are outbound, subscribe rules inbound
//!   (`leafReceiveAllowed`, `sendLeafNodeSubUpdate`); `deny_imports` also
//!   goes to the hub as CONNECT `deny_pub`.
//!
//! Subscribe-style lists used as publish rules follow nats-server's
//! `setPermissions`: an empty allow list is no allow list, and queue entries
//! (`"subject queue"`) never match a message. Entries a peer sent that are
//! not valid subjects are skipped, as `setPermissions` skips them.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::permissions::{CompiledPermissions, SubRule};
use crate::subject::validate_subscribe;

/// An allow/deny pair as nats-server's `SubjectPermission` JSON: the
/// `import` and `export` of the INFO a hub sends its leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubjectLists {
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub allow: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "none_or_empty")]
    pub deny: Option<Vec<String>>,
}

// Go's `omitempty`: an empty list is not sent.
fn none_or_empty(v: &Option<Vec<String>>) -> bool {
    v.as_ref().is_none_or(Vec::is_empty)
}

/// One link's rules; `None` is unrestricted in that direction.
#[derive(Debug, Clone, Default)]
pub struct LinkPerms {
    /// What the peer may send us, and the interest we tell it.
    pub inbound: Option<Arc<CompiledPermissions>>,
    /// What we may send the peer, and which of its literal `LS+` we honour.
    pub outbound: Option<Arc<CompiledPermissions>>,
}

impl LinkPerms {
    /// A link we accepted: `user` is the authorizing client user's
    /// permissions, `deny_pub` the leaf's CONNECT `deny_pub` (its
    /// `deny_imports`).
    pub fn hub(user: Option<&Arc<CompiledPermissions>>, deny_pub: &[String]) -> LinkPerms {
        let inbound = user
            .filter(|p| p.pub_allow.is_some() || !p.pub_deny.is_empty())
            .cloned();
        let (allow, mut deny) = match user {
            Some(p) => (
                p.sub_allow
                    .as_deref()
                    .filter(|l| !l.is_empty())
                    .map(plain_rules),
                plain_rules(&p.sub_deny),
            ),
            None => (None, Vec::new()),
        };
        deny.extend(valid(deny_pub));
        LinkPerms {
            inbound,
            outbound: rules(allow, deny),
        }
    }

    /// The `import` (P.subscribe) and `export` (P.publish) a hub sends the
    /// leaf it authorized with `user`'s permissions, for its own checks.
    pub fn hub_info(user: &CompiledPermissions) -> (Option<SubjectLists>, Option<SubjectLists>) {
        let subs = |l: &[SubRule]| -> Vec<String> {
            l.iter()
                .map(|r| {
                    let s = String::from_utf8_lossy(&r.subject);
                    match &r.queue {
                        Some(q) => format!("{s} {}", String::from_utf8_lossy(q)),
                        None => s.into_owned(),
                    }
                })
                .collect()
        };
        let pubs = |l: &[Box<[u8]>]| -> Vec<String> {
            l.iter()
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        };
        let import =
            (user.sub_allow.is_some() || !user.sub_deny.is_empty()).then(|| SubjectLists {
                allow: user.sub_allow.as_deref().map(subs),
                deny: Some(subs(&user.sub_deny)),
            });
        let export =
            (user.pub_allow.is_some() || !user.pub_deny.is_empty()).then(|| SubjectLists {
                allow: user.pub_allow.as_deref().map(pubs),
                deny: Some(pubs(&user.pub_deny)),
            });
        (import, export)
    }

    /// A link we dialled: the hub's `import`/`export` (from the INFO that
    /// answered CONNECT, if it sent them) and the remote's deny lists.
    pub fn spoke(
        import: Option<&SubjectLists>,
        export: Option<&SubjectLists>,
        deny_imports: &[String],
        deny_exports: &[String],
    ) -> LinkPerms {
        let in_allow = import
            .and_then(|i| i.allow.as_ref())
            .filter(|l| !l.is_empty())
            .map(|l| plain_entries(l));
        let mut in_deny = plain_entries(list(import.and_then(|i| i.deny.as_ref())));
        in_deny.extend(valid(deny_imports));
        let out_allow = export
            .and_then(|e| e.allow.as_ref())
            .map(|l| valid(l).collect());
        let mut out_deny: Vec<Box<[u8]>> =
            valid(list(export.and_then(|e| e.deny.as_ref()))).collect();
        out_deny.extend(valid(deny_exports));
        LinkPerms {
            inbound: rules(in_allow, in_deny),
            outbound: rules(out_allow, out_deny),
        }
    }

    /// Neither direction is restricted: the link pays nothing.
    pub fn is_open(&self) -> bool {
        self.inbound.is_none() && self.outbound.is_none()
    }
}

fn list(l: Option<&Vec<String>>) -> &[String] {
    l.map(Vec::as_slice).unwrap_or_default()
}

fn rules(allow: Option<Vec<Box<[u8]>>>, deny: Vec<Box<[u8]>>) -> Option<Arc<CompiledPermissions>> {
    if allow.is_none() && deny.is_empty() {
        return None;
    }
    Some(Arc::new(CompiledPermissions {
        pub_allow: allow,
        pub_deny: deny,
        sub_allow: None,
        sub_deny: Vec::new(),
        allow_responses: false,
    }))
}

/// Valid subjects of a publish-style list.
fn valid(list: &[String]) -> impl Iterator<Item = Box<[u8]>> + '_ {
    list.iter()
        .filter(|s| validate_subscribe(s.as_bytes()).is_ok())
        .map(|s| s.as_bytes().into())
}

/// The plain (queue-less) entries of a subscribe-style list.
fn plain_entries(list: &[String]) -> Vec<Box<[u8]>> {
    list.iter()
        .filter(|s| s.split_whitespace().nth(1).is_none())
        .map(|s| s.trim())
        .filter(|s| validate_subscribe(s.as_bytes()).is_ok())
        .map(|s| s.as_bytes().into())
        .collect()
}

/// The plain (queue-less) rules of a compiled subscribe list.
fn plain_rules(list: &[SubRule]) -> Vec<Box<[u8]>> {
    list.iter()
        .filter(|r| r.queue.is_none())
        .map(|r| r.subject.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Permissions;

    fn list(v: &[&str]) -> Option<Vec<String>> {
        Some(v.iter().map(|s| s.to_string()).collect())
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn hub_swaps_directions() {
        let user = CompiledPermissions::compile(&Permissions {
            publish_allow: list(&["up.>"]),
            publish_deny: list(&["up.secret"]),
            subscribe_allow: list(&["down.>", "q.> grp"]),
            subscribe_deny: list(&["down.secret"]),
            ..Permissions::default()
        })
        .expect("valid");
        let p = LinkPerms::hub(Some(&user), &strings(&["down.private", "not valid"]));
        let (inbound, outbound) = (p.inbound.expect("in"), p.outbound.expect("out"));
        // The leaf may send what the user may publish...
        assert!(inbound.publish_allowed(b"up.a"));
        assert!(!inbound.publish_allowed(b"up.secret"));
        assert!(!inbound.publish_allowed(b"down.a"));
        // ...and receives what it may subscribe to, less its own deny_pub;
        // a queue entry never admits a message.
        assert!(outbound.publish_allowed(b"down.a"));
        assert!(!outbound.publish_allowed(b"down.secret"));
        assert!(!outbound.publish_allowed(b"down.private"));
        assert!(!outbound.publish_allowed(b"up.a"));
        assert!(!outbound.publish_allowed(b"q.x"));
        // Interest told to the leaf: what it may send us.
        assert!(inbound.interest_allowed(b"up.a"));
        assert!(
            inbound.interest_allowed(b">"),
            "a wildcard overlapping an allow"
        );
        assert!(!inbound.interest_allowed(b"up.secret"));
        assert!(!inbound.interest_allowed(b"down.>"));
        let (import, export) = LinkPerms::hub_info(&user);
        let import = import.expect("import");
        assert_eq!(import.allow, list(&["down.>", "q.> grp"]));
        assert_eq!(import.deny, list(&["down.secret"]));
        assert_eq!(export.expect("export").allow, list(&["up.>"]));
    }

    #[test]
    fn unrestricted_users_and_empty_lists_cost_nothing() {
        assert!(LinkPerms::hub(None, &[]).is_open());
        let subscribe_only = CompiledPermissions::compile(&Permissions {
            subscribe_deny: list(&["x"]),
            ..Permissions::default()
        })
        .expect("valid");
        let p = LinkPerms::hub(Some(&subscribe_only), &[]);
        assert!(p.inbound.is_none() && p.outbound.is_some());
        // nats-server: an empty subscribe allow list is no allow list.
        let empty = CompiledPermissions::compile(&Permissions {
            subscribe_allow: Some(Vec::new()),
            ..Permissions::default()
        })
        .expect("valid");
        assert!(LinkPerms::hub(Some(&empty), &[]).is_open());
        assert!(LinkPerms::spoke(None, None, &[], &[]).is_open());
        let json = serde_json::to_string(&SubjectLists {
            allow: Some(Vec::new()),
            deny: list(&["a"]),
        })
        .expect("json");
        assert_eq!(json, r#"{"deny":["a"]}"#);
    }

    #[test]
    fn spoke_merges_the_hubs_lists_with_its_denies() {
        let import = SubjectLists {
            allow: list(&["in.>", "in.q grp"]),
            deny: list(&["in.hub"]),
        };
        let export = SubjectLists {
            allow: list(&["out.>"]),
            deny: None,
        };
        let p = LinkPerms::spoke(
            Some(&import),
            Some(&export),
            &strings(&["in.mine"]),
            &strings(&["out.mine"]),
        );
        let (inbound, outbound) = (p.inbound.expect("in"), p.outbound.expect("out"));
        assert!(inbound.publish_allowed(b"in.a"));
        assert!(!inbound.publish_allowed(b"in.hub"));
        assert!(!inbound.publish_allowed(b"in.mine"));
        assert!(!inbound.publish_allowed(b"other"));
        assert!(outbound.publish_allowed(b"out.a"));
        assert!(!outbound.publish_allowed(b"out.mine"));
        assert!(!outbound.publish_allowed(b"in.a"));

        // The remote's own lists alone: deny_exports out, deny_imports in.
        let p = LinkPerms::spoke(None, None, &strings(&["secret.>"]), &strings(&["private"]));
        let (inbound, outbound) = (p.inbound.expect("in"), p.outbound.expect("out"));
        assert!(!inbound.publish_allowed(b"secret.x"));
        assert!(inbound.publish_allowed(b"private"));
        assert!(!outbound.publish_allowed(b"private"));
        assert!(outbound.publish_allowed(b"secret.x"));
        // Interest fully inside a deny is not told; overlapping it is.
        assert!(!inbound.interest_allowed(b"secret.>"));
        assert!(!inbound.interest_allowed(b"secret.*"));
        assert!(inbound.interest_allowed(b">"));
        assert!(inbound.interest_allowed(b"public"));
    }
}
