//! The validator of produced batches (`validate_produced`, what
//! `Log::append` runs) on every kind of broken batch, on valid batches of
//! every codec, and on decompression bombs, with the memory it takes
//! measured by a counting allocator.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed setup panics with its location"
)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, Instant};

use common::{RawHeader, compress, raw_batch, raw_record};
use fjord_log::{
    CleanupPolicy, DecodeLimits, LogConfig, LogError, TimestampType, decode_batch,
    validate_produced, validate_produced_at,
};
use kafka_protocol::records::Compression;
use proptest::prelude::*;

/// Counts the bytes each thread holds, and the most it held, so a test
/// can tell what one call allocated (tests run on threads of their own).
struct Counting;

thread_local! {
    static HELD: Cell<usize> = const { Cell::new(0) };
    static PEAK: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every allocation is the system allocator's, passed through
// unchanged; the counting only touches const-initialised `Cell`s in
// thread-locals, which neither allocate nor panic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = HELD.try_with(|h| {
            let now = h.get() + layout.size();
            h.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        // SAFETY: the caller's layout, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = HELD.try_with(|h| h.set(h.get().saturating_sub(layout.size())));
        // SAFETY: allocated by `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and returns its result with the most bytes it held at once
/// beyond what the thread held before.
fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
    let before = HELD.with(Cell::get);
    PEAK.with(|p| p.set(before));
    let out = f();
    (out, PEAK.with(Cell::get) - before)
}

const TS: i64 = 1_700_000_000_000;

fn config() -> LogConfig {
    LogConfig::default()
}

fn compacted() -> LogConfig {
    LogConfig {
        cleanup_policy: CleanupPolicy::Compact,
        ..LogConfig::default()
    }
}

fn validate(batch: &[u8], config: &LogConfig) -> Result<usize, LogError> {
    let mut bytes = batch.to_vec();
    let mut n = 0;
    validate_produced(&mut bytes, config, |_| n += 1)?;
    Ok(n)
}

fn records(n: i64, key: impl Fn(i64) -> Option<Vec<u8>>) -> Vec<u8> {
    (0..n)
        .flat_map(|i| {
            raw_record(
                i,
                i,
                key(i).as_deref(),
                Some(format!("value {i}").as_bytes()),
            )
        })
        .collect()
}

fn keyed(i: i64) -> Option<Vec<u8>> {
    Some(format!("k{i}").into_bytes())
}

fn hand_batch(codec: i16, count: i32, body: &[u8]) -> Vec<u8> {
    let mut h = RawHeader::new(count, codec, TS);
    h.max_timestamp = TS + i64::from(count) - 1;
    raw_batch(h, &compress(codec, body))
}

fn assert_invalid(result: Result<usize, LogError>, has_record_errors: bool, what: &str) {
    match result {
        Err(e @ LogError::InvalidRecord { .. }) => assert_eq!(
            !e.record_errors().is_empty(),
            has_record_errors,
            "{what}: {e}"
        ),
        other => panic!("{what}: expected InvalidRecord, got {other:?}"),
    }
}

#[test]
fn valid_batches_of_every_codec_pass() {
    for compression in common::CODECS {
        let batch = common::batch(50, 100, TS, compression);
        assert_eq!(validate(&batch, &config()).unwrap(), 1, "{compression:?}");
        assert_eq!(
            validate(&batch, &compacted()).unwrap(),
            1,
            "{compression:?}"
        );
        let rich = common::rich_batch(40, 50, TS, compression, 7);
        validate(&rich, &config()).unwrap_or_else(|e| panic!("{compression:?}: {e}"));
    }
    for codec in 0..=4 {
        let batch = hand_batch(codec, 3, &records(3, keyed));
        assert_eq!(validate(&batch, &compacted()).unwrap(), 1, "codec {codec}");
    }
    // Several batches in one append.
    let mut two = common::batch(3, 10, TS, Compression::Lz4);
    two.extend(common::batch(2, 10, TS, Compression::None));
    assert_eq!(validate(&two, &config()).unwrap(), 2);
}

