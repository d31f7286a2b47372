//! `/connz` against a live server: nats-server's `Connz`/`ConnInfo` fields,
//! paging, every sort order, `subs=1`, `cid=`, and closed connections with
//! their stop time and close reason.

use crate::common::{Raw, TestServer};
use crate::monitor_util::{assert_rfc3339, assert_uptime, eventually, Monitor};
use serde::Deserialize;

/// nats-server `Connz`.
#[derive(Debug, Deserialize)]
struct Connz {
    server_id: String,
    now: String,
    num_connections: i64,
    total: i64,
    offset: i64,
    limit: i64,
    connections: Vec<ConnInfo>,
}

/// nats-server `ConnInfo` (client fields natrium fills).
#[derive(Debug, Deserialize)]
struct ConnInfo {
    cid: u64,
    kind: String,
    #[serde(rename = "type")]
    conn_type: String,
    ip: String,
    port: i64,
    start: String,
    last_activity: String,
    stop: Option<String>,
    #[serde(default)]
    reason: String,
    rtt: String,
    uptime: String,
    idle: String,
    pending_bytes: i64,
    in_msgs: i64,
    out_msgs: i64,
    in_bytes: i64,
    out_bytes: i64,
    subscriptions: u32,
    #[serde(default)]
    name: String,
    #[serde(default)]
    lang: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    subscriptions_list: Vec<String>,
    #[serde(default)]
    subscriptions_list_detail: Vec<serde_json::Value>,
}

fn cids(c: &Connz) -> Vec<u64> {
    c.connections.iter().map(|c| c.cid).collect()
}

/// A client named `name` that subscribed to `subs` subjects, sent `pubs`
/// messages of `size` bytes to `sink`, and has had everything processed.
fn client(server: &TestServer, name: &str, subs: usize, pubs: usize, size: usize) -> Raw {
    let mut r = server.raw();
    let connect = format!(
        "CONNECT {{\"verbose\":false,\"name\":\"{name}\",\"lang\":\"rust\",\"version\":\"9.9\"}}\r\n"
    );
    r.send(connect.as_bytes());
    for i in 0..subs {
        r.send(format!("SUB {name}.{i} {i}\r\n").as_bytes());
    }
    let payload = "x".repeat(size);
    for _ in 0..pubs {
        r.send(format!("PUB sink {size}\r\n{payload}\r\n").as_bytes());
    }
    r.flush();
    r
}

#[test]
fn connz_fields_subs_and_cid_filter() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let mut sink = client(&server, "sink", 0, 0, 0);
    sink.send(b"SUB sink 1\r\nSUB q.a grp 2\r\n");
    sink.flush();
    let _p = client(&server, "pub", 1, 3, 10);
    let _ = sink.read_exact(3 * "MSG sink 1 10\r\nxxxxxxxxxx\r\n".len());

    let c: Connz = mon.json("/connz");
    assert_eq!(c.server_id, server.state.server_id);
    assert_rfc3339(&c.now);
    assert_eq!(
        (c.num_connections, c.total, c.offset, c.limit),
        (2, 2, 0, 1024)
    );
    let s = &c.connections[0];
    assert_eq!(
        (s.name.as_str(), s.lang.as_str(), s.version.as_str()),
        ("sink", "rust", "9.9")
    );
    assert_eq!((s.kind.as_str(), s.conn_type.as_str()), ("Client", "nats"));
    assert_eq!(s.ip, "127.0.0.1");
    assert!(s.port > 0);
    assert_rfc3339(&s.start);
    assert_rfc3339(&s.last_activity);
    assert!(s.stop.is_none() && s.reason.is_empty());
    assert!(s.rtt.ends_with('s'), "Go duration: {}", s.rtt);
    assert_uptime(&s.uptime);
    assert_uptime(&s.idle);
    assert_eq!((s.subscriptions, s.out_msgs, s.out_bytes), (2, 3, 30));
    assert_eq!((s.in_msgs, s.pending_bytes), (0, 0));
    assert!(s.subscriptions_list.is_empty(), "only with subs=1");
    let p = &c.connections[1];
    assert_eq!((p.in_msgs, p.in_bytes, p.subscriptions), (3, 30, 1));

    // As nats-server 2.9.10 (checked side by side): subjects only, the queue
    // group shows in the detail form.
    let c: Connz = mon.json("/connz?subs=1");
    assert_eq!(c.connections[0].subscriptions_list, ["q.a", "sink"]);
    assert_eq!(c.connections[1].subscriptions_list, ["pub.0"]);
    assert!(c.connections[0].subscriptions_list_detail.is_empty());
    let detail: Connz = mon.json("/connz?subs=detail");
    let d = &detail.connections[0];
    assert!(d.subscriptions_list.is_empty(), "detail replaces the list");
    assert_eq!(
        d.subscriptions_list_detail,
        [
            serde_json::json!({"subject": "q.a", "qgroup": "grp", "sid": "2", "msgs": 0, "cid": d.cid}),
            serde_json::json!({"subject": "sink", "sid": "1", "msgs": 3, "cid": d.cid}),
        ]
    );

    let one: Connz = mon.json(&format!("/connz?cid={}", p.cid));
    assert_eq!((cids(&one), one.total), (vec![p.cid], 1));
    let missing: Connz = mon.json("/connz?cid=999999");
    assert_eq!((missing.total, missing.connections.len()), (0, 0));
}

