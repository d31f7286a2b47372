//! Monitoring endpoints against a live server: `/varz`, `/subsz`, `/healthz`,
//! `/routez`, `/`, `/metrics` and 400s for bad parameters. Response shapes
//! are decoded into structs that mirror nats-server's field lists and types.
//! `/connz` has its own file (monitor_connz.rs).

use std::collections::HashMap;

use crate::common::TestServer;
use crate::monitor_util::{assert_rfc3339, assert_uptime, eventually, Monitor};
use serde::Deserialize;

/// nats-server `Varz` fields natrium reports (Go types: int→i64, time→string).
#[derive(Debug, Deserialize)]
struct Varz {
    server_id: String,
    server_name: String,
    version: String,
    proto: i64,
    go: String,
    host: String,
    port: i64,
    max_connections: i64,
    max_subscriptions: i64,
    ping_interval: i64,
    ping_max: i64,
    http_host: String,
    http_port: i64,
    auth_timeout: f64,
    max_control_line: i64,
    max_payload: i64,
    max_pending: i64,
    write_deadline: i64,
    start: String,
    now: String,
    uptime: String,
    mem: i64,
    cores: i64,
    cpu: f64,
    connections: i64,
    total_connections: u64,
    subscriptions: u32,
    in_msgs: i64,
    out_msgs: i64,
    in_bytes: i64,
    out_bytes: i64,
    slow_consumers: i64,
    http_req_stats: HashMap<String, u64>,
    config_load_time: String,
}

/// nats-server `Subsz` with its embedded `SublistStats`.
#[derive(Debug, Deserialize)]
struct Subsz {
    server_id: String,
    now: String,
    num_subscriptions: u32,
    num_cache: u32,
    num_inserts: u64,
    num_removes: u64,
    num_matches: u64,
    cache_hit_rate: f64,
    max_fanout: u32,
    avg_fanout: f64,
    total: i64,
    offset: i64,
    limit: i64,
    #[serde(default)]
    subscriptions_list: Vec<SubDetail>,
}

/// nats-server `SubDetail`.
#[derive(Debug, Deserialize, PartialEq)]
struct SubDetail {
    subject: String,
    #[serde(default)]
    qgroup: String,
    sid: String,
    msgs: i64,
    #[serde(default)]
    max: i64,
    cid: u64,
    #[serde(default)]
    account: String,
}

#[derive(Debug, Deserialize)]
struct Routez {
    server_id: String,
    now: String,
    num_routes: i64,
    routes: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
struct Health {
    status: String,
}

#[test]
fn varz_reports_identity_limits_and_counters() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let mut sub = server.raw();
    sub.send(b"CONNECT {\"verbose\":false}\r\nSUB foo 1\r\nSUB bar 2\r\n");
    sub.flush();
    let mut publ = server.raw();
    publ.send(b"CONNECT {\"verbose\":false}\r\nPUB foo 5\r\nhello\r\nPUB foo 3\r\nabc\r\n");
    publ.flush();
    sub.expect(b"MSG foo 1 5\r\nhello\r\nMSG foo 1 3\r\nabc\r\n");

    let v: Varz = mon.json("/varz");
    assert_eq!(v.server_id, server.state.server_id);
    assert_eq!(v.server_name, server.state.server_id, "defaults to the id");
    assert_eq!((v.proto, v.go.is_empty()), (1, false));
    assert!(!v.version.is_empty());
    assert_eq!(
        (v.host.as_str(), v.port),
        ("127.0.0.1", i64::from(server.addr.port()))
    );
    assert_eq!(
        (v.http_host.as_str(), v.http_port),
        ("127.0.0.1", i64::from(mon.addr.port()))
    );
    assert_eq!(v.max_connections, 64 * 1024);
    assert_eq!(v.max_subscriptions, 0);
    assert_eq!(v.ping_interval, 120_000_000_000, "Go duration: nanoseconds");
    assert_eq!(v.write_deadline, 10_000_000_000);
    assert_eq!(v.ping_max, 2);
    assert_eq!(v.auth_timeout, 2.0);
    assert_eq!((v.max_payload, v.max_control_line), (1024 * 1024, 4096));
    assert_eq!(v.max_pending, 64 * 1024 * 1024);
    for t in [&v.start, &v.now, &v.config_load_time] {
        assert_rfc3339(t);
    }
    assert_uptime(&v.uptime);
    assert!(v.mem > 0 && v.cores > 0 && v.cpu >= 0.0, "{v:?}");
    assert_eq!((v.connections, v.total_connections), (2, 2));
    assert_eq!(v.subscriptions, 2);
    assert_eq!((v.in_msgs, v.in_bytes), (2, 8));
    assert_eq!((v.out_msgs, v.out_bytes), (2, 8));
    assert_eq!(v.slow_consumers, 0);
    assert_eq!(v.http_req_stats.get("/varz"), Some(&1));

