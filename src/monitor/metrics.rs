//! `/metrics`: Prometheus text exposition (format 0.0.4) with the metric names
//! prometheus-nats-exporter derives from `/varz`, `/connz`, `/subsz`,
//! `/routez` and `/accstatz` (`gnatsd_varz_connections{server_id="..."}`,
//! `gnatsd_accstatz_current_connections{server_id,account,...}` and so on),
//! so existing Grafana dashboards work without the exporter. Additions are
//! natrium's: `gnatsd_varz_uptime_seconds` (the exporter has no numeric
//! uptime) and the `natrium_leaf_*` counters.
//!
//! Reads the same snapshots as the JSON endpoints (the per-account numbers
//! are `/accstatz`'s tally); writes nothing.

use std::fmt::Write;
use std::time::SystemTime;

use super::accountz::{self, Tally};
use super::{varz, Monitor};
use crate::time::since;

/// Renders every metric, each with `# HELP` and `# TYPE` lines.
pub(crate) fn render(mon: &Monitor) -> String {
    let v = varz::collect(mon);
    let stats = mon.server.accounts.stats();
    let label = format!("{{server_id=\"{}\"}}", escape(&v.server_id));
    let uptime = since(SystemTime::now(), mon.server.start).as_secs_f64();
    let mut out = String::with_capacity(4096);
    let mut m = |name: &str, kind: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name}{label} {value}");
    };
    let (g, c) = ("gauge", "counter");
    m(
        "gnatsd_varz_connections",
        g,
        "Current client connections",
        v.connections as f64,
    );
    m(
        "gnatsd_varz_total_connections",
        c,
        "Client connections accepted since start",
        v.total_connections as f64,
    );
    m(
        "gnatsd_varz_subscriptions",
        g,
        "Current subscriptions",
        v.subscriptions as f64,
    );
    m(
        "gnatsd_varz_in_msgs",
        c,
        "Messages received from clients",
        v.in_msgs as f64,
    );
    m(
        "gnatsd_varz_out_msgs",
        c,
        "Messages delivered to clients",
        v.out_msgs as f64,
    );
    m(
        "gnatsd_varz_in_bytes",
        c,
        "Payload bytes received from clients",
        v.in_bytes as f64,
    );
    m(
        "gnatsd_varz_out_bytes",
        c,
        "Payload bytes delivered to clients",
        v.out_bytes as f64,
    );
    m(
        "gnatsd_varz_slow_consumers",
        c,
        "Clients closed or flagged as slow consumers",
        v.slow_consumers as f64,
    );
    m(
        "gnatsd_varz_mem",
        g,
        "Resident memory in bytes",
        v.mem as f64,
    );
    m(
        "gnatsd_varz_cpu",
        g,
        "CPU use in percent of one core",
        v.cpu,
    );
    m("gnatsd_varz_cores", g, "Available cores", v.cores as f64);
    m(
        "gnatsd_varz_max_connections",
        g,
        "Configured connection limit",
        v.max_connections as f64,
    );
    m(
        "gnatsd_varz_max_payload",
        g,
        "Configured maximum payload in bytes",
        v.max_payload as f64,
    );
    m(
        "gnatsd_varz_max_pending",
        g,
        "Configured maximum pending bytes per client",
        v.max_pending as f64,
    );
    m("gnatsd_varz_routes", g, "Cluster routes (always 0)", 0.0);
    m("gnatsd_varz_remotes", g, "Remote servers (always 0)", 0.0);
    m(
        "gnatsd_varz_leafnodes",
        g,
        "Leaf node links up",
        v.leafnodes as f64,
    );
    let leaf = mon.server.leafs.traffic();
    let leaf_metrics = [
        (
            "natrium_leaf_connects_total",
            "Leaf links that came up (reconnects included)",
            leaf.connects,
        ),
        (
            "natrium_leaf_in_msgs_total",
            "Messages received over leaf links",
            leaf.in_msgs,
        ),
        (
            "natrium_leaf_in_bytes_total",
            "Payload bytes received over leaf links",
            leaf.in_bytes,
        ),
        (
            "natrium_leaf_out_msgs_total",
            "Messages sent over leaf links",
            leaf.out_msgs,
        ),
        (
            "natrium_leaf_out_bytes_total",
            "Payload bytes sent over leaf links",
            leaf.out_bytes,
        ),
    ];
    for (name, help, value) in leaf_metrics {
        m(name, c, help, value as f64);
    }
    m(
        "gnatsd_varz_uptime_seconds",
        g,
        "Seconds since the server started (natrium addition)",
        uptime,
    );
    m(
        "gnatsd_connz_num_connections",
        g,
        "Open connections",
        v.connections as f64,
    );
    m(
        "gnatsd_connz_total",
        g,
        "Open connections (connz total)",
        v.connections as f64,
    );
    m(
        "gnatsd_routez_num_routes",
        g,
        "Cluster routes (always 0)",
        0.0,
    );
    m(
        "gnatsd_subsz_num_subscriptions",
        g,
        "Subscriptions in the interest graph",
        stats.num_subscriptions as f64,
    );
    m(
        "gnatsd_subsz_num_cache",
        g,
        "Entries in the match cache",
        stats.num_cache as f64,
    );
    m(
        "gnatsd_subsz_num_inserts",
        c,
        "Subscriptions inserted since start",
        stats.num_inserts as f64,
    );
    m(
        "gnatsd_subsz_num_removes",
        c,
        "Subscriptions removed since start",
        stats.num_removes as f64,
    );
    m(
        "gnatsd_subsz_num_matches",
        c,
        "Subject matches since start",
        stats.num_matches as f64,
    );
    m(
        "gnatsd_subsz_cache_hit_rate",
        g,
        "Match cache hit rate (0..1)",
        stats.cache_hit_rate,
    );
    m(
        "gnatsd_subsz_max_fanout",
        g,
        "Largest fan-out among cached subjects",
        stats.max_fanout as f64,
    );
    m(
        "gnatsd_subsz_avg_fanout",
        g,
        "Mean fan-out among cached subjects",
        stats.avg_fanout,
    );
    accounts(&mut out, mon, &v.server_id);
    out
}

