//! The binary fault-list file (bincode 1.x, kept behind this one module).
//! In/out: a [`FaultList`]. Layout: an 8-byte magic `FSFAULTS`, the format
//! version (u32, little endian), the row count (u64, little endian), then
//! bincode's encoding of the list (fixed-width integers, little endian). A
//! mismatch names the field that differs.

use std::path::Path;

use bincode::Options;

use super::FaultList;
use crate::error::{Error, Result};

pub const MAGIC: &[u8; 8] = b"FSFAULTS";
/// Bump when [`FaultList`] or anything inside it changes shape.
pub const VERSION: u32 = 1;
const HEADER: usize = 8 + 4 + 8;

fn options() -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
}

/// The file's bytes.
pub fn encode(list: &FaultList) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + 64 * list.faults.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&(list.faults.len() as u64).to_le_bytes());
    options()
        .serialize_into(&mut out, list)
        .expect("serializing into memory cannot fail");
    out
}

/// A list from the file's bytes; `path` names the file in errors.
pub fn decode(bytes: &[u8], path: &Path) -> Result<FaultList> {
    let bad = |msg: String| Error::FaultList {
        path: path.to_path_buf(),
        line: None,
        msg,
    };
    if bytes.len() < HEADER {
        return Err(bad(format!(
            "header: {} bytes, a fault list starts with {HEADER}",
            bytes.len()
        )));
    }
    if &bytes[..8] != MAGIC {
        return Err(bad(format!(
            "magic: expected {:?}, found {:?} (not a faultsweep fault list; CSV files end in .csv)",
            String::from_utf8_lossy(MAGIC),
            String::from_utf8_lossy(&bytes[..8])
        )));
    }
    let version = u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes"));
    if version != VERSION {
        return Err(bad(format!(
            "format version: file has {version}, this build reads {VERSION}"
        )));
    }
    let count = u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes"));
    let payload = &bytes[HEADER..];
    let list: FaultList = options()
        .with_limit(payload.len() as u64)
        .reject_trailing_bytes()
        .deserialize(payload)
        .map_err(|e| bad(format!("payload: {e}")))?;
    if list.faults.len() as u64 != count {
        return Err(bad(format!(
            "row count: header says {count}, payload holds {}",
            list.faults.len()
        )));
    }
    Ok(list)
}

/// Writes the list atomically: a failed write (a full disk) leaves no
/// partial file behind.
pub fn write(list: &FaultList, path: &Path) -> Result<()> {
    crate::report::write_atomic(path, &encode(list))
}

pub fn read(path: &Path) -> Result<FaultList> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    decode(&bytes, path)
}
