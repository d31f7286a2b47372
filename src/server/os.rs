//! What the server asks of the operating system beyond sockets: a descriptor
//! limit as high as allowed (Go, and so nats-server, raise it at start), and
//! giving freed heap back after a wave of connections closes (glibc keeps it
//! otherwise, so RSS would stay at the peak).
//!
//! Owns only these process-wide calls; must not know about connections
//! beyond the counts it is handed.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crate::state::ServerState;

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as the Go runtime does
/// for nats-server: each connection costs a descriptor, and the default soft
/// limit (often 1024) is far below what a server is expected to hold.
pub fn raise_fd_limit() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::debug!("could not raise the descriptor limit");
            }
        }
    }
}

/// The soft descriptor limit in force, if it can be read.
pub fn fd_limit() -> Option<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: as above.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0;
    ok.then_some(lim.rlim_cur)
}

/// Connections that must have closed since the last trim before the next one:
/// a trim walks the whole heap, so it follows waves, not single closes.
const TRIM_AFTER_CLOSES: u64 = 256;
const TRIM_CHECK: Duration = Duration::from_secs(2);

/// Every `TRIM_CHECK`, once `TRIM_AFTER_CLOSES` connections have closed since
/// the last trim, returns free heap pages to the OS (`malloc_trim`, on the
/// blocking pool). Off the delivery path entirely; a no-op without glibc.
pub(super) fn spawn_memory_return(state: Arc<ServerState>) {
    if !cfg!(all(target_os = "linux", target_env = "gnu")) {
        return;
    }
    tokio::spawn(async move {
        let mut last_closed = 0u64;
        let mut tick = tokio::time::interval(TRIM_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if state.is_shutting_down() {
                return;
            }
            let total = state.total_connections.load(Ordering::Relaxed);
            let closed = total.saturating_sub(state.num_connections() as u64);
            if closed.saturating_sub(last_closed) < TRIM_AFTER_CLOSES {
                continue;
            }
            last_closed = closed;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    });
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim has no preconditions; it only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}
