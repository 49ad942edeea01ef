//! golden.csv and ranges.csv in the results directory.

use std::path::Path;

use super::{GoldenRow, NodeRange};
use crate::error::Result;
use crate::report::{csv_field, write_atomic};

/// One row per sample: id, source, label, correctness, NaN/Inf flag, then
/// top-k classes and scores.
pub fn write_golden_csv(path: &Path, rows: &[GoldenRow]) -> Result<()> {
    let k = rows.first().map_or(0, |r| r.top.len());
    let mut s = String::from("sample_id,source,label,correct,nonfinite");
    for i in 1..=k {
        s += &format!(",top{i}_class,top{i}_score");
    }
    s.push('\n');
    for r in rows {
        let label = r.sample.label.map_or(String::new(), |l| l.to_string());
        let correct = r.correct.map_or(String::new(), |c| c.to_string());
        s += &format!(
            "{},{},{label},{correct},{}",
            r.sample.id,
            csv_field(&r.sample.source),
            r.nonfinite
        );
        for (c, score) in &r.top {
            s += &format!(",{c},{score:e}");
        }
        s.push('\n');
    }
    write_atomic(path, s.as_bytes())
}

/// One row per node with a float output: index, name, min, max.
pub fn write_ranges_csv(path: &Path, ranges: &[NodeRange]) -> Result<()> {
    let mut s = String::from("index,node,min,max\n");
    for r in ranges {
        s += &format!(
            "{},{},{:e},{:e}\n",
            r.index,
            csv_field(&r.node),
            r.min,
            r.max
        );
    }
    write_atomic(path, s.as_bytes())
}
