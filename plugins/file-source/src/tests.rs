use super::*;
use fjord_sdk::testing::Harness;
use std::io::Write;
use std::path::{Path, PathBuf};

struct Fixture {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("app.log");
        Fixture { _dir: dir, path }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    fn append(&self, text: &str) {
        append_to(&self.path, text);
    }

    fn source(&self, extra: &[(&str, &str)]) -> Harness<FileSource> {
        let mut config = vec![("path", self.path())];
        config.extend_from_slice(extra);
        Harness::new(&config).unwrap()
    }
}

fn append_to(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap();
    f.write_all(text.as_bytes()).unwrap();
}

fn values(records: &[Record]) -> Vec<&str> {
    records.iter().map(|r| r.value_str().unwrap()).collect()
}

fn poll(h: &mut Harness<FileSource>, max: u32) -> (Vec<String>, Vec<u8>) {
    let (records, pos) = h.poll(max).unwrap();
    (
        values(&records).into_iter().map(String::from).collect(),
        pos,
    )
}

fn lines(h: &mut Harness<FileSource>) -> Vec<String> {
    poll(h, 1000).0
}

#[test]
fn appended_lines_become_records() {
    let fx = Fixture::new();
    fx.append("a\nb\n");
    let mut h = fx.source(&[]);
    assert_eq!(lines(&mut h), ["a", "b"]);
    assert!(lines(&mut h).is_empty());
    fx.append("c\r\n\nd\n");
    assert_eq!(lines(&mut h), ["c", "", "d"]);
}

#[test]
fn records_carry_the_path_and_a_timestamp() {
    let fx = Fixture::new();
    fx.append("x\n");
    let mut h = fx.source(&[]);
    let before = fjord_sdk::now_ms();
    let (records, _) = h.poll(10).unwrap();
    assert_eq!(records.len(), 1);
    let file = records[0]
        .headers
        .iter()
        .find(|h| h.name == "file")
        .unwrap();
    assert_eq!(file.value.as_deref(), Some(fx.path().as_bytes()));
    assert!(records[0].timestamp >= before && records[0].timestamp <= fjord_sdk::now_ms());
    assert!(records[0].key.is_none());
}

#[test]
fn a_partial_line_waits_for_its_newline() {
    let fx = Fixture::new();
    fx.append("first\npar");
    let mut h = fx.source(&[]);
    let (got, pos) = poll(&mut h, 10);
    assert_eq!(got, ["first"]);
    assert_eq!(serde_json::from_slice::<Position>(&pos).unwrap().offset, 6);
    fx.append("t");
    assert!(lines(&mut h).is_empty());
    fx.append("ial\nnext\n");
    assert_eq!(lines(&mut h), ["partial", "next"]);
}

#[test]
fn poll_returns_at_most_max() {
    let fx = Fixture::new();
    fx.append("1\n2\n3\n4\n5\n");
    let mut h = fx.source(&[]);
    let (a, pos_a) = poll(&mut h, 2);
    let (b, pos_b) = poll(&mut h, 2);
    let (c, _) = poll(&mut h, 2);
    assert_eq!(a, ["1", "2"]);
    assert_eq!(b, ["3", "4"]);
    assert_eq!(c, ["5"]);
    assert_eq!(
        serde_json::from_slice::<Position>(&pos_a).unwrap().offset,
        4
    );
    assert_eq!(
        serde_json::from_slice::<Position>(&pos_b).unwrap().offset,
        8
    );
    assert!(poll(&mut h, 0).0.is_empty());
}

#[test]
fn rename_rotation_finishes_the_old_file_first() {
    let fx = Fixture::new();
    fx.append("1\n2\n");
    let mut h = fx.source(&[]);
    assert_eq!(lines(&mut h), ["1", "2"]);
    // Written to the old file before the rotation was seen, including an
    // unterminated last line.
    fx.append("3\ntail");
    let rotated = fx.path.with_extension("log.1");
    std::fs::rename(&fx.path, &rotated).unwrap();
    // The old handle is read to its end; the incomplete line waits, since
    // nothing is at the path yet.
    assert_eq!(lines(&mut h), ["3"]);
    assert!(rotated.exists());
    fx.append("new-1\nnew-2\n");
    let mut got = Vec::new();
    for _ in 0..3 {
        got.extend(lines(&mut h));
    }
    assert_eq!(got, ["tail", "new-1", "new-2"]);
    fx.append("new-3\n");
    assert_eq!(lines(&mut h), ["new-3"]);
}

#[cfg(unix)]
#[test]
fn rotation_is_seen_even_when_the_new_file_is_longer() {
    let fx = Fixture::new();
    fx.append("old\n");
    let mut h = fx.source(&[]);
    assert_eq!(lines(&mut h), ["old"]);
    std::fs::rename(&fx.path, fx.path.with_extension("1")).unwrap();
    fx.append("a much longer first line\nsecond\n");
    assert_eq!(lines(&mut h), ["a much longer first line", "second"]);
}

#[test]
fn rotation_with_a_full_poll_loses_nothing() {
    let fx = Fixture::new();
    fx.append("a\nb\nc");
    let mut h = fx.source(&[]);
    std::fs::rename(&fx.path, fx.path.with_extension("1")).unwrap();
    fx.append("d\n");
    let mut got = Vec::new();
    for _ in 0..6 {
        got.extend(poll(&mut h, 1).0);
    }
    assert_eq!(got, ["a", "b", "c", "d"]);
}

