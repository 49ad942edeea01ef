//! Step 7, report: per-injection rows streamed to CSV, and summaries of the
//! outcome rates per layer, bit, op type, number format and overall, each
//! with a 95% Wilson interval.

pub mod heatmap;
pub mod stats;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::classify::Outcome;
use crate::error::{Error, Result};

/// The 95% Wilson score interval of `k` successes in `n` trials.
pub fn wilson(k: u64, n: u64) -> (f64, f64) {
    if n == 0 {
        return (0.0, 1.0);
    }
    let (z, n, p) = (1.959_963_984_540_054_f64, n as f64, k as f64 / n as f64);
    let denom = 1.0 + z * z / n;
    let centre = p + z * z / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (
        ((centre - half) / denom).max(0.0),
        ((centre + half) / denom).min(1.0),
    )
}

/// Outcome counts of one group.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Counts {
    pub n: u64,
    pub masked: u64,
    pub benign: u64,
    pub sde: u64,
    pub due: u64,
}

impl Counts {
    pub fn add(&mut self, o: Outcome) {
        self.n += 1;
        match o {
            Outcome::Masked => self.masked += 1,
            Outcome::Benign => self.benign += 1,
            Outcome::Sde => self.sde += 1,
            Outcome::Due => self.due += 1,
        }
    }

    /// (rate, low, high) of one outcome.
    pub fn rate(&self, k: u64) -> (f64, f64, f64) {
        let (lo, hi) = wilson(k, self.n);
        (
            if self.n == 0 {
                0.0
            } else {
                k as f64 / self.n as f64
            },
            lo,
            hi,
        )
    }
}

/// Outcome counts per group, for each grouping (`layer`, `bit`, ...).
#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub overall: Counts,
    pub groups: BTreeMap<String, BTreeMap<String, Counts>>,
}

impl Summary {
    pub fn add(&mut self, keys: &[(&str, String)], o: Outcome) {
        for (grouping, key) in keys {
            self.groups
                .entry(grouping.to_string())
                .or_default()
                .entry(key.clone())
                .or_default()
                .add(o);
        }
    }

    fn rows(&self) -> Vec<(String, String, &Counts)> {
        let mut rows = vec![("overall".to_string(), "all".to_string(), &self.overall)];
        for (g, m) in &self.groups {
            rows.extend(m.iter().map(|(k, c)| (g.clone(), k.clone(), c)));
        }
        rows
    }

    /// summary.csv: one row per group with counts and rates with intervals.
    pub fn csv(&self) -> String {
        let mut s = String::from("grouping,group,n,masked,benign,sde,due");
        for o in ["sde", "due", "masked"] {
            s += &format!(",{o}_rate,{o}_low,{o}_high");
        }
        s.push('\n');
        for (g, k, c) in self.rows() {
            s += &format!(
                "{g},{},{},{},{},{},{}",
                csv_field(&k),
                c.n,
                c.masked,
                c.benign,
                c.sde,
                c.due
            );
            for x in [c.sde, c.due, c.masked] {
                let (r, lo, hi) = c.rate(x);
                s += &format!(",{r:.6},{lo:.6},{hi:.6}");
            }
            s.push('\n');
        }
        s
    }

    /// summary.md: a table per grouping.
    pub fn markdown(&self) -> String {
        let pct = |c: &Counts, k: u64| {
            let (r, lo, hi) = c.rate(k);
            format!("{:.2}% [{:.2}, {:.2}]", 100.0 * r, 100.0 * lo, 100.0 * hi)
        };
        let mut s = String::from("# Campaign summary\n\nRates with 95% Wilson intervals.\n");
        let mut last = String::new();
        for (g, k, c) in self.rows() {
            if g != last {
                s += &format!("\n## {g}\n\n| {g} | n | SDE | DUE | masked |\n| --- | ---: | --- | --- | --- |\n");
                last = g.clone();
            }
            s += &format!(
                "| {k} | {} | {} | {} | {} |\n",
                c.n,
                pct(c, c.sde),
                pct(c, c.due),
                pct(c, c.masked)
            );
        }
        s
    }

    /// The overall line printed at the end of a run.
    pub fn headline(&self) -> String {
        let c = &self.overall;
        let pct = |k: u64| {
            let (r, lo, hi) = c.rate(k);
            format!("{:.2}% [{:.2}, {:.2}]", 100.0 * r, 100.0 * lo, 100.0 * hi)
        };
        format!(
            "{} injections: SDE {}, DUE {}, masked {}, benign {:.2}%",
            c.n,
            pct(c.sde),
            pct(c.due),
            pct(c.masked),
            100.0 * c.benign as f64 / c.n.max(1) as f64
        )
    }
}

pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Writes `bytes` to `path` atomically (see [`write_via_temp`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_via_temp(path, |out| {
        out.write_all(bytes).map_err(|e| Error::io(path, e))
    })
}

/// Writes `path` through a temporary file beside it, which `write` fills
/// and which is synced and renamed into place, so a reader never sees half
/// a file. When anything fails (a full disk, a bad row), the temporary file
/// is removed and `path` is left as it was; errors name `path`.
pub fn write_via_temp<T>(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<File>) -> Result<T>,
) -> Result<T> {
    let tmp = temp_name(path);
    let io = |e: std::io::Error| Error::io(path, e);
    let written = (|| {
        let mut out = BufWriter::new(File::create(&tmp).map_err(io)?);
        let value = write(&mut out)?;
        let file = out.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
        Ok(value)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Where `path` is written before it is renamed into place.
fn temp_name(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// A CSV file written row by row and flushed after every batch.
pub struct CsvSink {
    path: PathBuf,
    out: BufWriter<File>,
}

impl CsvSink {
    pub fn create(path: &Path, header: &[&str]) -> Result<Self> {
        let file = File::create(path).map_err(|e| Error::io(path, e))?;
        let mut sink = CsvSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        };
        sink.row(header.iter().map(|s| s.to_string()))?;
        Ok(sink)
    }

    /// Appends to an existing file (a resumed campaign).
    pub fn append(path: &Path) -> Result<Self> {
        let file = File::options()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            out: BufWriter::new(file),
        })
    }

    pub fn row(&mut self, fields: impl IntoIterator<Item = String>) -> Result<()> {
        let line: Vec<String> = fields.into_iter().map(|f| csv_field(&f)).collect();
        writeln!(self.out, "{}", line.join(",")).map_err(|e| Error::io(&self.path, e))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|e| Error::io(&self.path, e))
    }
}
