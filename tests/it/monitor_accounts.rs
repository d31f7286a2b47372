//! The monitoring side of accounts against a live server with accounts A and
//! B: `/accountz` (list, one account's detail, exports and imports, the
//! unknown-account error), `/accstatz` (live and closed traffic per account,
//! `unused`, `accs`), `/connz?acc=`/`user=` with and without `auth=1`, the
//! per-account `/metrics` lines and `/varz`'s `system_account`. Every count
//! asserted is one the test caused, so each is checked exactly.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::accounts::{login, next, server};
use crate::common::TestServer;
use crate::monitor_util::{assert_rfc3339, eventually, Monitor};

/// Subscriptions every account but the system account has from the start:
/// its system imports (`$SYS.REQ.ACCOUNT.PING.CONNZ|STATZ`,
/// `$SYS.REQ.SERVER.PING.CONNZ`, `$SYS.REQ.USER.INFO`), as nats-server.
const SYSTEM_IMPORTS: u64 = 4;

const TWO: &str = r#"
accounts {
  A { users = [ {user: a, password: a} ] }
  B { users = [ {user: b, password: b} ] }
}
"#;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// A server with one live client in A and one in B, each subscribed to
/// `orders`, and a second A client that published once and left.
/// Traffic: A's live client publishes 3 × 5 B, B's 1 × 2 B, the leaver
/// 1 × 4 B; each message reaches only its own account's subscriber. Holds
/// the clients with their subscribers (async-nats unsubscribes a dropped
/// subscriber) and the runtime their connections run on.
struct Scene {
    _live: Vec<(async_nats::Client, async_nats::Subscriber)>,
    _rt: tokio::runtime::Runtime,
    srv: TestServer,
    mon: Monitor,
}

fn scene() -> Scene {
    let srv = server(TWO);
    let mon = Monitor::start(srv.state.clone());
    let rt = runtime();
    let live = rt.block_on(async {
        let (a, b) = (login(&srv, "a").await, login(&srv, "b").await);
        let mut sa = a.subscribe("orders").await.expect("sub");
        let mut sb = b.subscribe("orders").await.expect("sub");
        a.flush().await.expect("flush");
        b.flush().await.expect("flush");
        for _ in 0..3 {
            a.publish("orders", "hello".into()).await.expect("pub");
        }
        b.publish("orders", "xy".into()).await.expect("pub");
        a.flush().await.expect("flush");
        b.flush().await.expect("flush");
        for _ in 0..3 {
            assert_eq!(&next(&mut sa).await.payload[..], b"hello");
        }
        assert_eq!(&next(&mut sb).await.payload[..], b"xy");

        // The leaver: a raw client in A whose counters end in A's closed totals.
        let mut r = srv.raw();
        r.send(b"CONNECT {\"user\":\"a\",\"pass\":\"a\",\"verbose\":false}\r\n");
        r.send(b"PUB orders 4\r\nbyte\r\nPING\r\n");
        assert_eq!(r.read_line(), "PONG");
        drop(r);
        assert_eq!(&next(&mut sa).await.payload[..], b"byte");
        // B's subscriber saw nothing of A's traffic.
        let more = tokio::time::timeout(Duration::from_millis(200), sb.next()).await;
        assert!(more.is_err(), "B got A's message: {more:?}");
        vec![(a, sa), (b, sb)]
    });
    let closed = || {
        mon.json::<Value>("/connz?state=closed")["total"]
            .as_u64()
            .unwrap_or(0)
    };
    eventually("the leaver to be closed", || closed() == 1);
    Scene {
        _live: live,
        _rt: rt,
        srv,
        mon,
    }
}

/// The `/accstatz` entry for `acc`.
fn stat<'a>(statz: &'a Value, acc: &str) -> &'a Value {
    statz["account_statz"]
        .as_array()
        .expect("account_statz")
        .iter()
        .find(|s| s["acc"] == acc)
        .unwrap_or_else(|| panic!("no {acc} in {statz}"))
}

fn names(statz: &Value) -> Vec<&str> {
    statz["account_statz"]
        .as_array()
        .expect("account_statz")
        .iter()
        .map(|s| s["acc"].as_str().expect("acc"))
        .collect()
}

