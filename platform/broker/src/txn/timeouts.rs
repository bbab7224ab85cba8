//! The coordinator's periodic round (every
//! `transaction.abort.timed.out.transaction.cleanup.interval.ms`): loads
//! the partitions of `__transaction_state` this broker has come to lead,
//! aborts the transactions open past their timeout — with the epoch
//! bumped, so the producer is fenced, as Kafka's proactive abort — and
//! completes the prepared ends nobody is completing (those a previous
//! leader left, or whose completion failed).

use std::sync::Arc;

use super::state::{TxnMetadata, TxnStatus};
use super::{TXN_TOPIC, TxnCoordinator, complete, state_log};
use crate::broker_state::BrokerState;
use crate::clock::now_ms;
use crate::error::TxnError;

impl TxnCoordinator {
    /// One round.
    pub(crate) async fn tick(&self, state: &Arc<BrokerState>) {
        let Some(topic) = state.registry().get(TXN_TOPIC) else {
            return;
        };
        let count = topic.partition_count();
        let now = now_ms();
        let led: Vec<_> = topic
            .partitions()
            .iter()
            .filter(|p| p.is_leader())
            .cloned()
            .collect();
        // Loads started here are looked at by the next round.
        let ready: Vec<_> = led
            .iter()
            .filter(|p| self.core.start_load(p, count).is_some())
            .collect();
        let mut work = Vec::new();
        {
            let mut known = self.core.known.lock();
            for txn in known.txns.values() {
                if known.completing.contains(&txn.transactional_id) {
                    continue;
                }
                let index = state_log::partition_for(&txn.transactional_id, count);
                let Some(partition) = ready.iter().find(|p| p.index() == index) else {
                    continue;
                };
                if txn.timed_out(now) || txn.status.is_preparing() {
                    work.push((txn.clone(), Arc::clone(partition)));
                }
            }
            for (txn, _) in &work {
                known.completing.insert(txn.transactional_id.clone());
            }
        }
        for (txn, partition) in work {
            let prepared = if txn.status == TxnStatus::Ongoing {
                let id = txn.transactional_id.clone();
                match self.abort_timed_out(state, &txn, now).await {
                    Ok(Some(fenced)) => {
                        tracing::info!(%id, timeout_ms = txn.timeout_ms, "transaction aborted: past its timeout");
                        fenced
                    }
                    Ok(None) => {
                        self.completing(&id, false);
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(%id, error = %e, "timed-out transaction not aborted yet");
                        self.completing(&id, false);
                        continue;
                    }
                }
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

    /// `txn`, timed out, fenced and persisted as PrepareAbort under its
    /// id's lock — None if its state changed since it was looked at.
    async fn abort_timed_out(
        &self,
        state: &BrokerState,
        txn: &TxnMetadata,
        now: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        let id = &txn.transactional_id;
        let locked = self.lock(state, id).await?;
        let unchanged = self.with(id, |t| t == Some(txn));
        let Some(fenced) = txn.fence(now).filter(|_| unchanged) else {
            return Ok(None);
        };
        self.store(state, &locked, fenced.clone()).await?;
        Ok(Some(fenced))
    }
}
