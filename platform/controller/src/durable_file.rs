//! Small on-disk building blocks: CRC-checked records and files replaced
//! atomically (temp file, fsync, rename, fsync of the directory).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

/// Bytes before a record's payload: length (u32 LE) and CRC32C (u32 LE) of
/// the length bytes followed by the payload.
pub const RECORD_HEADER_LEN: usize = 8;

/// Largest payload accepted when reading a record (guards against a garbage
/// length making us allocate gigabytes).
pub const MAX_RECORD_LEN: usize = 256 * 1024 * 1024;

/// Encode one record: `len | crc32c(len ++ payload) | payload`.
pub fn encode_record(payload: &[u8], out: &mut Vec<u8>) {
    let len = (payload.len() as u32).to_le_bytes();
    let crc = crc32c::crc32c_append(crc32c::crc32c(&len), payload);
    out.extend_from_slice(&len);
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
}

/// What was found at the start of `buf`.
#[derive(Debug, PartialEq, Eq)]
pub enum RecordRead<'a> {
    /// A valid record and its total length (header included).
    Record(&'a [u8], usize),
    /// `buf` is empty.
    End,
    /// The bytes do not hold a valid record: short header, a length running
    /// past the end, a zero length or a CRC mismatch.
    Invalid,
}

/// Read one record from the start of `buf`.
pub fn read_record(buf: &[u8]) -> RecordRead<'_> {
    if buf.is_empty() {
        return RecordRead::End;
    }
    if buf.len() < RECORD_HEADER_LEN {
        return RecordRead::Invalid;
    }
    let len_bytes: [u8; 4] = [buf[0], buf[1], buf[2], buf[3]];
    let len = u32::from_le_bytes(len_bytes) as usize;
    let crc = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]);
    if len == 0 || len > MAX_RECORD_LEN || buf.len() - RECORD_HEADER_LEN < len {
        return RecordRead::Invalid;
    }
    let payload = &buf[RECORD_HEADER_LEN..RECORD_HEADER_LEN + len];
    if crc32c::crc32c_append(crc32c::crc32c(&len_bytes), payload) != crc {
        return RecordRead::Invalid;
    }
    RecordRead::Record(payload, RECORD_HEADER_LEN + len)
}

/// Replace `dir/name` with one record holding `payload`, atomically: a crash
/// leaves either the old file or the new one.
pub fn write_atomic(dir: &Path, name: &str, payload: &[u8]) -> io::Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let mut bytes = Vec::with_capacity(payload.len() + RECORD_HEADER_LEN);
    encode_record(payload, &mut bytes);
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join(name))?;
    sync_dir(dir)
}

/// Read a file written by [`write_atomic`]; `None` if it does not exist.
pub fn read_atomic(path: &Path) -> io::Result<Option<Vec<u8>>> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    match read_record(&bytes) {
        RecordRead::Record(payload, n) if n == bytes.len() => Ok(Some(payload.to_vec())),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is corrupt (bad length or CRC)", path.display()),
        )),
    }
}

/// fsync a directory so that renames and new files in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Open `path` for appending, creating it if needed.
pub fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_detect_damage() {
        let mut buf = Vec::new();
        encode_record(b"hello", &mut buf);
        assert_eq!(read_record(&buf), RecordRead::Record(b"hello", 13));
        assert_eq!(read_record(&buf[..10]), RecordRead::Invalid);
        assert_eq!(read_record(&buf[..3]), RecordRead::Invalid);
        assert_eq!(read_record(&[]), RecordRead::End);
        let mut flipped = buf.clone();
        flipped[9] ^= 1;
        assert_eq!(read_record(&flipped), RecordRead::Invalid);
        assert_eq!(read_record(&[0u8; 16]), RecordRead::Invalid);
    }

    #[test]
    fn atomic_file_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_atomic(&dir.path().join("vote")).unwrap(), None);
        write_atomic(dir.path(), "vote", b"one").unwrap();
        write_atomic(dir.path(), "vote", b"two").unwrap();
        assert_eq!(
            read_atomic(&dir.path().join("vote")).unwrap(),
            Some(b"two".to_vec())
        );
        fs::write(dir.path().join("vote"), b"garbage!!").unwrap();
        assert!(read_atomic(&dir.path().join("vote")).is_err());
    }
}
