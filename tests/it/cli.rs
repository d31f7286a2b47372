//! The `natrium` binary as operators and client test harnesses use it: flags,
//! log lines, pid/log files, config test mode, graceful shutdown on signals.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_natrium");

/// Starts the binary on a random port; returns the child and the port read from
/// the "Listening for client connections" log line (as harnesses do).
fn start(extra: &[&str]) -> (Child, u16, Vec<String>) {
    let mut child = Command::new(BIN)
        .args(["-a", "127.0.0.1", "-p", "-1"])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn natrium");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = Vec::new();
    let mut port = 0;
    for line in BufReader::new(stderr).lines() {
        let line = line.expect("log line");
        if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
            port = rest
                .rsplit(':')
                .next()
                .and_then(|p| p.trim().parse().ok())
                .expect("port");
        }
        let ready = line.contains("Server is ready");
        lines.push(line);
        if ready {
            break;
        }
    }
    assert!(port > 0, "no listening line in {lines:?}");
    (child, port, lines)
}

fn term(child: &mut Child, signal: &str) -> std::process::ExitStatus {
    let ok = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(ok.success());
    for _ in 0..100 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("natrium did not exit after {signal}");
}

#[test]
fn log_lines_match_nats_server_style() {
    let (mut child, port, lines) = start(&[]);
    let listening = lines
        .iter()
        .find(|l| l.contains("Listening for client connections on 127.0.0.1:"))
        .expect("listening line");
    // [pid] 2006/01/02 15:04:05.000000 [INF] text
    let pid = format!("[{}] ", child.id());
    assert!(listening.starts_with(&pid), "{listening}");
    let rest = &listening[pid.len()..];
    assert_eq!(&rest[4..5], "/");
    assert_eq!(&rest[7..8], "/");
    assert!(rest.contains(" [INF] "), "{listening}");
    assert!(lines.iter().any(|l| l.ends_with("[INF] Server is ready")));
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut buf = [0u8; 5];
    sock.read_exact(&mut buf).expect("info");
    assert_eq!(&buf, b"INFO ");
    assert!(term(&mut child, "-TERM").success());
}

#[test]
fn sigint_flushes_pending_messages_and_exits_zero() {
    let (mut child, port, _) = start(&[]);
    let mut sub = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    sub.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    sub.write_all(b"CONNECT {}\r\nSUB s 1\r\nPING\r\n").unwrap();
    let mut reader = BufReader::new(sub.try_clone().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line == "PONG\r\n" {
            break;
        }
    }
    let mut publisher = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut batch = Vec::new();
    for _ in 0..1000 {
        batch.extend_from_slice(b"PUB s 2\r\nhi\r\n");
    }
    batch.extend_from_slice(b"PING\r\n");
    publisher.write_all(&batch).unwrap();
    // Wait for the publisher's PONG: everything was queued for the subscriber.
    let mut pr = BufReader::new(publisher);
    loop {
        line.clear();
        pr.read_line(&mut line).unwrap();
        if line == "PONG\r\n" {
            break;
        }
    }
    assert!(term(&mut child, "-INT").success());
    let mut got = 0;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.starts_with("MSG s 1 2") => got += 1,
            Ok(_) => {}
        }
    }
    assert_eq!(got, 1000, "messages queued before shutdown were flushed");
}

#[test]
fn version_flag() {
    let out = Command::new(BIN).arg("-v").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("natrium: v"));
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
}

