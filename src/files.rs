//! Opening the files a command reads (models, data sets, labels): only
//! regular files. A FIFO, socket or device would block forever or never
//! end; each is refused with an `io::Error` of kind `InvalidInput` that
//! says what it is. Callers wrap it in their own error kind (data: exit 4,
//! model: exit 3).

use std::fs::File;
use std::io;
use std::path::Path;

/// `path` opened for reading when it is a regular file (symbolic links
/// followed).
pub fn open(path: &Path) -> io::Result<File> {
    regular(path)?;
    File::open(path)
}

/// Ok when `path` is a regular file; otherwise the error says what it is.
pub fn regular(path: &Path) -> io::Result<()> {
    let kind = std::fs::metadata(path)?.file_type();
    if kind.is_file() {
        return Ok(());
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("not a regular file ({})", describe(&kind)),
    ))
}

fn describe(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a FIFO";
        }
        if kind.is_socket() {
            return "a socket";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
    }
    if kind.is_dir() {
        return "a folder";
    }
    "a special file"
}