#[test]
fn a_crc_mismatch_is_corrupt() {
    let mut batch = common::batch(3, 10, TS, Compression::None);
    let last = batch.len() - 1;
    batch[last] ^= 1;
    assert!(matches!(
        validate(&batch, &config()),
        Err(LogError::CorruptBatch { .. })
    ));
}

#[test]
fn a_count_of_a_million_holding_one_record_is_invalid() {
    let mut h = RawHeader::new(1_000_000, 0, TS);
    h.max_timestamp = TS;
    let batch = raw_batch(h, &records(1, keyed));
    let e = validate(&batch, &config()).unwrap_err();
    assert!(
        e.to_string().contains("claims 1000000 records but holds 1"),
        "{e}"
    );
    assert_invalid(Err(e), false, "count");
}

#[test]
fn a_record_length_of_2_pow_40_is_invalid_with_its_index() {
    for codec in 0..=4 {
        let mut body = records(1, keyed);
        let mut bad = Vec::new();
        common::put_varint(&mut bad, 1 << 40);
        bad.extend_from_slice(&[0; 8]);
        body.extend_from_slice(&bad);
        let batch = hand_batch(codec, 2, &body);
        let e = validate(&batch, &config()).unwrap_err();
        assert_eq!(e.record_errors().len(), 1, "codec {codec}: {e}");
        assert_eq!(e.record_errors()[0].batch_index, 1, "codec {codec}");
        assert_invalid(Err(e), true, "length");
    }
}

#[test]
fn an_unknown_codec_and_random_bytes_as_any_codec_are_invalid() {
    let body = records(2, keyed);
    for codec in 5..=7 {
        assert_invalid(
            validate(&hand_batch(0, 2, &body).tap_codec(codec), &config()),
            false,
            "unknown codec",
        );
    }
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    for codec in 1..=4 {
        let mut h = RawHeader::new(2, codec, TS);
        h.max_timestamp = TS + 1;
        assert_invalid(validate(&raw_batch(h, &noise), &config()), false, "noise");
    }
}

/// Sets a batch's codec bits, CRC made right.
trait TapCodec {
    fn tap_codec(self, codec: i16) -> Self;
}

impl TapCodec for Vec<u8> {
    fn tap_codec(mut self, codec: i16) -> Self {
        self[22] = (self[22] & !7) | codec as u8;
        common::fix_crc(&mut self);
        self
    }
}

#[test]
fn keyless_records_on_a_compacted_topic_are_invalid_each_by_index() {
    let first = hand_batch(3, 2, &records(2, keyed));
    let second = hand_batch(
        3,
        4,
        &records(4, |i| (i % 2 == 0).then(|| keyed(i)).flatten()),
    );
    let mut both = first.clone();
    both.extend_from_slice(&second);
    let e = validate(&both, &compacted()).unwrap_err();
    let indexes: Vec<i32> = e.record_errors().iter().map(|r| r.batch_index).collect();
    // Records 1 and 3 of the second batch: 3 and 5 of the append.
    assert_eq!(indexes, [3, 5], "{e}");
    assert_invalid(Err(e), true, "keys");
    // The same records on a normal topic are fine.
    assert_eq!(validate(&both, &config()).unwrap(), 2);
}

/// A batch of many bad records (here 50 000 keyless ones, LZ4) names at
/// most 1000 of them: the answer stays small, the count is still told.
#[test]
fn a_refusal_names_at_most_a_thousand_records() {
    let batch = hand_batch(3, 50_000, &records(50_000, |_| None));
    let e = validate(&batch, &compacted()).unwrap_err();
    let indexes: Vec<i32> = e.record_errors().iter().map(|r| r.batch_index).collect();
    assert_eq!(indexes, (0..1000).collect::<Vec<i32>>());
    assert!(e.to_string().contains("50000 record(s)"), "{e}");
}

