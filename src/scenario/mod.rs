//! What to run: the YAML scenario (pipeline input). In: a scenario file.
//! Out: a [`ScenarioSpec`] (config as written, defaults filled in) and, once
//! resolved against a loaded model by [`Scenario::validate`], a validated
//! [`Campaign`] that the fault generator and the engine consume.
//!
//! The YAML crate (serde_norway, the maintained fork of the deprecated
//! serde_yaml) is used here only: a swap touches this file. Parse errors
//! name the file, line, column and key path (serde_path_to_error) and say
//! what is allowed; validation errors name the
//! key and, when it can be found in the text, its line.
//! Every key is documented in scenarios/README.md.

mod shorthand;
mod spec;
mod validate;

use std::path::{Path, PathBuf};

pub use spec::*;
pub use validate::{Campaign, RangeGuard, MAX_FAULTS, MAX_PER_INJECTION};

use crate::error::{Error, Result};

/// A parsed scenario with the text it came from (to locate keys in errors).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The scenario file.
    pub path: PathBuf,
    /// Its text as read.
    pub text: String,
    /// The parsed configuration.
    pub spec: ScenarioSpec,
}

impl Scenario {
    /// Reads and parses a scenario file.
    pub fn load(path: &Path) -> Result<Scenario> {
        let text = crate::files::open(path)
            .and_then(std::io::read_to_string)
            .map_err(|e| match e.kind() {
                // A FIFO or device would block or never end (exit 8).
                std::io::ErrorKind::InvalidInput => Error::Scenario {
                    path: path.to_path_buf(),
                    line: None,
                    column: None,
                    key: "(top level)".into(),
                    msg: e.to_string(),
                },
                _ => Error::io(path, e),
            })?;
        Scenario::parse(&text, path)
    }

    /// Parses scenario text; `path` names it in errors and gives the default
    /// campaign name.
    pub fn parse(text: &str, path: &Path) -> Result<Scenario> {
        // Enums are written as `{variant: value}` maps (singleton_map);
        // the path tracker sits inside so it sees every key.
        let mut track = serde_path_to_error::Track::new();
        let de = serde_path_to_error::Deserializer::new(
            serde_norway::Deserializer::from_str(text),
            &mut track,
        );
        let spec: ScenarioSpec = serde_norway::with::singleton_map_recursive::deserialize(de)
            .map_err(|e| parse_error(path, &track.path(), e))?;
        Ok(Scenario {
            path: path.to_path_buf(),
            text: text.to_string(),
            spec,
        })
    }

    /// An error about `key` (a path like `targets.layers.names[1]`), with
    /// the line and column of the key when it can be found in the text.
    pub fn error(&self, key: &str, msg: impl Into<String>) -> Error {
        let (line, column) = locate(&self.text, key).unzip();
        Error::Scenario {
            path: self.path.clone(),
            line,
            column,
            key: key.to_string(),
            msg: msg.into(),
        }
    }
}

fn parse_error(path: &Path, key: &serde_path_to_error::Path, e: serde_norway::Error) -> Error {
    let key = match key.to_string() {
        p if p == "." => "(top level)".to_string(),
        p => p,
    };
    let loc = e.location();
    // serde_norway writes "KEY: MESSAGE at line L column C"; keep MESSAGE.
    let mut msg = e.to_string();
    if let Some(i) = msg.find(" at line ").filter(|_| loc.is_some()) {
        msg.truncate(i);
    }
    // ... and drops its own copy of the key path (`targets: unknown field`).
    if let Some((head, rest)) = msg.split_once(": ") {
        if key.starts_with(head) {
            msg = rest.to_string();
        }
    }
    Error::Scenario {
        path: path.to_path_buf(),
        line: loc.as_ref().map(|l| l.line()),
        column: loc.as_ref().map(|l| l.column()),
        key,
        msg,
    }
}

/// The scenario as YAML (enums as `{variant: value}` maps, so the text reads
/// like a hand-written scenario and parses back to the same spec).
pub fn to_yaml(spec: &ScenarioSpec) -> String {
    try_yaml(spec).expect("a scenario with UTF-8 paths always serializes")
}

