//! Retention, DeleteRecords and truncation over many segments, and what
//! survives a reopen.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use common::{CODECS, TsModel, check_time_lookups, log_records, model_records};
use fjord_log::{Log, LogConfig, LogError};

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 1_200,
        index_interval_bytes: 300,
        segment_ms: None,
        retention_ms: None,
        retention_bytes: None,
        ..LogConfig::default()
    }
}

/// Appends one batch per entry of `timestamps` (each a list of record
/// timestamps) and returns the model.
fn fill(log: &Log, timestamps: &[Vec<i64>]) -> TsModel {
    timestamps
        .iter()
        .enumerate()
        .map(|(i, ts)| {
            let mut b = common::sized_batch_with_timestamps(ts, 100, CODECS[i % 5]);
            (log.append(&mut b, 0).unwrap().first_offset, ts.clone())
        })
        .collect()
}

/// Segment bases with the max timestamp and the size of each segment, from
/// the model and the files.
fn segments(log: &Log, model: &TsModel) -> Vec<(i64, i64, u64)> {
    let bases = log.segment_base_offsets();
    let files = common::segment_files(log.dir());
    assert_eq!(bases.len(), files.len());
    bases
        .iter()
        .enumerate()
        .map(|(i, &base)| {
            let next = bases.get(i + 1).copied().unwrap_or(i64::MAX);
            let max_ts = model
                .iter()
                .filter(|(b, _)| *b >= base && *b < next)
                .flat_map(|(_, ts)| ts.iter().copied())
                .max()
                .unwrap_or(-1);
            (base, max_ts, std::fs::metadata(&files[i]).unwrap().len())
        })
        .collect()
}

fn assert_out_of_range(log: &Log, offset: i64) {
    match log.read(offset, 1 << 20, i64::MAX) {
        Err(LogError::OffsetOutOfRange { offset: o, .. }) => assert_eq!(o, offset),
        other => panic!("read at {offset}: {other:?}"),
    }
}

/// Checks that the log serves exactly the model from its start, reads below
/// the start fail, and lookups by time agree.
fn check(log: &Log, model: &TsModel, start: i64, ctx: &str) {
    assert_eq!(log.log_start_offset(), start, "{ctx}");
    assert_eq!(log_records(log), model_records(model, start), "{ctx}");
    if start > 0 {
        assert_out_of_range(log, start - 1);
        assert_out_of_range(log, 0);
    }
    check_time_lookups(log, model, ctx);
}

fn timestamps(n: usize) -> Vec<Vec<i64>> {
    (0..n as i64)
        .map(|i| vec![1_000 * i, 1_000 * i + 500, 1_000 * i + 200])
        .collect()
}

#[test]
fn retention_by_time_deletes_old_closed_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        retention_ms: Some(10_000),
        ..config()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    let mut ts = timestamps(40);
    // A segment in the middle holds a newer record: retention stops there
    // (oldest first, never past a segment it keeps).
    ts[20][1] = 1_000_000;
    let model = fill(&log, &ts);
    assert!(log.segment_count() >= 8, "{} segments", log.segment_count());
    let before = segments(&log, &model);

    let now = 20_000;
    let expired = before[..before.len() - 1]
        .iter()
        .take_while(|&&(_, max, _)| now - max > 10_000)
        .count();
    assert!(
        expired >= 2 && expired < before.len() - 1,
        "{expired} expired"
    );
    assert_eq!(log.enforce_retention(now).unwrap(), expired);
    let start = before[expired].0;
    assert_eq!(
        log.segment_base_offsets(),
        before[expired..].iter().map(|s| s.0).collect::<Vec<_>>()
    );
    check(&log, &model, start, "after retention");
    // Nothing more to do at the same time.
    assert_eq!(log.enforce_retention(now).unwrap(), 0);

    // Far in the future: every closed segment goes, the active one stays.
    let future = 10_000_000;
    let closed = log.segment_count() - 1;
    assert_eq!(log.enforce_retention(future).unwrap(), closed);
    assert_eq!(log.segment_count(), 1);
    let start = *log.segment_base_offsets().first().unwrap();
    check(&log, &model, start, "only the active segment");
    assert!(
        log.log_end_offset() > start,
        "the active segment kept its data"
    );

    // Persisted: the log start survives a reopen, even without close.
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    check(&log, &model, start, "reopened");
}