#[test]
fn client_rules_refuse_control_anonymous_transactional_and_renumbered_batches() {
    let body = records(2, keyed);
    for bits in [0x20, 0x10, 0x30] {
        let mut h = RawHeader::new(2, 0, TS);
        h.attributes |= bits;
        h.max_timestamp = TS + 1;
        assert_invalid(validate(&raw_batch(h, &body), &config()), false, "bits");
    }
    // A transactional batch of a producer id passes; control never does.
    let mut h = RawHeader::new(2, 0, TS);
    h.attributes |= 0x10;
    h.producer_id = 7;
    h.producer_epoch = 0;
    h.base_sequence = 0;
    h.max_timestamp = TS + 1;
    validate(&raw_batch(h, &body), &config()).expect("transactional batch");
    h.attributes |= 0x20;
    assert_invalid(validate(&raw_batch(h, &body), &config()), false, "control");
    // Offset deltas 0, 0: the second record is not numbered 1.
    let dup: Vec<u8> = [
        raw_record(0, 0, Some(b"a"), None),
        raw_record(0, 0, Some(b"b"), None),
    ]
    .concat();
    let mut h = RawHeader::new(2, 0, TS);
    h.max_timestamp = TS;
    assert_invalid(validate(&raw_batch(h, &dup), &config()), true, "deltas");
    // Count and last offset delta disagree.
    let mut h = RawHeader::new(2, 0, TS);
    h.last_offset_delta = 5;
    assert_invalid(validate(&raw_batch(h, &body), &config()), false, "delta");
}

#[test]
fn timestamps_follow_create_time() {
    let body = records(2, keyed);
    let mut h = RawHeader::new(2, 0, TS);
    h.attributes |= 0x08;
    // Every record named, as Kafka's LogValidator does.
    match validate(&raw_batch(h, &body), &config()) {
        Err(e @ LogError::InvalidTimestamp { .. }) => {
            let at_fault: Vec<i32> = e.record_errors().iter().map(|r| r.batch_index).collect();
            assert_eq!(at_fault, [0, 1]);
        }
        other => panic!("expected INVALID_TIMESTAMP, got {other:?}"),
    }
    // A wrong max timestamp is corrected in place, CRC included.
    let mut h = RawHeader::new(2, 0, TS);
    h.max_timestamp = TS + 1_000_000;
    let mut batch = raw_batch(h, &body);
    validate_produced(&mut batch, &config(), |header| {
        assert_eq!(header.max_timestamp, TS + 1)
    })
    .unwrap();
    assert_eq!(
        fjord_log::validate_batch(&batch).unwrap().max_timestamp,
        TS + 1
    );
}

/// `message.timestamp.before.max.ms` / `after.max.ms` under CreateTime:
/// Kafka 4.0's defaults let any past through and an hour of future; a
/// record outside is refused whole with INVALID_TIMESTAMP naming it; -1
/// (no timestamp) always passes.
#[test]
fn create_time_is_checked_against_the_clock() {
    let check = |first_ts: i64, config: &LogConfig| {
        let body = records(3, keyed);
        let mut batch = raw_batch(RawHeader::new(3, 0, first_ts), &body);
        validate_produced_at(&mut batch, config, TS, |_| {})
    };
    let defaults = config();
    assert!(check(0, &defaults).is_ok(), "any past by default");
    assert!(check(TS + 3_600_000 - 2, &defaults).is_ok());
    // Record 2 is at TS + 3_600_000 + 1: one ms too far ahead.
    match check(TS + 3_600_000 - 1, &defaults) {
        Err(LogError::InvalidTimestamp {
            reason,
            record_errors,
        }) => {
            assert!(reason.contains("record 2"), "{reason}");
            let at_fault: Vec<i32> = record_errors.iter().map(|e| e.batch_index).collect();
            assert_eq!(at_fault, [2]);
        }
        other => panic!("expected INVALID_TIMESTAMP, got {other:?}"),
    }
    let strict = LogConfig {
        timestamp_before_max_ms: 1000,
        timestamp_after_max_ms: 0,
        ..config()
    };
    assert!(check(TS - 1000, &strict).is_ok());
    assert!(matches!(
        check(TS - 1001, &strict),
        Err(LogError::InvalidTimestamp { .. })
    ));
    assert!(matches!(
        check(i64::MIN + 5, &defaults),
        Ok(()) | Err(LogError::InvalidTimestamp { .. })
    ));
    let mut none = raw_batch(
        RawHeader::new(1, 0, -1),
        &raw_record(0, 0, Some(b"k"), None),
    );
    assert!(validate_produced_at(&mut none, &strict, TS, |_| {}).is_ok());
}