#[test]
fn connz_paging_with_offset_and_limit() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let _clients: Vec<Raw> = (0..5)
        .map(|i| client(&server, &format!("c{i}"), 0, 0, 0))
        .collect();
    let all: Connz = mon.json("/connz");
    let ids = cids(&all);
    assert_eq!(ids.len(), 5);
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "default sort is cid ascending"
    );
    let page: Connz = mon.json("/connz?offset=1&limit=2");
    assert_eq!(
        (page.num_connections, page.total, page.offset, page.limit),
        (2, 5, 1, 2)
    );
    assert_eq!(cids(&page), ids[1..3]);
    let tail: Connz = mon.json("/connz?offset=4&limit=10");
    assert_eq!(cids(&tail), ids[4..]);
    let past: Connz = mon.json("/connz?offset=50");
    assert_eq!((past.num_connections, past.total), (0, 5));
    let zero: Connz = mon.json("/connz?limit=0");
    assert_eq!(zero.limit, 1024, "0 means the default, as nats-server");
}

#[test]
fn connz_sort_orders() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let mut sink = client(&server, "sink", 0, 0, 0);
    sink.send(b"SUB sink 1\r\n");
    sink.flush();
    // a: many small messages, b: few large ones, c: most subscriptions.
    let a = client(&server, "a", 1, 6, 2);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let _b = client(&server, "b", 2, 2, 100);
    let _c = client(&server, "c", 5, 0, 0);
    let _ = sink.read_exact(6 * "MSG sink 1 2\r\nxx\r\n".len() + 2 * 113);
    let names = |sort: &str| -> Vec<String> {
        let c: Connz = mon.json(&format!("/connz?sort={sort}"));
        c.connections.into_iter().map(|c| c.name).collect()
    };
    assert_eq!(names("cid"), ["sink", "a", "b", "c"]);
    assert_eq!(names("start"), ["sink", "a", "b", "c"]);
    assert_eq!(names("msgs_from"), ["a", "b", "sink", "c"], "ties by cid");
    assert_eq!(names("bytes_from"), ["b", "a", "sink", "c"]);
    assert_eq!(names("msgs_to")[0], "sink");
    assert_eq!(names("bytes_to")[0], "sink");
    assert_eq!(names("subs"), ["c", "b", "sink", "a"]);
    assert_eq!(names("uptime")[..2], ["sink", "a"]);
    assert_eq!(names("pending").len(), 4);
    assert_eq!(names("rtt").len(), 4);
    // a was last active a second before b and c.
    assert_eq!(names("idle")[..2], ["sink", "a"]);
    drop(a);
    eventually("a's close is noticed", || {
        server.state.num_connections() == 3
    });
    let last = names("last");
    assert_eq!(last.len(), 3);
}

