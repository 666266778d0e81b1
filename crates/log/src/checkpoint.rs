//! Small text files the log keeps beside its segments, each replaced atomically (write a
//! temporary file, fsync, rename, fsync the directory), so a crash leaves the old or the new
//! version, never a torn one.
//!
//! - `log-checkpoint`: `version`, `log_start_offset`, `recovery_point`, `cleaner_offset`, one per
//!   line. Written on flush, on log start changes and on close.
//! - `.clean-shutdown`: present only between a clean `close()` and the next open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;

use crate::error::{LogError, Result};

pub(crate) const LOG_CHECKPOINT: &str = "log-checkpoint";
pub(crate) const CLEAN_SHUTDOWN: &str = ".clean-shutdown";
const VERSION: i64 = 0;

/// Writes `contents` to `dir/name` atomically.
pub(crate) fn write_atomically(dir: &Path, name: &str, contents: &[u8]) -> Result<()> {
    let tmp = dir.join(format!("{name}.tmp"));
    let target = dir.join(name);
    {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(|e| LogError::io(&tmp, e))?;
        f.write_all(contents).map_err(|e| LogError::io(&tmp, e))?;
        f.sync_all().map_err(|e| LogError::io(&tmp, e))?;
    }
    std::fs::rename(&tmp, &target).map_err(|e| LogError::io(&target, e))?;
    sync_dir(dir)
}

/// fsyncs a directory so renames and creations in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| LogError::io(dir, e))
}

/// Offsets the log persists for itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogCheckpoint {
    pub log_start_offset: i64,
    pub recovery_point: i64,
    pub cleaner_offset: i64,
}

impl LogCheckpoint {
    pub fn write(&self, dir: &Path) -> Result<()> {
        let text = format!(
            "{VERSION}\n{}\n{}\n{}\n",
            self.log_start_offset, self.recovery_point, self.cleaner_offset
        );
        write_atomically(dir, LOG_CHECKPOINT, text.as_bytes())
    }

    /// `Ok(None)` when there is no checkpoint yet; an unreadable one is an error naming the file.
    pub fn read(dir: &Path) -> Result<Option<LogCheckpoint>> {
        let path = dir.join(LOG_CHECKPOINT);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(LogError::io(&path, e)),
        };
        let nums: Vec<i64> = text
            .lines()
            .map(|l| l.trim().parse::<i64>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| {
                LogError::io(
                    &path,
                    std::io::Error::new(std::io::ErrorKind::InvalidData, e),
                )
            })?;
        match nums.as_slice() {
            [VERSION, start, recovery, cleaner] => Ok(Some(LogCheckpoint {
                log_start_offset: *start,
                recovery_point: *recovery,
                cleaner_offset: *cleaner,
            })),
            _ => Err(LogError::io(
                &path,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "expected version 0 and three offsets",
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(LogCheckpoint::read(dir.path()).expect("read"), None);
        let c = LogCheckpoint {
            log_start_offset: 5,
            recovery_point: 100,
            cleaner_offset: 0,
        };
        c.write(dir.path()).expect("write");
        assert_eq!(LogCheckpoint::read(dir.path()).expect("read"), Some(c));
        std::fs::write(dir.path().join(LOG_CHECKPOINT), "0\nx\n").expect("write");
        assert!(LogCheckpoint::read(dir.path()).is_err());
    }
}