#[test]
fn retention_by_size_keeps_the_newest_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let model = fill(&log, &timestamps(40));
    let before = segments(&log, &model);
    let total: u64 = before.iter().map(|s| s.2).sum();
    assert_eq!(log.size_bytes(), total);
    let max = total / 2;
    log.set_config(LogConfig {
        retention_bytes: Some(max),
        ..config()
    });
    let mut left = total;
    let mut expected = 0;
    for s in &before[..before.len() - 1] {
        if left - s.2 >= max {
            left -= s.2;
            expected += 1;
        } else {
            break;
        }
    }
    assert!(expected >= 2);
    // Time plays no part without retention.ms.
    assert_eq!(log.enforce_retention(i64::MAX / 2).unwrap(), expected);
    assert_eq!(log.size_bytes(), left);
    assert!(log.size_bytes() >= max);
    check(&log, &model, before[expected].0, "after size retention");
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check(&log, &model, before[expected].0, "reopened");
    assert_eq!(
        log.enforce_retention(i64::MAX / 2).unwrap(),
        0,
        "no retention configured"
    );
}

#[test]
fn delete_records_moves_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let model = fill(&log, &timestamps(40));
    let bases = log.segment_base_offsets();
    let end = log.log_end_offset();

    // Inside a batch of the third segment: the first two segments go.
    let target = bases[2] + 4;
    assert_eq!(log.delete_records_before(target).unwrap(), target);
    assert_eq!(log.segment_base_offsets(), bases[2..].to_vec());
    check(&log, &model, target, "inside a batch");
    // Reading at the start serves the batch holding it.
    let read = log.read(target, 1, i64::MAX).unwrap();
    let first = common::check_batches(&read.slice.unwrap().bytes().unwrap())[0];
    assert!(first.0 <= target && target <= first.1);

    // Lower than the start: nothing changes.
    assert_eq!(log.delete_records_before(3).unwrap(), target);
    assert_eq!(log.log_start_offset(), target);
    // Past the end: refused.
    assert!(matches!(
        log.delete_records_before(end + 1),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        log.delete_records_before(-5),
        Err(LogError::OffsetOutOfRange { .. })
    ));

    // Persisted without a close.
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check(&log, &model, target, "reopened");

    // Up to the end: every closed segment goes, nothing is left to read.
    assert_eq!(log.delete_records_before(end).unwrap(), end);
    assert_eq!(log.segment_count(), 1);
    assert!(log.read(end, 1 << 20, i64::MAX).unwrap().slice.is_none());
    assert_out_of_range(&log, end - 1);
    let mut b = common::sized_batch_with_timestamps(&[7], 10, CODECS[0]);
    assert_eq!(log.append(&mut b, 0).unwrap().first_offset, end);
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_start_offset(), end);
    assert_eq!(log.log_end_offset(), end + 1);
}

#[test]
fn time_lookup_past_a_log_start_inside_a_batch() {
    // The log start falls inside a batch whose newest record lies below it:
    // the lookup must go on to the next batch of the same segment.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), LogConfig::default()).unwrap();
    let model = fill(
        &log,
        &[vec![100, 900, 100, 100], vec![200, 900, 300], vec![400]],
    );
    assert_eq!(log.delete_records_before(2).unwrap(), 2);
    check(&log, &model, 2, "start at 2");
    assert_eq!(log.offset_for_timestamp(900).unwrap().unwrap().offset, 5);
}

#[test]
fn truncate_to_over_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    // Timestamps not monotonic across batches: the max of what is left
    // after a truncation is not the max of the last batch left.
    let ts: Vec<Vec<i64>> = (0..60i64)
        .map(|i| vec![(i * 7_919) % 5_000, 100 + i, (i * 31) % 977])
        .collect();
    let mut model = fill(&log, &ts);
    let bases = log.segment_base_offsets();
    assert!(bases.len() >= 10);

    let cut = |log: &Log, model: &mut TsModel, offset: i64, ctx: &str| {
        let batch = model
            .iter()
            .position(|(b, ts)| *b <= offset && offset < b + ts.len() as i64)
            .unwrap();
        let new_end = model[batch].0;
        model.truncate(batch);
        log.truncate_to(offset).unwrap();
        assert_eq!(log.log_end_offset(), new_end, "{ctx}");
        assert!(
            log.segment_base_offsets().iter().all(|&b| b <= new_end),
            "{ctx}"
        );
        check(log, model, 0, ctx);
        // Appends continue at the new end, with new timestamps.
        let next = vec![2_000 + new_end, 3];
        let mut b = common::sized_batch_with_timestamps(&next, 100, CODECS[2]);
        assert_eq!(
            log.append(&mut b, 0).unwrap().first_offset,
            new_end,
            "{ctx}"
        );
        model.push((new_end, next));
        check(log, model, 0, ctx);
    };
    // Inside a batch of a middle segment.
    cut(&log, &mut model, bases[7] + 4, "inside a batch");
    // At a segment boundary.
    let bases = log.segment_base_offsets();
    cut(&log, &mut model, bases[4], "segment boundary");
    // Inside the first batch of a segment that is not the first.
    let bases = log.segment_base_offsets();
    cut(&log, &mut model, bases[2] + 1, "first batch of a segment");
    // At the end: nothing happens.
    let end = log.log_end_offset();
    log.truncate_to(end).unwrap();
    log.truncate_to(end + 10).unwrap();
    assert_eq!(log.log_end_offset(), end);

    // Survives a clean reopen and an unclean one.
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check(&log, &model, 0, "reopened");
    let bases = log.segment_base_offsets();
    cut(&log, &mut model, bases[1] + 2, "after reopen");
    drop(log);
    std::fs::remove_file(dir.path().join(fjord_log::RECOVERY_POINT_CHECKPOINT)).ok();
    let log = Log::open(dir.path(), config()).unwrap();
    check(&log, &model, 0, "unclean reopen");
}

