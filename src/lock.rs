//! Advisory file locks (`flock` on Unix, through `std::fs::File::try_lock`):
//! one writer per results folder, one filler per cache entry.
//!
//! Input: the lock file's path. Output: a guard that holds the lock until it
//! is dropped or the process ends in any way (the kernel releases it with
//! the file descriptor, after a kill -9 too). The lock file stays behind; a
//! folder's holds the host and PID of its last holder, to name it in errors.

use std::fs::{File, TryLockError};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// A held lock; dropping it releases the lock.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

/// This process as `host pid N`.
fn holder() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown host".into());
    format!("host {} pid {}", host.trim(), std::process::id())
}

fn open(path: &Path) -> Result<File> {
    File::options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io(path, e))
}

/// Records this process as the holder in the lock file.
fn stamp(file: &mut File, path: &Path) -> Result<()> {
    let text = format!("{}\n", holder());
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| file.write_all(text.as_bytes()))
        .map_err(|e| Error::io(path, e))
}

/// Takes the lock at `path` now, or fails naming its holder (exit 4):
/// `what` says what the lock guards.
pub fn try_lock(path: &Path, what: &str) -> Result<Lock> {
    let mut file = open(path)?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => {
            let held_by = std::fs::read_to_string(path).unwrap_or_default();
            let held_by = match held_by.trim() {
                "" => "another process".to_string(),
                h => h.to_string(),
            };
            return Err(Error::Data {
                path: PathBuf::from(path),
                msg: format!("{what} is in use by {held_by}; wait for it to finish"),
            });
        }
        Err(TryLockError::Error(e)) => return Err(Error::io(path, e)),
    }
    stamp(&mut file, path)?;
    Ok(Lock { _file: file })
}

/// Takes the lock at `path`, waiting while another process holds it. The
/// file is left as it is (a waiter needs no holder's name).
pub fn lock(path: &Path) -> Result<Lock> {
    let file = open(path)?;
    file.lock().map_err(|e| Error::io(path, e))?;
    Ok(Lock { _file: file })
}
