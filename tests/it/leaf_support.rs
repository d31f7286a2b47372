//! Helpers for the leaf-node tests: the reference nats-server process (hub or
//! leaf, with its config file), natrium leaves, and waits on interest and
//! links. The reference binary is `$NATS_SERVER`, else
//! `target/peers/bin/nats-server` (the version natrium follows), else
//! `nats-server` on `PATH`, else `/usr/sbin/nats-server` (`.ci/run` installs
//! Debian's); tests that need it print a note and pass without one.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt;

use crate::common::TestServer;
use natrium::options::{LeafOptions, LeafRemote};

pub(crate) fn reference_bin() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    let peers = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/peers/bin/nats-server");
    if peers.is_file() {
        return Some(peers);
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("nats-server"))
            .find(|p| p.is_file())
    });
    on_path.or_else(|| {
        let p = PathBuf::from("/usr/sbin/nats-server");
        p.is_file().then_some(p)
    })
}

/// The reference's version (`nats-server: v2.15.3` → `(2, 15, 3)`), for
/// features older releases lack.
pub(crate) fn reference_version() -> Option<(u32, u32, u32)> {
    let out = Command::new(reference_bin()?)
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let v = text.trim().rsplit('v').next()?;
    let mut parts = v
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse().ok());
    Some((parts.next()??, parts.next()??, parts.next()??))
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// A nats-server process with its own config file; killed on drop.
pub(crate) struct Reference {
    child: Child,
    pub(crate) port: u16,
    _dir: tempdir::Dir,
}

pub(crate) mod tempdir {
    use std::path::PathBuf;
    pub struct Dir(pub PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let n = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let p = std::env::temp_dir().join(format!("natrium-leaf-{}-{n}", std::process::id()));
            std::fs::create_dir_all(&p).expect("temp dir");
            Dir(p)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Reference {
    /// Starts nats-server on `port` with `extra` config; `None` without a binary.
    pub(crate) fn start(port: u16, extra: &str) -> Option<Reference> {
        let bin = reference_bin()?;
        let dir = tempdir::Dir::new();
        let conf = dir.0.join("server.conf");
        std::fs::write(&conf, format!("host: 127.0.0.1\nport: {port}\n{extra}\n")).ok()?;
        let child = Command::new(bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Reference {
            child,
            port,
            _dir: dir,
        })
    }

    /// A hub: client port plus a leaf port.
    pub(crate) fn hub(leaf_port: u16, extra: &str) -> Option<Reference> {
        let r = Self::start(
            free_port(),
            &format!("leafnodes {{\n port: {leaf_port}\n {extra}\n}}"),
        );
        if r.is_none() {
            eprintln!("nats-server not installed: leaf node test skipped");
        }
        r
    }

    /// A nats-server leaf of a natrium hub listening for leaves on `lp`,
    /// signing in as `userinfo` (`user:pass`).
    pub(crate) fn leaf_of(lp: u16, userinfo: &str) -> Option<Reference> {
        let r = Self::start(
            free_port(),
            &format!(
                "leafnodes {{ remotes = [ {{ url: \"nats-leaf://{userinfo}@127.0.0.1:{lp}\" }} ] }}"
            ),
        );
        if r.is_none() {
            eprintln!("nats-server not installed: leaf node test skipped");
        }
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }
}

impl Drop for Reference {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn leaf_of(urls: &[String], f: impl FnOnce(&mut LeafRemote)) -> TestServer {
    let mut remote = LeafRemote {
        urls: urls.to_vec(),
        ..LeafRemote::default()
    };
    f(&mut remote);
    TestServer::with(move |o| {
        o.leafnodes = Some(LeafOptions {
            remotes: vec![remote],
            reconnect: Duration::from_millis(250),
            ..LeafOptions::default()
        })
    })
}

pub(crate) fn wait_links(s: &TestServer, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while s.state.leafs.count() != n {
        assert!(Instant::now() < deadline, "{n} leaf links not up in 10 s");
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub(crate) async fn connect(url: &str) -> async_nats::Client {
    async_nats::connect(url).await.expect("connect")
}

/// Publishes `probe` until `sub` gets it: interest has crossed the link.
pub(crate) async fn until_crossed(
    nc: &async_nats::Client,
    sub: &mut async_nats::Subscriber,
    probe: &str,
) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        nc.publish(probe.to_string(), Bytes::from_static(b"probe"))
            .await
            .expect("publish");
        nc.flush().await.expect("flush");
        match tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
            Ok(Some(m)) if m.subject.as_str() == probe => {
                // Drain other probes already in flight.
                while let Ok(Some(_)) =
                    tokio::time::timeout(Duration::from_millis(100), sub.next()).await
                {
                }
                return;
            }
            _ => assert!(
                Instant::now() < deadline,
                "interest in {probe} did not cross"
            ),
        }
    }
}

pub(crate) async fn recv(sub: &mut async_nats::Subscriber) -> async_nats::Message {
    tokio::time::timeout(Duration::from_secs(5), sub.next())
        .await
        .expect("message in time")
        .expect("subscription open")
}

/// Counts what `sub` gets until it has been quiet for 300 ms.
pub(crate) async fn count(sub: &mut async_nats::Subscriber) -> usize {
    let mut n = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(300), sub.next()).await {
        n += 1;
    }
    n
}
