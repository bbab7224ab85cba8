//! While a partition of `__transaction_state` loads, its ids are answered
//! COORDINATOR_LOAD_IN_PROGRESS; once loaded, from what the log says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::loading::{LOAD_WAIT, Load};
use super::state_log;
use crate::error::{TxnError, txn_error_code};
use crate::{Broker, BrokerConfig};
use kafka_protocol::ResponseError;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ids_are_answered_load_in_progress_until_their_partition_is_loaded() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(BrokerConfig::ephemeral(dir.path()))
        .await
        .expect("broker");
    let state = Arc::clone(&broker.local().state);
    let txns = state.txns();
    let (pid, epoch) = txns
        .init(&state, "loading", 60_000, None)
        .await
        .expect("the first InitProducerId is answered once the partition loads");

    // A new leader epoch of the id's partition is being loaded, as after
    // an election: the load has not finished.
    let topic = state_log::topic(&state).await.expect("the topic");
    let partition = state_log::led_partition(&topic, "loading").expect("led here");
    let leader_epoch = partition.leader_epoch();
    txns.core
        .known
        .lock()
        .loaded
        .insert(partition.index(), Load::Loading(leader_epoch));

    let asked = Instant::now();
    let refused = txns.init(&state, "loading", 60_000, None).await;
    assert!(
        matches!(refused, Err(TxnError::LoadInProgress)),
        "{refused:?}"
    );
    assert_eq!(
        txn_error_code(&TxnError::LoadInProgress, true),
        ResponseError::CoordinatorLoadInProgress.code(),
        "the code clients retry"
    );
    assert!(asked.elapsed() >= LOAD_WAIT, "it waited for the load first");
    assert!(matches!(
        txns.describe(&state, "loading").await,
        Err(TxnError::LoadInProgress)
    ));
    assert!(
        txns.list(&state).await.is_empty(),
        "no id of a loading partition listed"
    );
    // Forgotten meanwhile: what comes next must come from the log.
    txns.core.known.lock().txns.clear();

    // The load finishes on a blocking thread; the retried request is
    // answered from the log (the same producer id, its epoch bumped).
    let core = Arc::clone(&txns.core);
    let count = topic.partition_count();
    let loading = Arc::clone(&partition);
    tokio::task::spawn_blocking(move || core.load(&loading, leader_epoch, count))
        .await
        .expect("the load");
    let deadline = Instant::now() + Duration::from_secs(30);
    let again = loop {
        match txns.init(&state, "loading", 60_000, None).await {
            Err(TxnError::LoadInProgress) if Instant::now() < deadline => continue,
            other => break other.expect("answered once loaded"),
        }
    };
    assert_eq!(again, (pid, epoch + 1));
    broker.shutdown().await.expect("shutdown");
}
