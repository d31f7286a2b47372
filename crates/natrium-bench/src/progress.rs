//! A hand-written progress bar on stderr, shown once a run has lasted a second.
//!
//! Owns the shared done-counter and the drawing task; it must not affect what
//! is measured (workers add to one relaxed atomic per batch).

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Shared between workers (who add) and the drawing task (who reads).
#[derive(Debug, Default)]
pub struct Progress {
    done: AtomicU64,
    /// Expected total (0: unknown).
    total: u64,
    duration: Option<Duration>,
    start: Mutex<Option<Instant>>,
    finished: AtomicBool,
}

impl Progress {
    pub fn new(total: u64, duration: Option<Duration>) -> Progress {
        Progress {
            total,
            duration,
            ..Default::default()
        }
    }

    /// Marks the start of measurement (after connections are set up).
    pub fn start(&self, at: Instant) {
        if let Ok(mut s) = self.start.lock() {
            *s = Some(at);
        }
        self.done.store(0, Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.done.fetch_add(n, Relaxed);
    }

    pub fn finish(&self) {
        self.finished.store(true, Relaxed);
    }

    /// Draws every 200 ms on stderr until `finish`; only after the first second.
    pub fn spawn_drawer(self: &Arc<Self>, label: String) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut drawn = false;
            while !me.finished.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let start = me.start.lock().ok().and_then(|s| *s);
                let Some(start) = start else { continue };
                let el = start.elapsed();
                if el < Duration::from_secs(1) || me.finished.load(Relaxed) {
                    continue;
                }
                eprint!("\r{}", me.line(&label, el));
                drawn = true;
            }
            if drawn {
                eprint!("\r{:80}\r", "");
                let _ = std::io::stderr().flush();
            }
        })
    }

    fn line(&self, label: &str, el: Duration) -> String {
        let done = self.done.load(Relaxed);
        let frac = match (self.duration, self.total) {
            (Some(d), _) => el.as_secs_f64() / d.as_secs_f64().max(1e-9),
            (None, t) if t > 0 => done as f64 / t as f64,
            _ => 0.0,
        }
        .clamp(0.0, 1.0);
        const W: usize = 30;
        let filled = (frac * W as f64) as usize;
        format!(
            "{label} [{}{}] {:3.0}% {:>12} msgs {:>11.0}/s {:6.1}s",
            "#".repeat(filled),
            " ".repeat(W - filled),
            frac * 100.0,
            done,
            done as f64 / el.as_secs_f64().max(1e-9),
            el.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_shows_fraction() {
        let p = Progress::new(100, None);
        p.add(50);
        let l = p.line("pub", Duration::from_secs(2));
        assert!(l.contains(" 50%"), "{l}");
        assert!(l.contains("###############               "), "{l}");
    }
}
