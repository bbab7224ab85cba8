//! The broker's stop signal as its tasks see it: a `watch` that turns true
//! once [`crate::Broker::shutdown`] is called. Every long-running task
//! (connections, long-polling fetches, the quorum session, replication)
//! selects on [`stopped`] beside its work, so it lives below all of them.

use tokio::sync::watch;

/// Completes once the broker is stopping (or its handle is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