/// As [`to_yaml`]; fails on a path that is not UTF-8 (YAML is text).
fn try_yaml(spec: &ScenarioSpec) -> std::result::Result<String, serde_norway::Error> {
    let mut out = Vec::new();
    let mut ser = serde_norway::Serializer::new(&mut out);
    serde_norway::with::singleton_map_recursive::serialize(spec, &mut ser)?;
    Ok(String::from_utf8(out).expect("YAML is UTF-8"))
}

/// Writes the effective scenario so that it replays the campaign exactly
/// (atomically: a failed write leaves no truncated scenario behind).
pub fn save(spec: &ScenarioSpec, path: &Path) -> Result<()> {
    let text = try_yaml(spec).map_err(|e| {
        Error::Usage(format!(
            "{}: cannot record the scenario: {e} (give paths that are UTF-8)",
            path.display()
        ))
    })?;
    crate::output::write_atomic(path, text.as_bytes())
}

/// The 1-based line and column of `key` (dotted path with `[i]` indices) in
/// block-style YAML `text`; the deepest part found. Best effort: flow
/// mappings and anchors are not followed.
pub fn locate(text: &str, key: &str) -> Option<(usize, usize)> {
    let lines: Vec<&str> = text.lines().collect();
    let mut found = None;
    let (mut from, mut parent) = (0usize, -1i64);
    for seg in key.split('.') {
        let (name, indices) = split_indices(seg);
        let Some((line, col)) = find_key(&lines, from, parent, name) else {
            break;
        };
        found = Some((line + 1, col + 1));
        (from, parent) = (line, col as i64);
        for i in indices {
            match find_item(&lines, from + 1, parent, i) {
                Some((l, c)) => {
                    found = Some((l + 1, c + 1));
                    (from, parent) = (l, c as i64);
                }
                None => return found,
            }
        }
    }
    found
}

/// `names[1][2]` -> ("names", [1, 2]).
fn split_indices(seg: &str) -> (&str, Vec<usize>) {
    let name_end = seg.find('[').unwrap_or(seg.len());
    let indices = seg[name_end..]
        .split(['[', ']'])
        .filter_map(|s| s.parse().ok())
        .collect();
    (&seg[..name_end], indices)
}

/// Indentation and content of a line, with a leading `- ` counted as
/// indentation (a mapping inside a list item).
fn content(line: &str) -> (usize, &str) {
    let trimmed = line.trim_start();
    let mut indent = line.len() - trimmed.len();
    let mut rest = trimmed;
    while let Some(r) = rest.strip_prefix("- ") {
        let r2 = r.trim_start();
        indent += rest.len() - r2.len();
        rest = r2;
    }
    (indent, rest)
}

fn find_key(lines: &[&str], from: usize, parent: i64, name: &str) -> Option<(usize, usize)> {
    for (i, line) in lines.iter().enumerate().skip(from) {
        let (indent, rest) = content(line);
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        if i > from && (indent as i64) <= parent && !line.trim_start().starts_with('-') {
            return None;
        }
        if (indent as i64) > parent && rest.strip_prefix(name).is_some_and(|r| r.starts_with(':')) {
            return Some((i, indent));
        }
    }
    None
}

/// The `index`-th `- ` item of a block list starting at line `from`.
fn find_item(lines: &[&str], from: usize, parent: i64, index: usize) -> Option<(usize, usize)> {
    let mut seen = 0;
    let mut item_indent = None;
    for (i, line) in lines.iter().enumerate().skip(from) {
        let trimmed = line.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let indent = line.len() - trimmed.len();
        if (indent as i64) <= parent && !trimmed.starts_with('-') {
            return None;
        }
        if trimmed.starts_with('-') && item_indent.is_none_or(|ii| ii == indent) {
            item_indent = Some(indent);
            if seen == index {
                return Some((i, indent + 1));
            }
            seen += 1;
        }
    }
    None
}
