//! The coordinator's periodic round (every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`): loads
//! the partitions of `__transaction_state` this broker has come to lead,
//! aborts the transactions open past their timeout — with the epoch
//! bumped, so the producer is fenced, as Kafka's proactive abort — and
//! completes the prepared ends nobody is completing (those a previous
//! leader left, or whose completion failed).

use std::sync::Arc;

use super::state::TxnStatus;
use super::{TXN_TOPIC, TxnCoordinator, complete, state_log};
use crate::broker_state::BrokerState;
use crate::clock::now_ms;

impl TxnCoordinator {
    /// One round.
    pub(crate) async fn tick(&self, state: &Arc<BrokerState>) {
        let Some(topic) = state.registry().get(TXN_TOPIC) else {
            return;
        };
        let count = topic.partition_count();
        let now = now_ms();
        let mut work = Vec::new();
        {
            let mut inner = self.inner.lock().await;
            let led: Vec<_> = topic
                .partitions()
                .iter()
                .filter(|p| p.is_leader())
                .cloned()
                .collect();
            for partition in &led {
                inner.ensure_loaded(partition, count);
            }
            for txn in inner.txns.values() {
                if inner.completing.contains(&txn.transactional_id) {
                    continue;
                }
                let index = state_log::partition_for(&txn.transactional_id, count);
                let Some(partition) = led.iter().find(|p| p.index() == index) else {
                    continue;
                };
                if txn.timed_out(now) || txn.status.is_preparing() {
                    work.push((txn.clone(), Arc::clone(partition)));
                }
            }
            for (txn, _) in &work {
                inner.completing.insert(txn.transactional_id.clone());
            }
        }
        for (txn, partition) in work {
            let prepared = if txn.status == TxnStatus::Ongoing {
                // Under the lock, and only if nothing changed it since.
                let mut inner = self.inner.lock().await;
                let id = txn.transactional_id.clone();
                let fenced = txn.fence(now).filter(|_| inner.txns.get(&id) == Some(&txn));
                let Some(fenced) = fenced else {
                    inner.completing.remove(&id);
                    continue;
                };
                if let Err(e) = state_log::persist(state, &partition, &fenced).await {
                    tracing::warn!(%id, error = %e, "timed-out transaction not aborted yet");
                    inner.completing.remove(&id);
                    continue;
                }
                tracing::info!(%id, timeout_ms = txn.timeout_ms, "transaction aborted: past its timeout");
                inner.txns.insert(id, fenced.clone());
                fenced
            } else {
                txn
            };
            tokio::spawn(complete(
                Arc::clone(state),
                prepared,
                partition.leader_epoch(),
            ));
        }
    }
}