#[test]
fn go_style_flags_are_accepted() {
    let dir = std::env::temp_dir().join(format!("natrium-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pid = dir.join("n.pid");
    let log = dir.join("n.log");
    let mut child = Command::new(BIN)
        .args([
            "-addr",
            "127.0.0.1",
            "-port",
            "-1",
            "-DV",
            "-T=false",
            "--store_dir",
            "/tmp/x",
        ])
        .arg("-P")
        .arg(&pid)
        .arg("-l")
        .arg(&log)
        .spawn()
        .unwrap();
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("Server is ready") {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text.contains("Server is ready"), "log file: {text}");
    assert!(text.contains("Listening for client connections on 127.0.0.1:"));
    // -T=false: no timestamp between pid and level.
    assert!(
        text.lines()
            .all(|l| l.starts_with(&format!("[{}] [", child.id()))),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&pid).unwrap().trim(),
        child.id().to_string()
    );
    assert!(term(&mut child, "-TERM").success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unsupported_flags_are_rejected_not_ignored() {
    let out = Command::new(BIN)
        .args(["--cluster", "nats://x:1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let out = Command::new(BIN).args(["-p", "70000"]).output().unwrap();
    assert!(!out.status.success());
}

#[test]
fn config_test_mode_exit_codes() {
    let dir = std::env::temp_dir().join(format!("natrium-conf-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.conf");
    std::fs::write(&good, "listen: 127.0.0.1:4333\nmax_payload: 2MB\n").unwrap();
    let bad = dir.join("bad.conf");
    std::fs::write(&bad, "port: 4222\nauthorization {\n  user: a\n").unwrap();
    let out = Command::new(BIN)
        .arg("-t")
        .arg("-c")
        .arg(&good)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new(BIN)
        .arg("-t")
        .arg("-c")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:"),
        "error names file and position: {err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn config_file_applies_and_flags_override() {
    let dir = std::env::temp_dir().join(format!("natrium-conf2-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let conf = dir.join("n.conf");
    std::fs::write(&conf, "server_name: from_file\nmax_payload: 2KB\nport: 1\n").unwrap();
    let (mut child, port, _) = start(&["-c", conf.to_str().unwrap()]);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    let mut info = String::new();
    BufReader::new(&mut sock).read_line(&mut info).unwrap();
    assert!(info.contains("\"server_name\":\"from_file\""), "{info}");
    assert!(info.contains("\"max_payload\":2048"), "{info}");
    assert!(term(&mut child, "-TERM").success());
    let _ = std::fs::remove_dir_all(&dir);
}

fn wait_for_log(path: &std::path::Path, needle: &str) -> String {
    for _ in 0..200 {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(needle) {
            return text;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("{needle:?} never appeared in {}", path.display());
}

/// A natrium process on a free port with config file `conf_text` and a log
/// file, both in a fresh temp directory (removed on drop), once it is ready.
pub(crate) struct ConfiguredServer {
    child: Child,
    dir: std::path::PathBuf,
    conf: std::path::PathBuf,
    log: std::path::PathBuf,
    pub(crate) port: u16,
}

impl ConfiguredServer {
    pub(crate) fn start(name: &str, conf_text: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("natrium-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let conf = dir.join("n.conf");
        let log = dir.join("n.log");
        std::fs::write(&conf, conf_text).unwrap();
        let child = Command::new(BIN)
            .args(["-a", "127.0.0.1", "-p", "-1", "-c"])
            .arg(&conf)
            .arg("-l")
            .arg(&log)
            .spawn()
            .unwrap();
        let text = wait_for_log(&log, "Server is ready");
        let port = text
            .split("Listening for client connections on 127.0.0.1:")
            .nth(1)
            .and_then(|r| r.lines().next())
            .and_then(|p| p.trim().parse().ok())
            .expect("port");
        ConfiguredServer {
            child,
            dir,
            conf,
            log,
            port,
        }
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ConfiguredServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[test]
fn signal_reload_applies_config_and_usr1_reopens_log() {
    let mut srv = ConfiguredServer::start("reload", "max_payload: 1KB\n");
    let (conf, log, port) = (srv.conf.clone(), srv.log.clone(), srv.port);
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut reader = BufReader::new(sock.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    sock.write_all(b"CONNECT {\"verbose\":false}\r\n").unwrap();

    std::fs::write(&conf, "max_payload: 4KB\n").unwrap();
    let out = Command::new(BIN)
        .arg("--signal")
        .arg(format!("reload={}", srv.child.id()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_for_log(&log, "Reloaded server configuration");
    let mut msg = b"PUB x 2000\r\n".to_vec();
    msg.extend_from_slice(&[b'a'; 2000]);
    msg.extend_from_slice(b"\r\nPING\r\n");
    sock.write_all(&msg).unwrap();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        assert!(!line.starts_with("-ERR"), "rejected after reload: {line}");
        if line == "PONG\r\n" {
            break;
        }
    }
    // Log rotation: move the file away, USR1, the server writes a new one.
    let rotated = srv.dir.join("n.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let ok = Command::new("kill")
        .args(["-USR1", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    wait_for_log(&log, "Reopened log file");
    assert!(term(&mut srv.child, "-TERM").success());
}

#[test]
fn invalid_config_on_reload_is_rejected_and_server_keeps_running() {
    let mut srv = ConfiguredServer::start("badreload", "max_payload: 1KB\n");
    std::fs::write(&srv.conf, "max_payload: {\n").unwrap();
    let ok = Command::new("kill")
        .args(["-HUP", &srv.child.id().to_string()])
        .status()
        .unwrap();
    assert!(ok.success());
    let text = wait_for_log(&srv.log, "Failed to reload server configuration");
    assert!(text.contains("[ERR]"), "{text}");
    assert!(
        srv.child.try_wait().unwrap().is_none(),
        "server still running"
    );
    assert!(term(&mut srv.child, "-TERM").success());
}

#[test]
fn security_log_lines_match_nats_server_wording() {
    // Wording checked side by side with nats-server 2.9.10 on the same config.
    let mut srv = ConfiguredServer::start(
        "seclog",
        "authorization { users = [ {user: alice, password: secret, permissions: \
         {publish: {deny: [\"foo.secret\"]}, subscribe: {deny: [\"bar\"]}}} ] }\n",
    );
    assert!(srv
        .log_text()
        .contains("[WRN] Plaintext passwords detected, use nkeys or bcrypt"));
    let port = srv.port;
    let session = |script: &[u8]| {
        let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(sock.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        sock.write_all(script).unwrap();
        // Until PONG or the server closes.
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "PONG\r\n" {
                break;
            }
        }
    };
    session(b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"wrong\"}\r\nPING\r\n");
    session(b"SUB foo 1\r\nPING\r\n");
    session(
        b"CONNECT {\"verbose\":false,\"user\":\"alice\",\"pass\":\"secret\"}\r\n\
          PUB foo.secret 1\r\nx\r\nSUB bar q 9\r\nSUB bar 1\r\nPING\r\n",
    );
    let text = wait_for_log(&srv.log, "SID 1");
    for want in [
        "authentication error - User \"alice\"",
        "authentication error - User \"\"",
        "Publish Violation - User \"alice\", Subject \"foo.secret\"",
        "Subscription Violation - User \"alice\", Subject \"bar\", Queue: \"q\", SID 9",
        "Subscription Violation - User \"alice\", Subject \"bar\", SID 1",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
    assert!(!text.contains("wrong"), "no password in the log");
    assert!(term(&mut srv.child, "-TERM").success());
}