#[test]
fn connz_closed_connections_with_reasons() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let keep = client(&server, "keeper", 1, 0, 0);
    let bye = client(&server, "leaver", 2, 1, 4);
    let bye_cid = server
        .state
        .clients()
        .iter()
        .map(|c| c.cid)
        .max()
        .expect("cid");
    drop(bye);
    // The first close must be recorded before the second starts, or the
    // stop order checked below is a race (it failed under a loaded machine).
    eventually("one closed connection", || {
        mon.json::<Connz>("/connz?state=closed").total == 1
    });
    let mut bad = client(&server, "broken", 0, 0, 0);
    bad.send(b"NOT_A_VERB\r\n");
    assert!(bad.read_line().starts_with("-ERR"));
    assert!(bad.closed());
    eventually("two closed connections", || {
        mon.json::<Connz>("/connz?state=closed").total == 2
    });

    let closed: Connz = mon.json("/connz?state=closed&subs=1");
    let by_name = |n: &str| closed.connections.iter().find(|c| c.name == n).expect(n);
    let leaver = by_name("leaver");
    assert_eq!(leaver.cid, bye_cid);
    assert_eq!(leaver.reason, "Client Closed");
    assert_eq!((leaver.in_msgs, leaver.in_bytes), (1, 4));
    // As nats-server, a closed connection keeps its subscription count and,
    // with subs=1, its list.
    assert_eq!(leaver.subscriptions, 2);
    assert_eq!(leaver.subscriptions_list.len(), 2);
    let detail: Connz = mon.json(&format!("/connz?state=closed&subs=detail&cid={bye_cid}"));
    let kept = &detail.connections[0].subscriptions_list_detail;
    assert_eq!(kept.len(), 2);
    for d in kept {
        // nats-server names the account in a closed connection's details.
        assert_eq!(d["account"], "$G", "{d}");
        assert_eq!(d["cid"], bye_cid, "{d}");
        assert!(d["msgs"].is_u64() && d.get("max").is_none(), "{d}");
    }
    assert_rfc3339(leaver.stop.as_deref().expect("stop set"));
    assert_uptime(&leaver.uptime);
    let broken = by_name("broken");
    assert_eq!(broken.reason, "Parse Error");
    assert!(broken.stop.is_some());

    let no_subs: Connz = mon.json("/connz?state=closed");
    assert!(no_subs
        .connections
        .iter()
        .all(|c| c.subscriptions_list.is_empty()));
    let open: Connz = mon.json("/connz");
    assert_eq!(
        open.connections
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["keeper"]
    );
    let any: Connz = mon.json("/connz?state=any");
    assert_eq!(any.total, 3);
    assert_eq!(cids(&any).len(), 3);

    let by_reason: Connz = mon.json("/connz?state=closed&sort=reason");
    let reasons: Vec<&str> = by_reason
        .connections
        .iter()
        .map(|c| c.reason.as_str())
        .collect();
    assert_eq!(reasons, ["Client Closed", "Parse Error"]);
    let by_stop: Connz = mon.json("/connz?state=closed&sort=stop");
    assert_eq!(
        by_stop.connections[0].name, "broken",
        "most recent stop first"
    );

    let one: Connz = mon.json(&format!("/connz?state=closed&cid={bye_cid}"));
    assert_eq!(cids(&one), [bye_cid]);
    let via_any: Connz = mon.json(&format!("/connz?state=any&cid={bye_cid}"));
    assert_eq!(via_any.connections[0].reason, "Client Closed");
    let not_open: Connz = mon.json(&format!("/connz?cid={bye_cid}"));
    assert_eq!(not_open.total, 0, "state=open does not list closed ones");
    drop(keep);
}
