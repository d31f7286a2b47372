//! natrium's one answer to lock poisoning: a `std` mutex whose `lock` always
//! yields the data.
//!
//! A panic in one connection's task must not take others down (the server
//! closes that connection and goes on). With `std`'s poisoning every later
//! `lock().unwrap()` would panic too, spreading one fault to every connection
//! that touches the same queue or registry. What these locks guard stays
//! consistent at every await-free step (byte queues, maps, counters), so
//! recovering the guard is safe. Must not be used for state that a panic
//! could leave half-updated in a way readers cannot tolerate.

use std::sync::PoisonError;

pub use std::sync::MutexGuard;

/// A mutex that ignores poisoning (see the module doc for why that is sound here).
#[derive(Debug, Default)]
pub struct Mutex<T>(std::sync::Mutex<T>);

impl<T> Mutex<T> {
    pub const fn new(value: T) -> Self {
        Mutex(std::sync::Mutex::new(value))
    }

    /// Locks, recovering the data if another holder panicked.
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_locked_does_not_spread() {
        let m = std::sync::Arc::new(Mutex::new(1));
        let m2 = m.clone();
        let _ = std::thread::spawn(move || {
            let _g = m2.lock();
            panic!("holder panics");
        })
        .join();
        *m.lock() += 1;
        assert_eq!(*m.lock(), 2);
    }
}