#[test]
fn accountz_lists_accounts_and_details_one() {
    let s = scene();
    let id = s.srv.state.server_id.clone();
    let list: Value = s.mon.json("/accountz");
    assert_eq!(list["server_id"], id.as_str());
    assert_rfc3339(list["now"].as_str().expect("now"));
    assert_eq!(list["system_account"], "$SYS");
    assert_eq!(list["accounts"], json!(["$G", "$SYS", "A", "B"]));
    assert!(list.get("account_detail").is_none(), "{list}");

    let a: Value = s.mon.json("/accountz?acc=A");
    assert!(a.get("accounts").is_none(), "{a}");
    assert_eq!(a["system_account"], "$SYS");
    let d = &a["account_detail"];
    assert_eq!(d["account_name"], "A");
    assert_rfc3339(d["update_time"].as_str().expect("update_time"));
    assert!(d.get("is_system").is_none(), "omitted when false: {d}");
    assert_eq!(
        (&d["expired"], &d["complete"], &d["jetstream_enabled"]),
        (&json!(false), &json!(true), &json!(false))
    );
    // The leaver is closed: one live client, its one subscription, beside
    // the account's four system imports (nats-server counts them too).
    assert_eq!(d["client_connections"], 1);
    assert_eq!(d["leafnode_connections"], 0);
    assert_eq!(d["subscriptions"], 1 + SYSTEM_IMPORTS);
    assert_eq!(d["sublist_stats"]["num_subscriptions"], 1 + SYSTEM_IMPORTS);
    assert!(d["sublist_stats"]["num_inserts"].as_u64() >= Some(1), "{d}");
    assert!(
        d.get("exports").is_none() && d.get("imports").is_none(),
        "{d}"
    );

    let sys: Value = s.mon.json("/accountz?acc=%24SYS");
    assert_eq!(sys["account_detail"]["account_name"], "$SYS");
    assert_eq!(sys["account_detail"]["is_system"], true);
    assert_eq!(sys["account_detail"]["client_connections"], 0);

    let bad = s.mon.get("/accountz?acc=nope");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.body.trim(), "Account nope does not exist");
}

#[test]
fn accstatz_counts_live_and_closed_traffic_per_account() {
    let s = scene();
    let statz: Value = s.mon.json("/accstatz");
    assert_eq!(statz["server_id"], s.srv.state.server_id.as_str());
    assert_rfc3339(statz["now"].as_str().expect("now"));
    // Without `unused`, only accounts with a connection.
    assert_eq!(names(&statz), ["A", "B"]);
    let zero = json!({"msgs": 0, "bytes": 0});
    let a = stat(&statz, "A");
    assert_eq!(a["name"], "A");
    assert_eq!((&a["conns"], &a["leafnodes"]), (&json!(1), &json!(0)));
    assert_eq!(a["total_conns"], 1);
    assert_eq!(a["num_subscriptions"], 1 + SYSTEM_IMPORTS);
    // 3 × "hello" and the leaver's "byte": in once, out once each.
    for dir in ["received", "sent"] {
        assert_eq!((&a[dir]["msgs"], &a[dir]["bytes"]), (&json!(4), &json!(19)));
        for link in ["gateways", "routes", "leafs"] {
            assert_eq!(a[dir][link], zero, "{dir}.{link}");
        }
    }
    assert_eq!(a["slow_consumers"], 0);
    let b = stat(&statz, "B");
    assert_eq!(
        (&b["conns"], &b["num_subscriptions"]),
        (&json!(1), &json!(1 + SYSTEM_IMPORTS))
    );
    assert_eq!(b["received"]["msgs"], 1);
    assert_eq!(b["received"]["bytes"], 2);
    assert_eq!(b["sent"]["msgs"], 1);
    assert_eq!(b["sent"]["bytes"], 2);

    let all: Value = s.mon.json("/accstatz?unused=1");
    assert_eq!(names(&all), ["$G", "$SYS", "A", "B"]);
    let g = stat(&all, "$G");
    assert_eq!((&g["conns"], &g["total_conns"]), (&json!(0), &json!(0)));
    assert_eq!(g["received"]["msgs"], 0);
    let only_b: Value = s.mon.json("/accstatz?accs=B,nope");
    assert_eq!(names(&only_b), ["B"]);
    assert_eq!(s.mon.get("/accstatz?unused=maybe").status, 400);

    let varz: Value = s.mon.json("/varz");
    assert_eq!(varz["system_account"], "$SYS");
    assert_eq!(varz["http_req_stats"]["/accstatz"], 4);
}

#[test]
fn connz_filters_by_account_and_names_it_with_auth() {
    let s = scene();
    let all: Value = s.mon.json("/connz");
    assert_eq!(all["total"], 2);
    // As nats-server: the account is named only with auth=1.
    assert!(all["connections"]
        .as_array()
        .expect("connections")
        .iter()
        .all(|c| ["account", "name_tag", "authorized_user"]
            .iter()
            .all(|k| c.get(k).is_none())));

    let a: Value = s.mon.json("/connz?acc=A&auth=1&subs=1");
    assert_eq!((&a["total"], &a["num_connections"]), (&json!(1), &json!(1)));
    let c = &a["connections"][0];
    assert_eq!(c["account"], "A");
    assert_eq!(c["name_tag"], "A");
    assert_eq!(c["authorized_user"], "a");
    assert_eq!(c["subscriptions_list"], json!(["orders"]));
    assert_eq!((&c["in_msgs"], &c["in_bytes"]), (&json!(3), &json!(15)));
    assert_eq!((&c["out_msgs"], &c["out_bytes"]), (&json!(4), &json!(19)));

    let b: Value = s.mon.json("/connz?acc=B&auth=1");
    assert_eq!(b["total"], 1);
    assert_eq!(b["connections"][0]["account"], "B");
    assert_eq!(b["connections"][0]["in_msgs"], 1);

    let closed: Value = s.mon.json("/connz?acc=A&state=closed&auth=1");
    assert_eq!(closed["total"], 1);
    let leaver = &closed["connections"][0];
    assert_eq!(leaver["account"], "A");
    assert_eq!(leaver["authorized_user"], "a");
    assert_eq!(
        (&leaver["in_msgs"], &leaver["in_bytes"]),
        (&json!(1), &json!(4))
    );
    let closed_b: Value = s.mon.json("/connz?acc=B&state=closed");
    assert_eq!(closed_b["total"], 0);

    let by_user: Value = s.mon.json("/connz?user=b&state=any");
    assert_eq!(by_user["total"], 1);
    assert!(by_user["connections"][0].get("authorized_user").is_none());

    let none: Value = s.mon.json("/connz?acc=nope");
    assert_eq!(none["total"], 0);
    assert_eq!(none["connections"], json!([]));
}

