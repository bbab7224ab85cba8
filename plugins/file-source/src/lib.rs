//! `file`: a source that tails one file, like `tail -F`: each line becomes a
//! record, and the position survives rotation, truncation and restarts.
//!
//! Config: `path` (required), the file; `from` = `beginning` (default) or
//! `end`: where to start in a file that exists when the source first starts
//! without a stored position. A file created later is read from its start.
//!
//! A record's value is the line without its `\n` (or `\r\n`); header `file`
//! is `path`; the timestamp is the time it was read. A last line without a
//! newline waits until one is written — except in a rotated-away file, which
//! is finished, and in a line longer than 1 MiB, which is cut there.
//!
//! The position is JSON: the file's identity (device and inode on Unix) and
//! the byte offset after the last line handed out, so a restart resumes
//! without losing or repeating lines. At the end of the file the source
//! checks `path` again:
//!
//! - another file there (renamed away, new one created): the old handle has
//!   been read to its end, so the new file is read from offset 0;
//! - the file shorter than what was read (truncated, copytruncate): read it
//!   again from offset 0.
//!
//! Where the platform gives no inode (WebAssembly: `std::os::wasi`'s is not
//! stable Rust), only the size is checked: a rotation is seen when the new
//! file is still shorter than the old read position, and a position restored
//! after a restart is trusted when the file is at least that long.
//!
//! Not for: lines written to a rotated-away file after the source moved on
//! (writers should reopen promptly), a rotation while the source is stopped
//! (it resumes at the start of the new file; the old file's tail is not
//! read), or globs and directories. Under WebAssembly the host must grant
//! the file's directory.

use fjord_sdk::{
    BatchWriter, Config, ConfigKey, Context, Error, Plugin, PluginInfo, Record, Source,
};
use serde::{Deserialize, Serialize};
use std::fs::{File, Metadata};
use std::io::{ErrorKind, Read, Seek, SeekFrom};

/// Bytes read from the file per `read` call.
const CHUNK: usize = 64 * 1024;
/// A line longer than this is handed out in pieces of this size.
const MAX_LINE: usize = 1024 * 1024;

/// Which file a handle is, as far as the platform can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Identity {
    dev: u64,
    ino: u64,
}

#[cfg(unix)]
fn identity(m: &Metadata) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity {
        dev: m.dev(),
        ino: m.ino(),
    })
}

#[cfg(not(unix))]
fn identity(_: &Metadata) -> Option<Identity> {
    None
}

/// What `position()` returns and `seek()` takes, as JSON.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Position {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<Identity>,
    offset: u64,
}

/// An open file and how far into it the source is.
#[derive(Debug)]
struct Tail {
    file: File,
    id: Option<Identity>,
    /// After the last line handed out.
    offset: u64,
    /// Read past `offset` but not handed out: at most one incomplete line,
    /// or complete lines left over when `max` was reached.
    pending: Vec<u8>,
}

impl Tail {
    fn open(file: File, meta: &Metadata, offset: u64) -> Result<Tail, Error> {
        let mut t = Tail {
            file,
            id: identity(meta),
            offset: 0,
            pending: Vec::new(),
        };
        t.restart_at(offset)?;
        Ok(t)
    }

    fn restart_at(&mut self, offset: u64) -> Result<(), Error> {
        self.file.seek(SeekFrom::Start(offset))?;
        self.offset = offset;
        self.pending.clear();
        Ok(())
    }

    /// Where the next `read` reads.
    fn read_pos(&self) -> u64 {
        self.offset + self.pending.len() as u64
    }

    /// Reads one chunk; false at the end of the file.
    fn read_more(&mut self) -> Result<bool, Error> {
        let start = self.pending.len();
        self.pending.resize(start + CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.pending[start..]) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.pending.truncate(start);
                    return Err(e.into());
                }
            }
        };
        self.pending.truncate(start + n);
        Ok(n > 0)
    }

    /// Hands out up to `max` complete lines; returns how many. With
    /// `finish`, an incomplete last line counts as complete.
    fn take_lines(&mut self, max: usize, finish: bool, mut emit: impl FnMut(&[u8])) -> usize {
        let mut used = 0;
        let mut count = 0;
        while count < max && used < self.pending.len() {
            let rest = &self.pending[used..];
            let (line, len) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], i + 1),
                None if rest.len() >= MAX_LINE => (&rest[..MAX_LINE], MAX_LINE),
                None if finish => (rest, rest.len()),
                None => break,
            };
            emit(line.strip_suffix(b"\r").unwrap_or(line));
            used += len;
            count += 1;
        }
        self.pending.drain(..used);
        self.offset += used as u64;
        count
    }
}

/// The source.
#[derive(Debug)]
pub struct FileSource {
    path: String,
    tail: Option<Tail>,
}

fn record(path: &str, line: &[u8], now_ms: i64) -> Record {
    Record::new(line)
        .with_header("file", path.as_bytes())
        .with_timestamp(now_ms)
}