#[test]
fn truncate_below_the_log_start_empties_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let model = fill(&log, &timestamps(30));
    let bases = log.segment_base_offsets();
    log.delete_records_before(bases[3]).unwrap();
    let below = bases[3] - 2;
    log.truncate_to(below).unwrap();
    assert_eq!(log.log_start_offset(), below);
    assert_eq!(log.log_end_offset(), below);
    assert_eq!(log.segment_base_offsets(), vec![below]);
    assert!(log.read(below, 1 << 20, i64::MAX).unwrap().slice.is_none());
    assert!(log.offset_for_timestamp(0).unwrap().is_none());
    assert!(
        log.offset_for_timestamp(fjord_log::MAX_TIMESTAMP)
            .unwrap()
            .is_none()
    );
    let mut b = common::sized_batch_with_timestamps(&[5, 6], 10, CODECS[4]);
    assert_eq!(log.append(&mut b, 0).unwrap().first_offset, below);
    let mut model2: TsModel = vec![(below, vec![5, 6])];
    check(&log, &model2, below, "after full truncation");
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    check(&log, &model2, below, "reopened");
    // Truncating to zero empties it again, starting at 0.
    log.truncate_to(0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    model2.clear();
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
    assert!(model.len() > 1);
}

#[test]
fn truncate_into_the_batch_holding_the_log_start() {
    // The log start sits inside a batch (DeleteRecords), and a truncation
    // removes that batch: the log must stay a log (start <= end) and take
    // the batch back from a leader.
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let model = fill(&log, &[vec![1, 2, 3], vec![4, 5, 6], vec![7, 8, 9]]);
    log.delete_records_before(4).unwrap();
    log.truncate_to(5).unwrap();
    assert_eq!(log.log_end_offset(), 3);
    assert!(log.log_start_offset() <= log.log_end_offset());
    assert!(
        log.read(log.log_end_offset(), 1 << 20, i64::MAX)
            .unwrap()
            .slice
            .is_none()
    );
    // A follower fetching at its end gets the batch back whole.
    let mut again = common::sized_batch_with_timestamps(&[4, 5, 6], 100, CODECS[1]);
    again[0..8].copy_from_slice(&3i64.to_be_bytes());
    log.append_as_follower(&mut again).unwrap();
    assert_eq!(log.log_end_offset(), 6);
    let start = log.log_start_offset();
    check(&log, &model[..2].to_vec(), start, "re-fetched");
    drop(log);
    let log = Log::open(dir.path(), config()).unwrap();
    assert_eq!(log.log_start_offset(), start);
    assert_eq!(log.log_end_offset(), 6);
}

/// `segment.jitter.ms`: a segment rolls up to the jitter before
/// `segment.ms`, by an amount that differs between logs; never at or
/// beyond `segment.ms` itself, and not at all without jitter.
#[test]
fn segment_jitter_rolls_some_segments_early() {
    let rolled = |jitter: i64| {
        (0..16)
            .filter(|_| {
                let dir = tempfile::tempdir().unwrap();
                let config = LogConfig {
                    segment_bytes: 1 << 20,
                    segment_ms: Some(1_000),
                    segment_jitter_ms: jitter,
                    ..config()
                };
                let log = Log::open(dir.path(), config).unwrap();
                // 500 ms apart: inside segment.ms, not inside it minus
                // a jitter above 500 ms (about half the logs' jitter).
                fill(&log, &[vec![10_000], vec![10_500]]);
                let early = log.segment_count() == 2;
                // Never more than segment.ms: 1001 ms after the first
                // segment's start always rolls, with or without jitter.
                fill(&log, &[vec![12_001]]);
                assert!(log.segment_count() >= 2);
                early
            })
            .count()
    };
    assert_eq!(rolled(0), 0, "no jitter: nothing rolls before segment.ms");
    let with_jitter = rolled(1_000);
    assert!(
        (1..16).contains(&with_jitter),
        "with a jitter of up to 1 s about half of 16 logs roll early: {with_jitter}"
    );
}
