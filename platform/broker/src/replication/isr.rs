//! The leader's side of ISR changes: followers that lag for longer than
//! `replica.lag.time.max.ms` are proposed out of the in-sync replicas, and
//! followers that caught up (reported by the fetch path) are proposed back
//! in, through the controller's AlterPartition. The committed ISR comes
//! back through the metadata like every other change.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fjord_controller::Command;
use tokio::sync::mpsc;

use super::Replicas;
use crate::quorum_link::IsrRequest;
use crate::shutdown::stopped;

pub(super) async fn run(
    replicas: Arc<Replicas>,
    mut requests: mpsc::UnboundedReceiver<IsrRequest>,
) {
    let link = &replicas.link;
    let max_lag = Duration::from_millis(replicas.config.replica_lag_time_max_ms);
    let mut tick = tokio::time::interval(max_lag / 2);
    let mut shutdown = replicas.shutdown.clone();
    // What was proposed last per partition, so the same change is not
    // proposed again while it is on its way.
    let mut sent: HashMap<(String, i32), (Vec<i32>, i32)> = HashMap::new();
    loop {
        let mut batch = Vec::new();
        tokio::select! {
            _ = tick.tick() => {
                for topic in replicas.registry.list() {
                    for partition in topic.partitions() {
                        if !partition.is_replicated() {
                            continue;
                        }
                        if let Some(proposal) = partition.isr_shrink(max_lag) {
                            batch.push(IsrRequest {
                                topic: topic.name().to_string(),
                                partition: partition.index(),
                                proposal,
                            });
                        }
                    }
                }
            }
            request = requests.recv() => match request {
                Some(r) => batch.push(r),
                None => return,
            },
            _ = stopped(&mut shutdown) => return,
        }
        for request in batch {
            let key = (request.topic.clone(), request.partition);
            let marker = (
                request.proposal.isr.clone(),
                request.proposal.partition_epoch,
            );
            if sent.get(&key) == Some(&marker) {
                continue;
            }
            sent.insert(key.clone(), marker);
            tracing::info!(
                topic = %request.topic,
                partition = request.partition,
                isr = ?request.proposal.isr,
                "proposing an ISR change"
            );
            let command = Command::AlterPartition {
                topic: request.topic.clone(),
                partition: request.partition,
                leader: link.broker_id(),
                leader_epoch: request.proposal.leader_epoch,
                partition_epoch: request.proposal.partition_epoch,
                isr: request.proposal.isr.clone(),
            };
            match link.propose(command).await {
                Ok(_) => {}
                Err(e) => {
                    // Stale epochs (leadership moved) or no quorum: the next
                    // fetch or tick proposes again from fresh state.
                    tracing::info!(topic = %request.topic, partition = request.partition, error = %e, "ISR change not applied");
                    sent.remove(&key);
                }
            }
        }
    }
}
