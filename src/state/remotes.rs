//! The configured leaf remotes that have a dial loop running, so a reload
//! can stop the removed ones (closing their link) and start the added ones,
//! as nats-server's leafnode reload does.
//!
//! Owns only the registry and each remote's stop signal; the dial loop
//! (`leaf::solicit`) checks the signal and reports its live link here. Must
//! not dial, read or write.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use crate::conn::{CloseReason, ConnShared};
use crate::options::LeafRemote;
use crate::sync::Mutex;

/// One remote's running dial loop.
pub struct RemoteRun {
    pub remote: LeafRemote,
    stopped: AtomicBool,
    /// Wakes the dial loop out of its reconnect wait when stopped.
    pub wake: Notify,
    /// The link up now, closed when the remote is removed.
    link: Mutex<Option<Arc<ConnShared>>>,
}

impl RemoteRun {
    /// A run for `remote`, not stopped, with no link yet.
    pub fn new(remote: LeafRemote) -> Self {
        RemoteRun {
            remote,
            stopped: AtomicBool::new(false),
            wake: Notify::new(),
            link: Mutex::new(None),
        }
    }

    /// Removed from the configuration: the loop dials no more.
    pub fn is_stopped(&self) -> bool {
        self.stopped.load(Ordering::Acquire)
    }

    /// Stops the loop and closes its link (if one is up).
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Release);
        self.wake.notify_one();
        if let Some(conn) = self.link.lock().take() {
            conn.out.close_with(CloseReason::ClientClosed, None);
        }
    }

    /// The loop's link came up (`Some`) or ended (`None`). A link that
    /// comes up after the remote was removed is closed at once.
    pub fn set_link(&self, conn: Option<Arc<ConnShared>>) {
        let mut slot = self.link.lock();
        *slot = conn;
        if self.is_stopped() {
            if let Some(conn) = slot.take() {
                conn.out.close_with(CloseReason::ClientClosed, None);
            }
        }
    }
}

/// Every remote with a running dial loop.
#[derive(Default)]
pub struct Remotes {
    runs: Mutex<Vec<Arc<RemoteRun>>>,
}

impl Remotes {
    /// Registers a run whose dial loop is being started.
    pub fn add(&self, run: Arc<RemoteRun>) {
        self.runs.lock().push(run);
    }

    /// Applies a new remote list: stops the runs whose remote is gone (or
    /// changed) and returns the remotes that have no run yet.
    pub fn reconcile(&self, wanted: &[LeafRemote]) -> Vec<LeafRemote> {
        let mut runs = self.runs.lock();
        runs.retain(|r| {
            let keep = wanted.contains(&r.remote);
            if !keep {
                tracing::info!(
                    "Reloaded: LeafNode Remote {} removed",
                    r.remote.urls.join(", ")
                );
                r.stop();
            }
            keep
        });
        wanted
            .iter()
            .filter(|w| !runs.iter().any(|r| r.remote == **w))
            .cloned()
            .collect()
    }

    /// Remotes being dialled now.
    pub fn len(&self) -> usize {
        self.runs.lock().len()
    }

    /// No remote is being dialled.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remote(url: &str) -> LeafRemote {
        LeafRemote {
            urls: vec![url.to_string()],
            ..LeafRemote::default()
        }
    }

    #[test]
    fn reconcile_stops_removed_and_returns_added() {
        let r = Remotes::default();
        let a = Arc::new(RemoteRun::new(remote("nats-leaf://a:7422")));
        let b = Arc::new(RemoteRun::new(remote("nats-leaf://b:7422")));
        r.add(a.clone());
        r.add(b.clone());
        let added = r.reconcile(&[remote("nats-leaf://b:7422"), remote("nats-leaf://c:7422")]);
        assert_eq!(added, [remote("nats-leaf://c:7422")]);
        assert!(a.is_stopped());
        assert!(!b.is_stopped());
        assert_eq!(r.len(), 1);
    }
}
