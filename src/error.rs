//! One error type for the library. Every variant says where: the file, and the
//! node, input or value inside it. `exit_code` maps kinds to the documented
//! process exit codes (docs/commands.md, "Exit codes").

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
    #[error("verification failed: outcomes differ from the full forward pass:\n{0}")]
    Verify(String),
    #[error("{path}: the results do not match: {msg}")]
    Report { path: PathBuf, msg: String },
    #[error("cut {cut}: {msg}")]
    Cut { cut: usize, msg: String },
    /// A scenario that does not parse or does not fit its model. `key` is the
    /// path inside the YAML (`targets.layers.names[1]`); line and column are
    /// 1-based when known.
    #[error("{}: `{key}`: {msg}", at(path, *line, *column))]
    Scenario {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        msg: String,
    },
    /// A fault list (binary or CSV) that does not read or does not fit the
    /// model. `line` is the CSV line (1-based, header = 1) when there is one.
    #[error("{}: {msg}", at(path, *line, None))]
    FaultList {
        path: PathBuf,
        line: Option<usize>,
        msg: String,
    },
    /// Standard output was closed by its reader (`| head`): the command
    /// ends quietly with 0, its results being complete already.
    #[error("standard output was closed")]
    StdoutClosed,
}

/// `file:line:column` with the parts that are known.
fn at(path: &std::path::Path, line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!("{}:{l}:{c}", path.display()),
        (Some(l), None) => format!("{}:{l}", path.display()),
        _ => path.display().to_string(),
    }
}

impl Error {
    /// Process exit code for this kind of error (documented in docs/commands.md, "Exit codes"):
    /// 2 usage (clap), 3 model, 4 input/data/cut, 5 op, 6 I/O,
    /// 7 corrupt cache, 8 invalid scenario, 9 invalid fault list, 10 verify,
    /// 11 results that do not match (`report`); 0 when stdout was closed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Decode { .. } | Error::InvalidModel { .. } | Error::Unsupported { .. } => 3,
            Error::Usage(_) => 2,
            Error::Input { .. } | Error::Data { .. } | Error::Cut { .. } => 4,
            Error::Op { .. } => 5,
            Error::Io { .. } => 6,
            Error::CacheCorrupt { .. } => 7,
            Error::Scenario { .. } => 8,
            Error::FaultList { .. } => 9,
            Error::Verify(_) => 10,
            Error::Report { .. } => 11,
            Error::StdoutClosed => 0,
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
