//! One broker per data directory: two processes appending to the same
//! segments would corrupt them, so the registry holds an exclusive lock on
//! `<data dir>/.lock` for as long as it is open.
//!
//! The lock is `flock(2)` (through `fs4`): the kernel drops it when the
//! process dies, so a killed broker never leaves a stale lock behind. The
//! file holds the owner's pid, for the error message only.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::error::BrokerError;

/// Held while the data directory is open; dropping it unlocks.
#[derive(Debug)]
pub(crate) struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    pub fn acquire(data_dir: &Path) -> Result<DataDirLock, BrokerError> {
        let path = data_dir.join(".lock");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| BrokerError::metadata(&path, e))?;
        match fs4::FileExt::try_lock(&file) {
            Ok(()) => {}
            Err(fs4::TryLockError::WouldBlock) => {
                let mut owner = String::new();
                let _ = file.read_to_string(&mut owner);
                let owner = owner.trim();
                return Err(BrokerError::DataDirInUse {
                    path: data_dir.to_path_buf(),
                    holder: if owner.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {owner})")
                    },
                });
            }
            Err(fs4::TryLockError::Error(e)) => return Err(BrokerError::metadata(&path, e)),
        }
        let pid = std::process::id().to_string();
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()))
            .map_err(|e| BrokerError::metadata(&path, e))?;
        Ok(DataDirLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains("is in use by another fjord server"), "{err}");
        assert!(
            err.contains(&format!("(pid {})", std::process::id())),
            "{err}"
        );
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