    // Counters survive the connections closing (closed totals are kept).
    drop(sub);
    drop(publ);
    eventually("connections closed", || {
        mon.json::<Varz>("/varz").connections == 0
    });
    let v: Varz = mon.json("/varz");
    assert_eq!((v.in_msgs, v.out_msgs, v.total_connections), (2, 2, 2));
    assert!(v.http_req_stats["/varz"] >= 3);
}

#[test]
fn healthz_routez_and_index() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let h: Health = mon.json("/healthz");
    assert_eq!(h.status, "ok");
    let r: Routez = mon.json("/routez");
    assert_eq!(r.server_id, server.state.server_id);
    assert_rfc3339(&r.now);
    assert_eq!((r.num_routes, r.routes.len()), (0, 0));
    let index = mon.get("/");
    assert_eq!(index.status, 200);
    assert!(index
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/html"));
    for link in [
        "varz", "connz", "subsz", "routez", "healthz", "metrics", "gatewayz", "leafz", "accountz",
        "jsz",
    ] {
        assert!(index.body.contains(&format!("href=\"./{link}\"")), "{link}");
    }
    assert_eq!(mon.get("/nope").status, 404);
}

#[test]
fn absent_features_answer_with_empty_reference_shapes() {
    // Shapes as nats-server 2.9.10 answers without gateways, leaf nodes or
    // JetStream (checked side by side); like nats-server, the system
    // account `$SYS` exists without any configuration.
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let id = server.state.server_id.clone();
    let g: serde_json::Value = mon.json("/gatewayz");
    assert_eq!(g["server_id"], id.as_str());
    assert_eq!(g["outbound_gateways"], serde_json::json!({}));
    assert_eq!(g["inbound_gateways"], serde_json::json!({}));
    let l: serde_json::Value = mon.json("/leafz");
    assert_eq!(
        (l["leafnodes"].as_u64(), l["leafs"].is_null()),
        (Some(0), true)
    );
    let a: serde_json::Value = mon.json("/accountz");
    assert_eq!(a["accounts"], serde_json::json!(["$G", "$SYS"]));
    assert_eq!(a["system_account"], "$SYS");
    let j: serde_json::Value = mon.json("/jsz");
    assert_eq!(j["disabled"], true);
    assert_eq!(
        j["config"],
        serde_json::json!({"max_memory": 0, "max_storage": 0})
    );
    assert_eq!(j["api"], serde_json::json!({"total": 0, "errors": 0}));
    for t in [&g, &l, &a, &j] {
        assert_rfc3339(t["now"].as_str().expect("now"));
    }
    let v: serde_json::Value = mon.json("/varz");
    for section in [
        "cluster",
        "gateway",
        "leaf",
        "mqtt",
        "websocket",
        "jetstream",
    ] {
        assert_eq!(v[section], serde_json::json!({}), "{section}");
    }
}

#[test]
fn subsz_stats_lists_and_test_subject() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let mut a = server.raw();
    a.send(b"CONNECT {\"verbose\":false}\r\nSUB foo.* 1\r\nSUB foo.> 2\r\nSUB bar 3\r\n");
    a.flush();
    let mut b = server.raw();
    b.send(
        b"CONNECT {\"verbose\":false}\r\nSUB foo.bar workers 7\r\nSUB foo.bar 8\r\nUNSUB 8 5\r\n",
    );
    b.send(b"PUB foo.bar 2\r\nhi\r\n");
    b.flush();
    let cid_a = server
        .state
        .clients()
        .iter()
        .map(|c| c.cid)
        .min()
        .expect("cid");
    let cid_b = cid_a + 1;

    let s: Subsz = mon.json("/subsz");
    assert_eq!(s.server_id, server.state.server_id);
    assert_rfc3339(&s.now);
    assert_eq!(
        (s.num_subscriptions, s.num_inserts, s.num_removes),
        (5, 5, 0)
    );
    assert!(s.num_matches >= 1 && s.num_cache >= 1, "{s:?}");
    assert!((0.0..=1.0).contains(&s.cache_hit_rate));
    assert_eq!(
        s.max_fanout, 4,
        "three plain subscribers plus one queue group"
    );
    assert!(s.avg_fanout > 0.0);
    assert_eq!((s.offset, s.limit), (0, 1024));
    assert!(s.subscriptions_list.is_empty(), "no list unless asked");

    let s: Subsz = mon.json("/subsz?subs=1");
    assert_eq!(s.total, 5);
    let subjects: Vec<(u64, &str, &str, &str)> = s
        .subscriptions_list
        .iter()
        .map(|d| (d.cid, d.sid.as_str(), d.subject.as_str(), d.qgroup.as_str()))
        .collect();
    assert_eq!(
        subjects,
        [
            (cid_a, "1", "foo.*", ""),
            (cid_a, "2", "foo.>", ""),
            (cid_a, "3", "bar", ""),
            (cid_b, "7", "foo.bar", "workers"),
            (cid_b, "8", "foo.bar", ""),
        ]
    );
    let page: Subsz = mon.json("/subsz?subs=1&offset=1&limit=2");
    assert_eq!((page.total, page.offset, page.limit), (5, 1, 2));
    assert_eq!(page.subscriptions_list, s.subscriptions_list[1..3]);

    // As nats-server, every entry names the account.
    assert!(s.subscriptions_list.iter().all(|d| d.account == "$G"));

    // test= lists what a publish to that subject reaches, with delivery counts
    // (every delivery, as nats-server counts them).
    let t: Subsz = mon.json("/subsz?test=foo.bar");
    let mut hits: Vec<(&str, &str, i64, i64)> = t
        .subscriptions_list
        .iter()
        .map(|d| (d.sid.as_str(), d.subject.as_str(), d.msgs, d.max))
        .collect();
    hits.sort();
    assert_eq!(
        hits,
        [
            ("1", "foo.*", 1, 0),
            ("2", "foo.>", 1, 0),
            ("7", "foo.bar", 1, 0),
            ("8", "foo.bar", 1, 5)
        ]
    );
    assert_eq!(t.total, 4);
    let none: Subsz = mon.json("/subsz?test=baz");
    assert_eq!((none.total, none.subscriptions_list.len()), (0, 0));
    let deep: Subsz = mon.json("/subsz?test=foo.x.y");
    assert_eq!(deep.subscriptions_list.len(), 1, "only foo.>");
    assert_eq!(deep.subscriptions_list[0].subject, "foo.>");
    // The alias nats-server also serves.
    let alias: Subsz = mon.json("/subscriptionsz");
    assert_eq!(alias.num_subscriptions, 5);
}