/// What is at `path` now.
enum AtPath {
    Missing,
    Found(File, Metadata),
}

impl FileSource {
    fn open_path(&self) -> Result<AtPath, Error> {
        match File::open(&self.path) {
            Ok(f) => {
                let m = f.metadata()?;
                Ok(AtPath::Found(f, m))
            }
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(AtPath::Missing),
            Err(e) => Err(Error::msg(format!("opening `{}`: {e}", self.path))),
        }
    }

    /// At the end of the current handle: moves to a new file at `path` when
    /// it was replaced, or to offset 0 when truncated. Returns whether there
    /// may be more to read now. `room` is how many more records this poll
    /// takes: the old file's incomplete last line needs one.
    fn after_eof(&mut self, room: usize, out: &mut BatchWriter, now: i64) -> Result<bool, Error> {
        let (file, meta) = match self.open_path()? {
            // Renamed away, nothing new yet: keep the old handle.
            AtPath::Missing => return Ok(false),
            AtPath::Found(f, m) => (f, m),
        };
        let Some(tail) = self.tail.as_mut() else {
            return Ok(false);
        };
        let replaced = match (tail.id, identity(&meta)) {
            (Some(old), Some(new)) => old != new,
            // Without identities a shorter file is all that can be seen; it
            // is the same file truncated or a new one, read from 0 either way.
            _ => meta.len() < tail.read_pos(),
        };
        if replaced {
            if !tail.pending.is_empty() {
                if room == 0 {
                    return Ok(false);
                }
                tail.take_lines(1, true, |l| out.emit(&record(&self.path, l, now)));
            }
            self.tail = Some(Tail::open(file, &meta, 0)?);
            return Ok(true);
        }
        if tail.file.metadata()?.len() < tail.read_pos() {
            tail.restart_at(0)?;
            return Ok(true);
        }
        Ok(false)
    }
}

impl Plugin for FileSource {
    fn info() -> PluginInfo {
        PluginInfo::new("file", env!("CARGO_PKG_VERSION"))
            .description("tails a file: one record per line, across rotation and truncation")
            .key(ConfigKey::required("path", "the file to tail"))
            .key(ConfigKey::optional(
                "from",
                Some("beginning"),
                "`beginning` or `end`: where to start in an existing file when there is no stored position",
            ))
    }

    fn init(config: &Config) -> Result<Self, Error> {
        let path = config.require("path")?.to_owned();
        let from_end = match config.get("from").unwrap_or("beginning") {
            "beginning" => false,
            "end" => true,
            other => {
                return Err(Error::msg(format!(
                    "config key `from`: `{other}` is not `beginning` or `end`"
                )));
            }
        };
        let mut s = FileSource { path, tail: None };
        // Opened now, not at the first poll, so `end` means the end when the
        // source started and lines written in between are not skipped.
        if let AtPath::Found(f, m) = s.open_path()? {
            let start = if from_end { m.len() } else { 0 };
            s.tail = Some(Tail::open(f, &m, start)?);
        }
        Ok(s)
    }
}

#[fjord_sdk::source]
impl Source for FileSource {
    fn seek(&mut self, position: &[u8]) -> Result<(), Error> {
        let pos: Position = serde_json::from_slice(position)
            .map_err(|e| Error::msg(format!("stored position is not this source's: {e}")))?;
        self.tail = match self.open_path()? {
            AtPath::Missing => None,
            AtPath::Found(f, m) => {
                let same_file = match (pos.file, identity(&m)) {
                    (Some(old), Some(new)) => old == new,
                    _ => true,
                };
                // A different or shorter file was rotated or truncated while
                // the source was stopped: all of it is new.
                let start = if same_file && m.len() >= pos.offset {
                    pos.offset
                } else {
                    0
                };
                Some(Tail::open(f, &m, start)?)
            }
        };
        Ok(())
    }

    fn poll(&mut self, max: u32, out: &mut BatchWriter, _: &mut Context<'_>) -> Result<(), Error> {
        let max = max as usize;
        let now = fjord_sdk::now_ms();
        if self.tail.is_none() {
            match self.open_path()? {
                AtPath::Missing => return Ok(()),
                AtPath::Found(f, m) => self.tail = Some(Tail::open(f, &m, 0)?),
            }
        }
        while (out.len() as usize) < max {
            let Some(tail) = self.tail.as_mut() else {
                break;
            };
            let path = &self.path;
            tail.take_lines(max - out.len() as usize, false, |l| {
                out.emit(&record(path, l, now));
            });
            let room = max - out.len() as usize;
            if room == 0 {
                break;
            }
            if !tail.read_more()? && !self.after_eof(room, out, now)? {
                break;
            }
        }
        Ok(())
    }

    fn position(&self) -> Vec<u8> {
        let pos = self
            .tail
            .as_ref()
            .map_or(Position::default(), |t| Position {
                file: t.id,
                offset: t.offset,
            });
        // Serializing two integers cannot fail.
        serde_json::to_vec(&pos).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
