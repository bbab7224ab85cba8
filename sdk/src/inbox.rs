//! A bounded queue between the threads of a push-based source (a syslog
//! listener, an HTTP endpoint) and its `poll`, which the host calls.
//!
//! Listeners that can wait (a TCP reader, an HTTP handler) wait for room, so
//! a slow pipeline slows the senders down instead of losing records; those
//! that cannot (UDP) drop and count.
//!
//! ```
//! use fjord_sdk::inbox::Inbox;
//! let inbox = Inbox::new(2);
//! assert!(inbox.try_push_all(vec![1, 2]).is_ok());
//! assert_eq!(inbox.try_push_all(vec![3]), Err(vec![3]));
//! assert_eq!(inbox.take(10), [1, 2]);
//! ```

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

/// A bounded multi-producer queue; clones share it.
#[derive(Debug)]
pub struct Inbox<T> {
    shared: Arc<(Mutex<VecDeque<T>>, Condvar)>,
    capacity: usize,
}

impl<T> Clone for Inbox<T> {
    fn clone(&self) -> Self {
        Inbox {
            shared: Arc::clone(&self.shared),
            capacity: self.capacity,
        }
    }
}

impl<T> Inbox<T> {
    /// A queue of at most `capacity` items (at least 1).
    pub fn new(capacity: usize) -> Self {
        Inbox {
            shared: Arc::new((Mutex::new(VecDeque::new()), Condvar::new())),
            capacity: capacity.max(1),
        }
    }

    /// Queues all of `items`, or none of them when they do not fit (they
    /// are handed back).
    pub fn try_push_all(&self, items: Vec<T>) -> Result<(), Vec<T>> {
        let mut q = self.shared.0.lock();
        if q.len() + items.len() > self.capacity {
            return Err(items);
        }
        q.extend(items);
        Ok(())
    }

    /// Queues `item`, waiting for room; `false` (and the item dropped) when
    /// `stop` is set while waiting.
    pub fn push_wait(&self, item: T, stop: &AtomicBool) -> bool {
        let mut q = self.shared.0.lock();
        while q.len() >= self.capacity {
            if stop.load(Ordering::Relaxed) {
                return false;
            }
            self.shared.1.wait_for(&mut q, Duration::from_millis(100));
        }
        q.push_back(item);
        true
    }

    /// Takes up to `max` items, oldest first.
    pub fn take(&self, max: usize) -> Vec<T> {
        let mut q = self.shared.0.lock();
        let n = max.min(q.len());
        let taken: Vec<T> = q.drain(..n).collect();
        drop(q);
        if n > 0 {
            self.shared.1.notify_all();
        }
        taken
    }

    pub fn len(&self) -> usize {
        self.shared.0.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiting_push_goes_in_once_there_is_room() {
        let inbox = Inbox::new(1);
        let stop = Arc::new(AtomicBool::new(false));
        assert!(inbox.push_wait(1, &stop));
        let (i2, s2) = (inbox.clone(), Arc::clone(&stop));
        let pusher = std::thread::spawn(move || i2.push_wait(2, &s2));
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(inbox.take(5), [1]);
        assert!(pusher.join().unwrap());
        assert_eq!(inbox.take(5), [2]);
    }

    #[test]
    fn a_waiting_push_gives_up_when_stopped() {
        let inbox = Inbox::new(1);
        let stop = Arc::new(AtomicBool::new(false));
        assert!(inbox.push_wait(1, &stop));
        let (i2, s2) = (inbox.clone(), Arc::clone(&stop));
        let pusher = std::thread::spawn(move || i2.push_wait(2, &s2));
        stop.store(true, Ordering::Relaxed);
        assert!(!pusher.join().unwrap());
        assert_eq!(inbox.len(), 1);
    }
}