/// One value of an account's tally.
type Pick = fn(&Tally) -> u64;

/// Per-account gauges named and labelled as prometheus-nats-exporter's
/// `-accstatz` collector writes them (it polls `/accstatz?unused=1`, so
/// every account is listed, idle ones included; it types them all gauges).
fn accounts(out: &mut String, mon: &Monitor, server_id: &str) {
    let tally = accountz::tally(&mon.server);
    let rows: [(&str, &str, Pick); 9] = [
        (
            "current_connections",
            "Client connections in the account",
            |t| t.conns as u64,
        ),
        (
            "total_connections",
            "Client and leaf node connections in the account",
            |t| (t.conns + t.leafnodes) as u64,
        ),
        (
            "subscriptions",
            "Subscriptions in the account's interest graph",
            |t| u64::from(t.subscriptions),
        ),
        ("leaf_nodes", "Leaf node links bound to the account", |t| {
            t.leafnodes as u64
        }),
        (
            "sent_messages",
            "Messages delivered to the account's connections",
            |t| t.sent.total.msgs,
        ),
        (
            "sent_bytes",
            "Payload bytes delivered to the account's connections",
            |t| t.sent.total.bytes,
        ),
        (
            "received_messages",
            "Messages published by the account's connections",
            |t| t.received.total.msgs,
        ),
        (
            "received_bytes",
            "Payload bytes published by the account's connections",
            |t| t.received.total.bytes,
        ),
        (
            "slow_consumers",
            "Connections of the account cut as slow consumers",
            |t| t.slow_consumers,
        ),
    ];
    let sid = escape(server_id);
    for (suffix, help, pick) in rows {
        let name = format!("gnatsd_accstatz_{suffix}");
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        for (acc, t) in &tally {
            let a = escape(acc);
            let _ = writeln!(
                out,
                "{name}{{server_id=\"{sid}\",account=\"{a}\",account_id=\"{a}\",account_name=\"{a}\"}} {}",
                pick(t)
            );
        }
    }
}

/// Escapes a label value (backslash, quote, newline).
fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
