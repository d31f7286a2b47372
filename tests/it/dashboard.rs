//! The live dashboard end to end in headless Chromium: the page loads against
//! a server under load, its numbers and charts update from poll to poll, and
//! a client named `<script>…` is shown as text, never run. Skips (with a
//! note) where Chromium is not installed; `.ci/run` installs it.

use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::common::TestServer;
use crate::monitor_util::Monitor;

const EVIL: &str = "<script>window.__pwned=1</script><img src=x onerror=alert(1)>";

fn chromium() -> Option<&'static str> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// The DOM after the page ran for `budget_ms` of (virtual) time.
fn dump_dom(browser: &str, url: &str, budget_ms: u32) -> String {
    let profile = std::env::temp_dir().join(format!("natrium-chromium-{}", std::process::id()));
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--virtual-time-budget={budget_ms}"))
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("run chromium");
    let _ = std::fs::remove_dir_all(&profile);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn attr(dom: &str, name: &str) -> u64 {
    dom.split(&format!("{name}=\""))
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn dashboard_updates_live_and_escapes_client_names() {
    let Some(browser) = chromium() else {
        eprintln!("chromium not installed: dashboard browser test skipped");
        return;
    };
    let server = TestServer::start();
    let mon = Monitor::start(server.state.clone());

    let mut evil = server.raw();
    let connect = serde_json::json!({ "verbose": false, "name": EVIL });
    evil.send(format!("CONNECT {connect}\r\nSUB dash.load 1\r\n").as_bytes());
    assert_eq!(evil.flush(), "");

    // Load for the whole test: a publisher the page must see.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, addr) = (stop.clone(), server.addr);
        std::thread::spawn(move || {
            let mut p = std::net::TcpStream::connect(addr).expect("connect");
            let _ = p.write_all(b"CONNECT {\"verbose\":false,\"name\":\"loader\"}\r\n");
            let batch = b"PUB dash.load 5\r\nhello\r\n".repeat(200);
            while !stop.load(Ordering::Relaxed) {
                if p.write_all(&batch).is_err() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    // The subscriber must keep reading, or it becomes a slow consumer.
    let drain = std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        while std::io::Read::read(&mut evil.sock, &mut buf).is_ok_and(|n| n > 0) {}
    });
    std::thread::sleep(Duration::from_millis(2500));

    let url = format!("http://{}/", mon.addr);
    let first = dump_dom(browser, &url, 3000);
    std::thread::sleep(Duration::from_millis(2000));
    let second = dump_dom(browser, &url, 3000);
    stop.store(true, Ordering::Relaxed);
    let _ = load.join();

    for dom in [&first, &second] {
        assert!(
            dom.contains("id=\"chart-msgs\""),
            "page did not load: {dom:.300}"
        );
        assert!(attr(dom, "data-polls") >= 2, "page did not poll repeatedly");
        assert!(attr(dom, "data-in-msgs") > 0, "no message rate shown");
        // The name is there, as text; no element came out of it.
        assert!(
            dom.contains("&lt;script&gt;window.__pwned=1&lt;/script&gt;"),
            "name not shown as text"
        );
        assert!(
            !dom.contains("<script>window.__pwned"),
            "client name became markup"
        );
        assert!(!dom.contains("<img src=\"x\""), "client name became markup");
        assert!(dom.contains("loader"), "top connections missing");
        assert!(dom.contains("dash.load"), "top subjects missing");
    }
    assert!(
        attr(&second, "data-points") > attr(&first, "data-points"),
        "charts did not gain points between loads"
    );
    drop(server);
    let _ = drain.join();
}
