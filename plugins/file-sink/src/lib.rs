//! `file`: a sink that appends each record's value, then a newline, to one
//! file — for exporting a topic as lines, or feeding a tool that tails files.
//!
//! Config: `path` (required), the file, created if missing and never
//! truncated; `fsync` (default `true`): `flush` waits until the lines are on
//! disk (`sync_data`), so the pipeline commits only what a crash keeps. With
//! `false`, `flush` hands the lines to the operating system only.
//!
//! A record without a value is an empty line; a value containing newlines is
//! written as it is, so it reads back as several lines.
//!
//! Not for: several pipelines writing one file (lines may interleave), or
//! rotating the file itself (a renamed file keeps receiving lines until the
//! sink is restarted; use a tool that signals or copy-truncates instead).
//!
//! Under WebAssembly the host must grant the file's directory.

use fjord_sdk::{Config, ConfigKey, Context, Error, Plugin, PluginInfo, RecordRef, Sink};
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};

/// The sink. Lines wait in `out`'s buffer until `flush`.
#[derive(Debug)]
pub struct FileSink {
    path: String,
    out: BufWriter<File>,
    fsync: bool,
}

impl Plugin for FileSink {
    fn info() -> PluginInfo {
        PluginInfo::new("file", env!("CARGO_PKG_VERSION"))
            .description("appends each record's value as a line to a file")
            .key(ConfigKey::required(
                "path",
                "the file to append to; created if missing",
            ))
            .key(ConfigKey::optional(
                "fsync",
                Some("true"),
                "`true` to make each flush durable on disk (sync_data)",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let path = config.require("path")?.to_owned();
        let fsync = config.parse_or("fsync", true)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| Error::msg(format!("config key `path`: cannot open `{path}`: {e}")))?;
        Ok(FileSink {
            path,
            out: BufWriter::with_capacity(64 * 1024, file),
            fsync,
        })
    }
}

#[fjord_sdk::sink]
impl Sink for FileSink {
    fn write(&mut self, record: RecordRef<'_>, _: &mut Context<'_>) -> Result<(), Error> {
        let value = record.value.unwrap_or_default();
        self.out
            .write_all(value)
            .and_then(|()| self.out.write_all(b"\n"))
            .map_err(|e| Error::msg(format!("writing `{}`: {e}", self.path)))
    }

    fn flush(&mut self, _: &mut Context<'_>) -> Result<(), Error> {
        self.out
            .flush()
            .map_err(|e| Error::msg(format!("writing `{}`: {e}", self.path)))?;
        if self.fsync {
            self.out
                .get_ref()
                .sync_data()
                .map_err(|e| Error::msg(format!("syncing `{}`: {e}", self.path)))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_sdk::testing::Harness;
    use fjord_sdk::{Record, Sink};

    fn path_in(dir: &tempfile::TempDir, name: &str) -> String {
        dir.path().join(name).to_str().unwrap().to_owned()
    }

    #[test]
    fn appends_values_as_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir, "out.log");
        let mut h = Harness::<FileSink>::new(&[("path", &path)]).unwrap();
        h.write(vec![Record::new("a").with_key("k"), Record::new("b c")])
            .unwrap();
        h.write(vec![Record::new("d")]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "a\nb c\nd\n");
    }

    #[test]
    fn never_truncates_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir, "out.log");
        std::fs::write(&path, "old\n").unwrap();
        let mut h = Harness::<FileSink>::new(&[("path", &path), ("fsync", "false")]).unwrap();
        h.write(vec![Record::new("new")]).unwrap();
        drop(h);
        let mut h = Harness::<FileSink>::new(&[("path", &path)]).unwrap();
        h.write(vec![Record::new("again")]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "old\nnew\nagain\n");
    }

    #[test]
    fn null_value_is_an_empty_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir, "out.log");
        let mut h = Harness::<FileSink>::new(&[("path", &path)]).unwrap();
        let keyless = Record {
            value: None,
            ..Record::default()
        };
        h.write(vec![keyless, Record::new("x")]).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "\nx\n");
    }

    #[test]
    fn lines_reach_the_file_on_flush() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_in(&dir, "out.log");
        let mut h = Harness::<FileSink>::new(&[("path", &path)]).unwrap();
        let batch = fjord_sdk::encode(&[Record::new("buffered")]);
        let mut ctx = Context::new(&mut h.host);
        for r in fjord_sdk::BatchReader::new(&batch).unwrap() {
            h.plugin.write(r.unwrap(), &mut ctx).unwrap();
        }
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        h.plugin.flush(&mut ctx).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "buffered\n");
    }

    #[test]
    fn bad_config_names_the_key() {
        let err = FileSink::init(&Config::default()).unwrap_err();
        assert!(err.message().contains("`path`"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let missing_dir = path_in(&dir, "no/such/dir/out.log");
        let err =
            FileSink::init(&Config::from_pairs([("path", missing_dir.as_str())])).unwrap_err();
        assert!(err.message().contains("`path`"), "{err}");
        let path = path_in(&dir, "out.log");
        let err = FileSink::init(&Config::from_pairs([
            ("path", path.as_str()),
            ("fsync", "maybe"),
        ]))
        .unwrap_err();
        assert!(err.message().contains("`fsync`"), "{err}");
    }

    #[test]
    fn info_lists_every_key() {
        let info = FileSink::info();
        assert_eq!(info.name, "file");
        let names: Vec<&str> = info.config_keys.iter().map(|k| k.name.as_str()).collect();
        assert_eq!(names, ["path", "fsync"]);
    }
}
