//! The official `nats` CLI against natrium's system account: `nats server
//! list` and `nats server report accounts` read natrium's `$SYS.REQ.…`
//! answers as they read nats-server's, and `nats account info` those of an
//! ordinary account's system imports; with a nats-server leaf whose system
//! account is bound to natrium's, `nats server list` lists both servers.
//! The CLI is `$NATS_CLI`, else `target/peers/bin/nats`
//! (`shared/peers/install-reference.sh`), else `nats` on `PATH`; without it
//! the test says it skipped.

use std::path::PathBuf;
use std::process::Command;

use crate::common::TestServer;

fn natscli() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_CLI") {
        return Some(PathBuf::from(p));
    }
    let local = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers/bin/nats");
    if local.exists() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("nats"))
            .find(|p| p.is_file())
    })
}

fn run(cli: &PathBuf, url: &str, args: &[&str]) -> serde_json::Value {
    serde_json::from_str(&run_text(cli, url, args)).expect("nats printed JSON")
}

fn run_text(cli: &PathBuf, url: &str, args: &[&str]) -> String {
    let out = Command::new(cli)
        .args(["-s", url, "--timeout", "5s"])
        .args(args)
        .output()
        .expect("run nats");
    assert!(
        out.status.success(),
        "nats {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn nats_server_list_and_report_accounts() {
    let Some(cli) = natscli() else {
        eprintln!("nats CLI not installed: test skipped");
        return;
    };
    let conf = r#"
server_name: natrium-cli
accounts {
  SYS { users = [ {user: sys, password: sys} ] }
  A { users = [ {user: a, password: a} ] }
}
system_account: SYS
"#;
    let (opts, _) = natrium::config::parse_str(conf, &std::env::temp_dir()).expect("config");
    let srv = TestServer::with(move |o| *o = opts);
    let mut a = srv.raw();
    a.send(b"CONNECT {\"user\":\"a\",\"pass\":\"a\",\"verbose\":false}\r\nSUB orders.> 1\r\n");
    assert_eq!(a.flush(), "");
    let url = format!("nats://sys:sys@{}", srv.addr);

    let list = run(&cli, &url, &["server", "list", "--json"]);
    let servers = list.as_array().expect("a list of servers");
    assert_eq!(servers.len(), 1);
    assert_eq!(servers[0]["server"]["name"], "natrium-cli");
    assert_eq!(servers[0]["server"]["id"], srv.state.server_id.as_str());
    // The raw client and the CLI's own connection.
    assert_eq!(servers[0]["statsz"]["connections"], 2);

    let report = run(&cli, &url, &["server", "report", "accounts", "--json"]);
    let accounts = report.as_array().expect("a list of accounts");
    let a_row = accounts
        .iter()
        .find(|r| r["account"] == "A")
        .expect("account A reported");
    assert_eq!(a_row["connections"], 1);
    let info = &a_row["connection_info"][0];
    assert_eq!(info["account"], "A");
    assert_eq!(info["subscriptions"], 1);

    // A user of account A asks who it is (`$SYS.REQ.USER.INFO`, a system
    // import every account has).
    let text = run_text(
        &cli,
        &format!("nats://a:a@{}", srv.addr),
        &["account", "info"],
    );
    let line = |label: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .map(|l| l.split_once(':').map_or("", |(_, v)| v).trim().to_string())
            .unwrap_or_default()
    };
    assert_eq!(line("User:"), "a", "{text}");
    assert_eq!(line("Account:"), "A", "{text}");
}

/// A nats-server leaf whose system account is bound to natrium's over a
/// leaf link: `nats server list` asked of natrium lists both servers (the
/// ping crosses the link and the leaf's answer comes back), as in a
/// nats-server system.
#[test]
fn nats_server_list_sees_a_nats_server_leaf_through_the_system_account() {
    let Some(cli) = natscli() else {
        eprintln!("nats CLI not installed: test skipped");
        return;
    };
    let lp = crate::leaf_support::free_port();
    let conf = format!(
        r#"
server_name: natrium-hub
accounts {{
  SYS {{ users = [ {{user: sys, password: sys}} ] }}
}}
system_account: SYS
leafnodes {{
  listen: "127.0.0.1:{lp}"
  authorization {{ users = [ {{user: leafsys, password: x, account: SYS}} ] }}
}}
"#
    );
    let (opts, _) = natrium::config::parse_str(&conf, &std::env::temp_dir()).expect("config");
    let srv = TestServer::with(move |o| *o = opts);
    let leaf = crate::leaf_support::Reference::start(
        crate::leaf_support::free_port(),
        &format!(
            r#"
server_name: go-leaf
accounts {{ SYS {{ users = [ {{user: sys, password: sys}} ] }} }}
system_account: SYS
leafnodes {{ remotes = [ {{ url: "nats-leaf://leafsys:x@127.0.0.1:{lp}", account: SYS }} ] }}
"#
        ),
    );
    let Some(_leaf) = leaf else {
        eprintln!("nats-server not installed: test skipped");
        return;
    };
    crate::leaf_support::wait_links(&srv, 1);
    let url = format!("nats://sys:sys@{}", srv.addr);
    // The leaf's system subscriptions cross once its link is up.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let list = run(&cli, &url, &["server", "list", "2", "--json"]);
        let mut names: Vec<String> = list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["server"]["name"].as_str().map(String::from))
            .collect();
        names.sort();
        if names == ["go-leaf", "natrium-hub"] {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "servers listed: {names:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
