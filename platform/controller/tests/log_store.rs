//! The on-disk Raft log: torn tails, truncation, purge, reopen.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use fjord_controller::Command;
use fjord_controller::log_store::{LogStore, LogStoreError};
use fjord_controller::raft_types::Entry;
use openraft::{CommittedLeaderId, EntryPayload, LogId, Vote};
use proptest::prelude::*;

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, 1), index)
}

fn entry(term: u64, index: u64) -> Entry {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(Command::UpsertPipeline {
            name: format!("p{index}"),
            manifest: "x".repeat(index as usize % 50),
        }),
    }
}

fn indexes(store: &LogStore) -> Vec<u64> {
    store.entries(..).iter().map(|e| e.log_id.index).collect()
}

fn log_len(dir: &Path) -> u64 {
    fs::metadata(dir.join("raft-log")).unwrap().len()
}

#[test]
fn torn_tail_entry_is_dropped_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_durably((1..=3).map(|i| entry(1, i))).unwrap();
    let good_len = log_len(dir.path());
    store.append_durably([entry(1, 4)]).unwrap();
    let full_len = log_len(dir.path());
    drop(store);

    // Cut the last record in the middle, as a crash during its write would.
    let f = OpenOptions::new()
        .write(true)
        .open(dir.path().join("raft-log"))
        .unwrap();
    f.set_len(full_len - 3).unwrap();
    drop(f);

    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3]);
    assert_eq!(log_len(dir.path()), good_len, "the torn bytes are cut off");
    // Appending goes on after the good entries.
    store.append_durably([entry(2, 4)]).unwrap();
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3, 4]);
    assert_eq!(store.entries(4..)[0].log_id, log_id(2, 4));
}

#[test]
fn zero_filled_tail_is_dropped_but_damage_inside_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_durably((1..=3).map(|i| entry(1, i))).unwrap();
    drop(store);
    let path = dir.path().join("raft-log");
    let mut f = OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(&[0u8; 100]).unwrap();
    drop(f);
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&store), vec![1, 2, 3]);
    drop(store);

    // Flip a byte inside the first record: not a torn write.
    let mut bytes = fs::read(&path).unwrap();
    bytes[12] ^= 0xff;
    fs::write(&path, bytes).unwrap();
    match LogStore::open(dir.path()) {
        Err(LogStoreError::Corrupt { position: 0, .. }) => {}
        other => panic!("expected corruption at 0, got {other:?}"),
    }
}

#[test]
fn vote_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(store.vote(), None);
    let vote = Vote::new(3, 2);
    store.save_vote_durably(&vote).unwrap();
    drop(store);
    assert_eq!(LogStore::open(dir.path()).unwrap().vote(), Some(vote));
}

#[test]
fn truncate_and_purge_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::open(dir.path()).unwrap();
    store.append_durably((1..=10).map(|i| entry(1, i))).unwrap();
    store.truncate_from(8).unwrap();
    store.append_durably((8..=9).map(|i| entry(2, i))).unwrap();
    store.purge_upto(log_id(1, 6)).unwrap();
    let state = store.state();
    assert_eq!(state.last_purged, Some(log_id(1, 6)));
    assert_eq!(state.last, Some(log_id(2, 9)));
    assert_eq!(indexes(&store), vec![7, 8, 9]);
    drop(store);

    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&store), vec![7, 8, 9]);
    assert_eq!(store.entries(8..=8)[0].log_id, log_id(2, 8));
    // Purging everything leaves the purged id as the last one.
    store.purge_upto(log_id(2, 9)).unwrap();
    drop(store);
    let store = LogStore::open(dir.path()).unwrap();
    assert_eq!(indexes(&store), Vec::<u64>::new());
    assert_eq!(store.state().last, Some(log_id(2, 9)));
    store.append_durably([entry(3, 10)]).unwrap();
    drop(store);
    assert_eq!(indexes(&LogStore::open(dir.path()).unwrap()), vec![10]);
}

#[derive(Debug, Clone)]
enum Op {
    Append(u8),
    Truncate(u8),
    Purge(u8),
    Reopen,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (1u8..6).prop_map(Op::Append),
        1 => any::<u8>().prop_map(Op::Truncate),
        1 => any::<u8>().prop_map(Op::Purge),
        1 => Just(Op::Reopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// The store matches a plain model (a list of log ids plus the purged id)
    /// after any sequence of appends, truncations, purges and reopens.
    #[test]
    fn matches_a_model(ops in prop::collection::vec(arb_op(), 1..30)) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LogStore::open(dir.path()).unwrap();
        let mut model: Vec<LogId<u64>> = Vec::new();
        let mut purged: Option<LogId<u64>> = None;
        let mut term = 1;
        for op in ops {
            match op {
                Op::Append(n) => {
                    let next = model.last().or(purged.as_ref()).map_or(1, |l| l.index + 1);
                    let new: Vec<Entry> = (next..next + u64::from(n)).map(|i| entry(term, i)).collect();
                    model.extend(new.iter().map(|e| e.log_id));
                    store.append_durably(new).unwrap();
                }
                Op::Truncate(k) => {
                    if model.is_empty() { continue; }
                    let at = model[k as usize % model.len()].index;
                    model.retain(|l| l.index < at);
                    store.truncate_from(at).unwrap();
                    term += 1;
                }
                Op::Purge(k) => {
                    if model.is_empty() { continue; }
                    let upto = model[k as usize % model.len()];
                    model.retain(|l| l.index > upto.index);
                    purged = Some(upto);
                    store.purge_upto(upto).unwrap();
                }
                Op::Reopen => {
                    drop(store);
                    store = LogStore::open(dir.path()).unwrap();
                }
            }
            let got: Vec<LogId<u64>> = store.entries(..).iter().map(|e| e.log_id).collect();
            prop_assert_eq!(&got, &model);
            let state = store.state();
            prop_assert_eq!(state.last_purged, purged);
            prop_assert_eq!(state.last, model.last().copied().or(purged));
        }
        drop(store);
        let store = LogStore::open(dir.path()).unwrap();
        let got: Vec<LogId<u64>> = store.entries(..).iter().map(|e| e.log_id).collect();
        prop_assert_eq!(got, model);
    }
}