#[test]
fn metrics_have_per_account_lines() {
    let s = scene();
    let body = s.mon.get("/metrics").body;
    let id = &s.srv.state.server_id;
    let line = |metric: &str, acc: &str| {
        let prefix = format!(
            "gnatsd_accstatz_{metric}{{server_id=\"{id}\",account=\"{acc}\",account_id=\"{acc}\",account_name=\"{acc}\"}} "
        );
        let found = body.lines().find_map(|l| l.strip_prefix(prefix.as_str()));
        found
            .unwrap_or_else(|| panic!("no {prefix:?} in\n{body}"))
            .to_string()
    };
    assert_eq!(line("current_connections", "A"), "1");
    assert_eq!(line("current_connections", "B"), "1");
    // Idle accounts are listed too (the exporter asks with unused=1).
    assert_eq!(line("current_connections", "$G"), "0");
    assert_eq!(line("total_connections", "A"), "1");
    assert_eq!(line("leaf_nodes", "A"), "0");
    assert_eq!(line("subscriptions", "A"), (1 + SYSTEM_IMPORTS).to_string());
    assert_eq!(line("received_messages", "A"), "4");
    assert_eq!(line("received_bytes", "A"), "19");
    assert_eq!(line("sent_messages", "A"), "4");
    assert_eq!(line("sent_bytes", "B"), "2");
    assert_eq!(line("slow_consumers", "A"), "0");
    assert_eq!(
        body.matches("# TYPE gnatsd_accstatz_current_connections gauge")
            .count(),
        1
    );
}

#[test]
fn accountz_shows_exports_and_imports() {
    let srv = server(
        r#"
accounts {
  A {
    users = [ {user: a, password: a} ]
    exports = [
      {stream: "a.>"}
      {service: "svc.a", accounts: [B, C], response_type: stream}
    ]
  }
  B {
    users = [ {user: b, password: b} ]
    imports = [
      {stream: {account: A, subject: "a.>"}, prefix: from_a}
      {service: {account: A, subject: "svc.a"}, to: "a.svc"}
    ]
  }
  C { users = [ {user: c, password: c} ] }
}
"#,
    );
    let mon = Monitor::start(srv.state.clone());
    let a: Value = mon.json("/accountz?acc=A");
    let d = &a["account_detail"];
    assert_eq!(
        d["exports"],
        json!([
            {"subject": "a.>", "type": "stream"},
            {"subject": "svc.a", "type": "service", "response_type": "Stream",
             "approved_accounts": ["B", "C"]},
        ])
    );
    assert!(d.get("imports").is_none(), "{d}");
    let b: Value = mon.json("/accountz?acc=B");
    let d = &b["account_detail"];
    assert!(d.get("exports").is_none(), "{d}");
    let flags = json!({"invalid": false, "share": false, "tracking": false});
    let with_flags = |mut v: Value| {
        for (k, f) in flags.as_object().expect("flags") {
            v[k] = f.clone();
        }
        v
    };
    assert_eq!(
        d["imports"],
        json!([
            with_flags(json!({"subject": "a.>", "account": "A",
                "local_subject": "from_a.a.>", "type": "stream"})),
            with_flags(json!({"subject": "svc.a", "account": "A", "to": "a.svc",
                "local_subject": "a.svc", "type": "service"})),
        ])
    );
    // Import subscriptions live in the accounts' engines and are counted,
    // as nats-server counts its internal ones.
    for name in ["A", "B"] {
        let acc = srv.state.accounts.get(name).expect("account");
        let d: Value = mon.json(&format!("/accountz?acc={name}"));
        let subs = acc.sublist.count() as u64;
        assert!(subs >= 1, "{name} has its route subscriptions");
        assert_eq!(d["account_detail"]["subscriptions"], subs, "{name}");
        assert_eq!(
            d["account_detail"]["sublist_stats"]["num_subscriptions"],
            subs
        );
    }
}
