//! The stop signal of the supervisor and of a pipeline's tasks.
//!
//! Threads look at it between steps ([`StopSignal::is_set`]); a thread
//! that waits — for appends, a retry's backoff, an idle connector's next
//! poll — waits on [`StopSignal::stopped`] beside what it waits for, so an
//! idle pipeline does not wake up just to learn it may go on sleeping, and
//! still stops at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// The work at hand was given up because the signal was set.
#[derive(Debug)]
pub(crate) struct Stopped;

#[derive(Debug, Default)]
pub(crate) struct StopSignal {
    set: AtomicBool,
    changed: Notify,
}

impl StopSignal {
    pub fn is_set(&self) -> bool {
        self.set.load(Ordering::Acquire)
    }

    /// Asks every holder to stop, waking those that wait.
    pub fn set(&self) {
        self.set.store(true, Ordering::Release);
        self.changed.notify_waiters();
    }

    /// Completes once the signal is set.
    pub async fn stopped(&self) {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before the flag is read: a `set` in between still
            // wakes this waiter.
            notified.as_mut().enable();
            if self.is_set() {
                return;
            }
            notified.await;
        }
    }

    /// Blocks the calling thread (not one of the runtime's) until
    /// `deadline` or until the signal is set. True when stopped.
    pub fn sleep_until(&self, handle: &tokio::runtime::Handle, deadline: Instant) -> bool {
        if self.is_set() {
            return true;
        }
        handle.block_on(async {
            tokio::select! {
                () = self.stopped() => true,
                () = tokio::time::sleep_until(deadline.into()) => false,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn a_sleeper_wakes_when_stopped_not_at_its_deadline() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let signal = Arc::new(StopSignal::default());
        let sleeper = {
            let (signal, handle) = (Arc::clone(&signal), runtime.handle().clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let stopped = signal.sleep_until(&handle, started + Duration::from_secs(60));
                (stopped, started.elapsed())
            })
        };
        std::thread::sleep(Duration::from_millis(100));
        signal.set();
        let (stopped, slept) = sleeper.join().unwrap();
        assert!(stopped);
        assert!(slept < Duration::from_secs(30), "slept {slept:?}");
        // Once set, it stays set: a later sleep returns at once.
        assert!(signal.sleep_until(runtime.handle(), Instant::now() + Duration::from_secs(60)));
    }

    #[test]
    fn a_sleeper_not_stopped_wakes_at_its_deadline() {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let signal = StopSignal::default();
        let started = Instant::now();
        assert!(!signal.sleep_until(runtime.handle(), started + Duration::from_millis(50)));
        assert!(started.elapsed() >= Duration::from_millis(50));
    }
}