/// Parses Prometheus text format 0.0.4 strictly enough to catch shape errors:
/// every sample line is `name{labels} value`, every name has HELP and TYPE.
fn parse_prometheus(text: &str) -> HashMap<String, f64> {
    let mut samples = HashMap::new();
    let mut typed = HashMap::new();
    for line in text.lines().filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("# ") {
            let mut parts = rest.splitn(3, ' ');
            let (kw, name) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            assert!(kw == "HELP" || kw == "TYPE", "bad comment {line:?}");
            if kw == "TYPE" {
                let kind = parts.next().unwrap_or("");
                assert!(["counter", "gauge"].contains(&kind), "{line:?}");
                typed.insert(name.to_string(), kind.to_string());
            }
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let name = series.split('{').next().expect("name");
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "metric name {name:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')));
        }
        assert!(typed.contains_key(name), "{name} has no TYPE line");
        let v: f64 = value
            .parse()
            .unwrap_or_else(|_| panic!("value in {line:?}"));
        samples.insert(name.to_string(), v);
    }
    samples
}

#[test]
fn metrics_is_prometheus_text_with_varz_counters() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let mut c = server.raw();
    c.send(b"CONNECT {\"verbose\":false}\r\nSUB m 1\r\nPUB m 4\r\nping\r\n");
    c.expect(b"MSG m 1 4\r\nping\r\n");
    let r = mon.get("/metrics");
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain; version=0.0.4"));
    let id_label = format!("{{server_id=\"{}\"}}", server.state.server_id);
    assert!(r
        .body
        .contains(&format!("gnatsd_varz_connections{id_label} 1")));
    let m = parse_prometheus(&r.body);
    let want = [
        ("gnatsd_varz_connections", 1.0),
        ("gnatsd_varz_total_connections", 1.0),
        ("gnatsd_varz_subscriptions", 1.0),
        ("gnatsd_varz_in_msgs", 1.0),
        ("gnatsd_varz_out_msgs", 1.0),
        ("gnatsd_varz_in_bytes", 4.0),
        ("gnatsd_varz_out_bytes", 4.0),
        ("gnatsd_varz_slow_consumers", 0.0),
        ("gnatsd_subsz_num_subscriptions", 1.0),
    ];
    for (name, value) in want {
        assert_eq!(m.get(name), Some(&value), "{name}");
    }
    assert!(m["gnatsd_varz_mem"] > 0.0);
    assert!(m["gnatsd_varz_uptime_seconds"] >= 0.0);
}

#[test]
fn bad_parameters_are_400_with_a_reason() {
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());
    let cases = [
        ("/connz?limit=abc", "limit"),
        ("/connz?offset=-1", "offset"),
        ("/connz?cid=x", "cid"),
        ("/connz?sort=bogus", "sorting option"),
        ("/connz?sort=stop", "only valid on closed"),
        ("/connz?state=open&sort=reason", "only valid on closed"),
        ("/connz?state=sideways", "state"),
        ("/connz?subs=maybe", "subs"),
        ("/subsz?test=foo.*", "test subject"),
        ("/subsz?test=foo..bar", "test subject"),
        ("/subsz?limit=1e3", "limit"),
        ("/subsz?subs=2", "subs"),
    ];
    for (path, needle) in cases {
        let r = mon.get(path);
        assert_eq!(r.status, 400, "{path}: {}", r.body);
        assert!(r.body.contains(needle), "{path}: {:?}", r.body);
    }
    // Still serving after all of that.
    assert_eq!(mon.get("/healthz").status, 200);
}
