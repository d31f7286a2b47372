//! Supervision of connection tasks: a connection's end, however it comes,
//! leaves nothing behind.
//!
//! Owns the last step of every connection: unregistering it and keeping its
//! closed record. If the task panics (a bug; peer input must never cause one)
//! the connection is closed, its subscriptions are removed from the matching
//! engine, it is unregistered and counted, and the panic is logged with its
//! cid, so one bad connection cannot leak or hang. Must not know how a
//! connection's kind reads or writes.

use std::any::Any;
use std::future::Future;
use std::sync::Arc;

use crate::client::Ended;
use crate::conn::{CloseReason, ConnShared, SubRef};
use crate::state::ServerState;

/// Runs `task` (a connection's whole life) on its own task and cleans up
/// after it, also when it panics.
pub(super) fn supervise<F>(state: Arc<ServerState>, conn: Arc<ConnShared>, task: F)
where
    F: Future<Output = Ended> + Send + 'static,
{
    let handle = tokio::spawn(task);
    tokio::spawn(async move {
        match handle.await {
            Ok(ended) => {
                state.unregister(&conn, ended.reason);
                drop(ended);
            }
            Err(e) if e.is_panic() => {
                let what = panic_text(e.into_panic());
                state
                    .connection_panics
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::error!("{} connection task panicked: {what}", conn.log());
                after_panic(&state, &conn);
            }
            // Cancelled: only when the runtime shuts down.
            Err(_) => after_panic(&state, &conn),
        }
    });
}

/// The task is gone without its own cleanup: close the socket (the writer
/// exits once closing), drop its interest, unregister it.
fn after_panic(state: &ServerState, conn: &Arc<ConnShared>) {
    conn.out.close_with(CloseReason::InternalError, None);
    let held: Vec<_> = {
        let subs = conn.subjects.lock();
        subs.values().cloned().collect()
    };
    for sub in &held {
        if state
            .accounts
            .of(conn)
            .sublist
            .remove(sub.subject(), sub.queue(), &SubRef(sub.clone()))
            .is_ok()
        {
            state.leafs.changed(sub, false);
        }
    }
    state.unregister(conn, CloseReason::InternalError);
    drop(held);
}

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-text panic payload".to_string()
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    use crate::client::FAULT_PANIC_SUBJECT;
    use crate::options::Options;
    use crate::server::Server;

    fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(5);
        while !f() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A panic in a connection's task (through the test-only fault hook)
    /// closes that connection, drops its interest, unregisters it with a
    /// reason, and leaves every other connection working.
    #[test]
    fn a_panicking_connection_is_closed_and_cleaned_up() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let opts = Options {
            host: "127.0.0.1".into(),
            port: 0,
            ..Options::default()
        };
        let server = rt.block_on(Server::bind(opts)).expect("bind");
        let (addr, state, control) = (server.local_addr(), server.state.clone(), server.control());
        rt.spawn(server.run());

        let connect = |script: &[u8]| {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            s.write_all(script).expect("write");
            s
        };
        let mut healthy = connect(b"CONNECT {}\r\nSUB ok 1\r\nPING\r\n");
        let mut bad = connect(b"CONNECT {}\r\nSUB a 1\r\nSUB b 2\r\nPING\r\n");
        wait_until("three subscriptions", || {
            state.accounts.client_subscriptions() == 2 + 1
        });
        let mut script = b"PUB ".to_vec();
        script.extend_from_slice(FAULT_PANIC_SUBJECT);
        script.extend_from_slice(b" 1\r\nx\r\n");
        bad.write_all(&script).expect("write");

        // The bad connection's socket ends (EOF), its interest is gone, it is
        // unregistered and recorded as closed with a reason.
        let mut sink = Vec::new();
        let _ = bad.read_to_end(&mut sink);
        wait_until("interest removed", || {
            state.accounts.client_subscriptions() == 1
        });
        wait_until("unregistered", || state.num_connections() == 1);
        let closed = state.closed_connections();
        assert_eq!(closed.len(), 1);
        assert_eq!(closed[0].reason, Some("Internal Error"));
        assert_eq!(
            state
                .connection_panics
                .load(std::sync::atomic::Ordering::Relaxed),
            1
        );

        // The other connection did not notice.
        healthy
            .write_all(b"PUB ok 2\r\nhi\r\nPING\r\n")
            .expect("write");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !String::from_utf8_lossy(&got).contains("MSG ok 1 2\r\nhi\r\n") {
            let n = healthy.read(&mut buf).expect("healthy read");
            assert!(n > 0, "healthy connection closed");
            got.extend_from_slice(&buf[..n]);
        }
        control.stop();
        rt.shutdown_timeout(Duration::from_secs(2));
    }
}
