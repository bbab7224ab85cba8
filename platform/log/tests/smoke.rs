mod common;

use fjord_log::{Log, LogConfig};
use kafka_protocol::records::Compression;

#[test]
fn append_read_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 10_000,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config.clone()).unwrap();
    for i in 0..100 {
        let mut b = common::batch(10, 100, 1000 + i * 10, Compression::None);
        let info = log.append(&mut b, 0).unwrap();
        assert_eq!(info.first_offset, i * 10);
    }
    assert!(log.segment_count() > 5);
    let mut offset = 0;
    let mut records = 0;
    while offset < log.log_end_offset() {
        let read = log.read(offset, 3000, i64::MAX).unwrap();
        let recs = common::decode_all(&read.slice.unwrap().bytes().unwrap());
        assert_eq!(recs[0].offset, offset);
        records += recs.len();
        offset = recs.last().unwrap().offset + 1;
    }
    assert_eq!(records, 1000);
    let ts = log.offset_for_timestamp(1505).unwrap().unwrap();
    assert_eq!(ts.offset, 505);
    log.close().unwrap();
    drop(log);
    let log = Log::open(dir.path(), config).unwrap();
    assert_eq!(log.log_end_offset(), 1000);
    assert_eq!(log.offset_for_timestamp(1505).unwrap().unwrap().offset, 505);
    let mut b = common::batch(10, 100, 5000, Compression::Zstd);
    assert_eq!(log.append(&mut b, 1).unwrap().first_offset, 1000);
}
