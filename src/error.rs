//! One error type for the library. Every variant says where: the file, and the
//! node, input or value inside it. `exit_code` maps kinds to the documented
//! process exit codes (docs/commands.md, "Exit codes").

use std::path::PathBuf;

/// A result whose error is faultsweep's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error of the library; [`Error::exit_code`] gives the process exit code of each kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file failed (exit 6).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The model file is not ONNX protobuf (exit 3).
    #[error("{path}: not a readable ONNX model: {msg}")]
    Decode {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// The model is ONNX but not a valid model (exit 3).
    #[error("{path}: invalid model: {msg}")]
    InvalidModel {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A scenario's `model.outputs` or `model.free_batch` does not fit the
    /// model (exit 3; a campaign reports it at the scenario's key, exit 8).
    #[error("{path}: `{key}`: {msg}")]
    ModelEdit {
        /// The model file.
        path: PathBuf,
        /// The scenario key of the edit.
        key: &'static str,
        /// What does not fit.
        msg: String,
    },
    /// A node uses an op, opset or attribute faultsweep does not support (exit 3).
    #[error("{path}: node '{node}' (op {op}, opset {opset}): unsupported: {msg}")]
    Unsupported {
        /// The model file.
        path: PathBuf,
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// The opset the model imports.
        opset: i64,
        /// What is unsupported.
        msg: String,
    },
    /// A node failed while running (exit 5).
    #[error("{path}: node '{node}' (op {op}, opset {opset}): {msg}")]
    Op {
        /// The model file.
        path: PathBuf,
        /// The node's name.
        node: String,
        /// The node's op type.
        op: String,
        /// The opset the model imports.
        opset: i64,
        /// What went wrong.
        msg: String,
    },
    /// An input tensor does not fit the model (exit 4).
    #[error("{path}: input '{input}': {msg}")]
    Input {
        /// The model file.
        path: PathBuf,
        /// The model input's name.
        input: String,
        /// How it does not fit.
        msg: String,
    },
    /// A data set or label file that does not read (exit 4).
    #[error("{path}: {msg}")]
    Data {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A cache entry whose contents fail their checks (exit 7).
    #[error("{path}: corrupt cache entry: {msg}")]
    CacheCorrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A wrong command line (exit 2).
    #[error("{0}")]
    Usage(String),
    /// `--verify` found rows that differ from the full forward pass (exit 10).
    #[error("verification failed: outcomes differ from the full forward pass:\n{0}")]
    Verify(String),
    /// A results folder whose files disagree with their rows or hashes (exit 11).
    #[error("{path}: the results do not match: {msg}")]
    Report {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        msg: String,
    },
    /// A cut that cannot be made (exit 4).
    #[error("cut {cut}: {msg}")]
    Cut {
        /// The cut (it lies before node `cut`).
        cut: usize,
        /// Why it cannot be made.
        msg: String,
    },
    /// A scenario that does not parse or does not fit its model. `key` is the
    /// path inside the YAML (`targets.layers.names[1]`); line and column are
    /// 1-based when known.
    #[error("{}: `{key}`: {msg}", at(path, *line, *column))]
    Scenario {
        /// The scenario file.
        path: PathBuf,
        /// 1-based line.
        line: Option<usize>,
        /// 1-based column.
        column: Option<usize>,
        /// The key path inside the YAML.
        key: String,
        /// What is wrong, and what is allowed.
        msg: String,
    },
    /// A fault list (binary or CSV) that does not read or does not fit the
    /// model. `line` is the CSV line (1-based, header = 1) when there is one.
    #[error("{}: {msg}", at(path, *line, None))]
    FaultList {
        /// The list file.
        path: PathBuf,
        /// 1-based CSV line.
        line: Option<usize>,
        /// What is wrong.
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

/// A libtorch error's message without the C++ backtrace that follows its
/// first line.
pub fn torch_message(e: &tch::TchError) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

impl Error {
    /// Process exit code for this kind of error (documented in docs/commands.md, "Exit codes"):
    /// 2 usage (clap), 3 model, 4 input/data/cut, 5 op, 6 I/O,
    /// 7 corrupt cache, 8 invalid scenario, 9 invalid fault list, 10 verify,
    /// 11 results that do not match (`report`); 0 when stdout was closed.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Decode { .. }
            | Error::InvalidModel { .. }
            | Error::ModelEdit { .. }
            | Error::Unsupported { .. } => 3,
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

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
