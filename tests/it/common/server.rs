//! The in-process server harness alone (no client crates), so other crates'
//! tests (natrium-bench) can include it with `#[path]`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use natrium::options::Options;
use natrium::server::{ControlHandle, Server, ServerState};

/// A server running on its own thread; stopped on drop.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<ServerState>,
    pub control: ControlHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestServer {
    pub fn start() -> TestServer {
        Self::with(|_| {})
    }

    /// Starts with defaults changed by `f` (host/port are forced to 127.0.0.1:0).
    pub fn with(f: impl FnOnce(&mut Options)) -> TestServer {
        let mut opts = Options::default();
        f(&mut opts);
        opts.host = "127.0.0.1".into();
        opts.port = 0;
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let server = Server::bind(opts).await.expect("bind");
                tx.send((server.local_addr(), server.state.clone(), server.control()))
                    .expect("send");
                server.run_with_monitor(natrium::monitor::serve).await;
            });
        });
        let (addr, state, control) = rx.recv().expect("server started");
        TestServer {
            addr,
            state,
            control,
            thread: Some(thread),
        }
    }

    /// Waits until some subscription matches `subject` (another connection's
    /// SUB has been applied): async-nats `flush` alone does not guarantee it.
    pub fn wait_for_interest(&self, subject: &[u8]) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while self
            .state
            .accounts
            .global()
            .sublist
            .match_subject(subject)
            .is_empty()
        {
            assert!(
                Instant::now() < deadline,
                "no interest in {subject:?} after 5 s"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.addr)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.control.stop();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