/// LogAppendTime: the batch is stamped with the clock (bit 3 of the
/// attributes, max timestamp), CRC rewritten, and producer timestamps are
/// not checked; a producer still may not set the bit itself.
#[test]
fn log_append_time_stamps_the_batch() {
    let config = LogConfig {
        timestamp_type: TimestampType::LogAppendTime,
        timestamp_after_max_ms: 0,
        ..config()
    };
    let body = records(2, keyed);
    let mut batch = raw_batch(RawHeader::new(2, 0, TS + 99_999_999), &body);
    let mut seen = None;
    validate_produced_at(&mut batch, &config, TS, |h| seen = Some(h)).unwrap();
    let header = fjord_log::validate_batch(&batch).unwrap();
    assert_eq!(header.max_timestamp, TS);
    assert_eq!(header.attributes & 0x08, 0x08);
    assert_eq!(seen.map(|h| h.max_timestamp), Some(TS));
    let decoded = decode_batch(&batch, DecodeLimits::default()).unwrap();
    assert!(decoded.records().all(|r| r.timestamp == TS));
    let mut h = RawHeader::new(2, 0, TS);
    h.attributes |= 0x08;
    let mut claimed = raw_batch(h, &body);
    assert!(matches!(
        validate_produced_at(&mut claimed, &config, TS, |_| {}),
        Err(LogError::InvalidTimestamp { .. })
    ));
}

/// Writes `bytes` zeros into `w` a MiB at a time: a bomb is made as a
/// stream, never held whole.
fn write_zeros(w: &mut impl Write, bytes: u64) {
    let zeros = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        w.write_all(&zeros[..n]).unwrap();
        left -= n as u64;
    }
}

/// `bytes` of zeros compressed with `codec` (gzip 1, lz4 3, zstd 4).
fn bomb(codec: i16, bytes: u64) -> Vec<u8> {
    match codec {
        1 => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            write_zeros(&mut e, bytes);
            e.finish().unwrap()
        }
        3 => {
            let mut e = lz4::EncoderBuilder::new()
                .level(9)
                .build(Vec::new())
                .unwrap();
            write_zeros(&mut e, bytes);
            let (out, result) = e.finish();
            result.unwrap();
            out
        }
        4 => {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            write_zeros(&mut e, bytes);
            e.finish().unwrap()
        }
        c => panic!("codec {c}"),
    }
}

fn assert_bomb_refused(name: &str, body: &[u8], codec: i16, cap: usize) {
    let mut h = RawHeader::new(1, codec, TS);
    h.max_timestamp = TS;
    let batch = raw_batch(h, body);
    let config = LogConfig {
        max_decompressed_bytes: cap,
        max_message_bytes: 64 << 20,
        ..LogConfig::default()
    };
    let started = Instant::now();
    let (result, peak) = peak_of(|| validate(&batch, &config));
    let e = result.unwrap_err();
    assert!(
        e.to_string().contains("message.max.decompressed.bytes"),
        "{name}: {e}"
    );
    assert_invalid(Err(e), false, name);
    // The buffer grows by doubling: at most twice the cap, plus the
    // codec's own state (zstd's window, liblz4's blocks).
    assert!(
        peak < 2 * cap + (16 << 20),
        "{name}: {peak} bytes held for a cap of {cap}"
    );
    assert!(started.elapsed() < Duration::from_secs(20), "{name}: slow");
    // Readers decode with the same bound.
    let (read, peak) = peak_of(|| {
        decode_batch(
            &batch,
            DecodeLimits {
                max_decompressed_bytes: cap,
            },
        )
        .map(|b| b.len())
    });
    assert!(read.is_err(), "{name}");
    assert!(peak < 2 * cap + (16 << 20), "{name}: reader held {peak}");
}

/// The bomb: 4 GiB of zeros in about 131 KB of zstd, refused at
/// the default cap (64 MiB) without inflating further.
#[test]
fn a_zstd_bomb_of_4_gib_is_refused_at_the_cap() {
    let body = bomb(4, 4 << 30);
    assert!(body.len() < 200_000, "bomb of {} bytes", body.len());
    assert_bomb_refused(
        "zstd 4 GiB",
        &body,
        4,
        fjord_log::DEFAULT_MAX_DECOMPRESSED_BYTES,
    );
}