#[test]
fn truncation_restarts_from_the_beginning() {
    let fx = Fixture::new();
    fx.append("aaaa\nbbbb\n");
    let mut h = fx.source(&[]);
    assert_eq!(lines(&mut h), ["aaaa", "bbbb"]);
    // copytruncate: same file, emptied, then written again.
    std::fs::OpenOptions::new()
        .write(true)
        .open(&fx.path)
        .unwrap()
        .set_len(0)
        .unwrap();
    fx.append("c\n");
    assert_eq!(lines(&mut h), ["c"]);
    fx.append("d\n");
    assert_eq!(lines(&mut h), ["d"]);
}

#[test]
fn restart_resumes_without_loss_or_duplicates() {
    let fx = Fixture::new();
    fx.append("1\n2\n3\n4");
    let mut h = fx.source(&[]);
    let (got, pos) = poll(&mut h, 2);
    assert_eq!(got, ["1", "2"]);
    drop(h);
    fx.append("\n5\n");
    // A new instance, as after a crash: `from = end` must not apply.
    let mut h = fx.source(&[("from", "end")]);
    h.seek(&pos).unwrap();
    assert_eq!(lines(&mut h), ["3", "4", "5"]);
    let (_, pos) = poll(&mut h, 10);
    let mut h = fx.source(&[]);
    h.seek(&pos).unwrap();
    assert!(lines(&mut h).is_empty());
    fx.append("6\n");
    assert_eq!(lines(&mut h), ["6"]);
}

#[test]
fn restart_after_truncation_while_stopped_reads_from_zero() {
    let fx = Fixture::new();
    fx.append("one\ntwo\n");
    let mut h = fx.source(&[]);
    let (_, pos) = poll(&mut h, 10);
    drop(h);
    std::fs::write(&fx.path, "x\n").unwrap();
    let mut h = fx.source(&[]);
    h.seek(&pos).unwrap();
    assert_eq!(lines(&mut h), ["x"]);
}

#[cfg(unix)]
#[test]
fn restart_after_rotation_while_stopped_reads_the_new_file() {
    let fx = Fixture::new();
    fx.append("one\n");
    let mut h = fx.source(&[]);
    let (_, pos) = poll(&mut h, 10);
    drop(h);
    std::fs::rename(&fx.path, fx.path.with_extension("1")).unwrap();
    fx.append("a new file, longer than the old\n");
    let mut h = fx.source(&[]);
    h.seek(&pos).unwrap();
    assert_eq!(lines(&mut h), ["a new file, longer than the old"]);
}

#[test]
fn from_end_skips_what_is_already_there() {
    let fx = Fixture::new();
    fx.append("old\n");
    let mut h = fx.source(&[("from", "end")]);
    assert!(lines(&mut h).is_empty());
    fx.append("new\n");
    assert_eq!(lines(&mut h), ["new"]);
}

#[test]
fn a_missing_file_is_read_from_its_start_once_created() {
    let fx = Fixture::new();
    let mut h = fx.source(&[("from", "end")]);
    assert!(lines(&mut h).is_empty());
    let (_, pos) = poll(&mut h, 10);
    assert_eq!(serde_json::from_slice::<Position>(&pos).unwrap().offset, 0);
    fx.append("first\n");
    assert_eq!(lines(&mut h), ["first"]);
}

#[test]
fn seek_before_the_file_exists() {
    let fx = Fixture::new();
    let mut h = fx.source(&[]);
    h.seek(br#"{"offset":0}"#).unwrap();
    fx.append("a\n");
    assert_eq!(lines(&mut h), ["a"]);
}

#[test]
fn a_very_long_line_is_cut() {
    let fx = Fixture::new();
    let long = "x".repeat(MAX_LINE + 10);
    fx.append(&long);
    let mut h = fx.source(&[]);
    let (records, _) = h.poll(10).unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_ref().unwrap().len(), MAX_LINE);
    fx.append("\n");
    assert_eq!(lines(&mut h), ["x".repeat(10)]);
}

#[test]
fn position_is_json_with_offset_and_identity() {
    let fx = Fixture::new();
    fx.append("abc\n");
    let mut h = fx.source(&[]);
    let (_, pos) = poll(&mut h, 10);
    let json: serde_json::Value = serde_json::from_slice(&pos).unwrap();
    assert_eq!(json["offset"], 4);
    if cfg!(unix) {
        assert!(json["file"]["ino"].is_u64(), "{json}");
    }
}

#[test]
fn bad_config_and_positions_are_refused() {
    let err = FileSource::init(&Config::default()).unwrap_err();
    assert!(err.message().contains("`path`"), "{err}");
    let fx = Fixture::new();
    let err = FileSource::init(&Config::from_pairs([
        ("path", fx.path()),
        ("from", "middle"),
    ]))
    .unwrap_err();
    assert!(err.message().contains("`from`"), "{err}");
    let mut h = fx.source(&[]);
    assert!(h.seek(b"not json").is_err());
}

#[test]
fn info_lists_every_key() {
    let info = FileSource::info();
    assert_eq!(info.name, "file");
    let names: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["path", "from"]);
}
