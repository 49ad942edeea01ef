//! One error type for the library. Every variant says where: the file, and the
//! node, input or value inside it. `exit_code` maps kinds to the documented
//! process exit codes (README, "Exit codes").

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a readable ONNX model: {msg}")]
    Decode { path: PathBuf, msg: String },
    #[error("{path}: invalid model: {msg}")]
    InvalidModel { path: PathBuf, msg: String },
    #[error("{path}: node '{node}' (op {op}, opset {opset}): unsupported: {msg}")]
    Unsupported {
        path: PathBuf,
        node: String,
        op: String,
        opset: i64,
        msg: String,
    },
    #[error("{path}: node '{node}' (op {op}, opset {opset}): {msg}")]
    Op {
        path: PathBuf,
        node: String,
        op: String,
        opset: i64,
        msg: String,
    },
    #[error("{path}: input '{input}': {msg}")]
    Input {
        path: PathBuf,
        input: String,
        msg: String,
    },
    #[error("{path}: {msg}")]
    Data { path: PathBuf, msg: String },
    #[error("{path}: corrupt cache entry: {msg}")]
    CacheCorrupt { path: PathBuf, msg: String },
    #[error("{0}")]
    Usage(String),
    #[error("cut {cut}: {msg}")]
    Cut { cut: usize, msg: String },
}

impl Error {
    /// Process exit code for this kind of error (documented in the README).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Decode { .. } | Error::InvalidModel { .. } | Error::Unsupported { .. } => 3,
            Error::Usage(_) => 2,
            Error::Input { .. } | Error::Data { .. } | Error::Cut { .. } => 4,
            Error::Op { .. } => 5,
            Error::Io { .. } => 6,
            Error::CacheCorrupt { .. } => 7,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