#[test]
fn gzip_and_lz4_bombs_are_refused_at_the_cap() {
    let gzip = bomb(1, 256 << 20);
    assert!(gzip.len() < 400_000, "gzip bomb of {} bytes", gzip.len());
    assert_bomb_refused("gzip 256 MiB", &gzip, 1, 8 << 20);
    let lz4 = bomb(3, 64 << 20);
    assert!(lz4.len() < 400_000, "lz4 bomb of {} bytes", lz4.len());
    assert_bomb_refused("lz4 64 MiB", &lz4, 3, 8 << 20);
}

/// Raw snappy states its length first: a claim of 4 GiB is refused before
/// anything is allocated for it.
#[test]
fn a_snappy_block_claiming_4_gib_is_refused_before_allocating() {
    let mut body = Vec::new();
    // Snappy's preamble is an unsigned (not zigzag) varint.
    let mut claimed: u64 = (4 << 30) - 1;
    while claimed >= 0x80 {
        body.push((claimed as u8) | 0x80);
        claimed >>= 7;
    }
    body.push(claimed as u8);
    body.extend_from_slice(&[0; 32]);
    assert_bomb_refused("snappy claim", &body, 2, 8 << 20);
}

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(common::CODECS.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// What the validator accepts, every reader decodes; what it refuses
    /// after damage, it refuses with an error, never a panic.
    #[test]
    fn accepted_is_readable_and_damage_is_an_error(
        n in 1usize..30,
        compression in codec(),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        cut in prop::option::of(any::<prop::sample::Index>()),
    ) {
        let mut batch = common::batch(n, 20, TS, compression);
        for (at, value) in flips {
            let at = 61 + at.index(batch.len() - 61);
            batch[at] = value;
        }
        if let Some(cut) = cut {
            let cut = cut.index(batch.len());
            batch.truncate(cut.max(61));
            let len = (batch.len() - 12) as i32;
            batch[8..12].copy_from_slice(&len.to_be_bytes());
        }
        common::fix_crc(&mut batch);
        let mut stored = batch.clone();
        if validate_produced(&mut stored, &compacted(), |_| {}).is_ok() {
            let decoded = decode_batch(&stored, DecodeLimits::default()).unwrap();
            prop_assert_eq!(decoded.len() as i32, decoded.header().records_count);
        }
    }
}

/// The broken batches of this file are seeds of the `record_batches` fuzz
/// target (fuzz/seeds/record_batches/broken-*), so it starts from every
/// kind of refusal; they must stay refused.
/// `FJORD_WRITE_FUZZ_SEEDS=1 cargo test -p fjord-log --test validator fuzz`
/// writes them again.
#[test]
fn broken_fuzz_seeds_are_refused() {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/seeds/record_batches");
    let mut huge_length = records(1, keyed);
    common::put_varint(&mut huge_length, 1 << 40);
    huge_length.extend_from_slice(&[0; 8]);
    let mut million = RawHeader::new(1_000_000, 0, TS);
    million.max_timestamp = TS;
    let mut zstd_bomb = RawHeader::new(1, 4, TS);
    zstd_bomb.max_timestamp = TS;
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        ("broken-count", raw_batch(million, &records(1, keyed))),
        ("broken-length", hand_batch(0, 2, &huge_length)),
        (
            "broken-codec",
            hand_batch(0, 2, &records(2, keyed)).tap_codec(7),
        ),
        (
            "broken-keyless-lz4",
            hand_batch(3, 2, &records(2, |_| None)),
        ),
        ("broken-zstd-bomb", raw_batch(zstd_bomb, &bomb(4, 4 << 20))),
    ];
    if std::env::var_os("FJORD_WRITE_FUZZ_SEEDS").is_some() {
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let fuzz_config = LogConfig {
        max_decompressed_bytes: 1 << 20,
        ..compacted()
    };
    for (name, bytes) in &seeds {
        let stored = std::fs::read(dir.join(name)).unwrap();
        assert_eq!(&stored, bytes, "{name} changed: write the seeds again");
        assert!(validate(&stored, &fuzz_config).is_err(), "{name}");
    }
}
