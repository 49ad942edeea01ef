//! golden.csv and ranges.csv in the results directory. In: the golden
//! run's rows and node ranges. Out: the two files, written atomically
//! through the `csv` crate.

use std::path::Path;

use super::{GoldenRow, NodeRange};
use crate::error::Result;
use crate::output::write_atomic;
use crate::report::CsvTable;

/// One row per sample: id, source, label, correctness, NaN/Inf flag, then
/// top-k classes and scores.
pub fn write_golden_csv(path: &Path, rows: &[GoldenRow]) -> Result<()> {
    let k = rows.first().map_or(0, |r| r.top.len());
    let mut t = CsvTable::new();
    let mut header: Vec<String> = ["sample_id", "source", "label", "correct", "nonfinite"]
        .map(String::from)
        .to_vec();
    for i in 1..=k {
        header.extend([format!("top{i}_class"), format!("top{i}_score")]);
    }
    t.row(header);
    for r in rows {
        let mut row = vec![
            r.sample.id.to_string(),
            r.sample.source.clone(),
            r.sample.label.map_or(String::new(), |l| l.to_string()),
            r.correct.map_or(String::new(), |c| c.to_string()),
            r.nonfinite.to_string(),
        ];
        for (c, score) in &r.top {
            row.extend([c.to_string(), format!("{score:e}")]);
        }
        t.row(row);
    }
    write_atomic(path, &t.into_bytes())
}

/// One row per node with a float output: index, name, min, max.
pub fn write_ranges_csv(path: &Path, ranges: &[NodeRange]) -> Result<()> {
    let mut t = CsvTable::new();
    t.row(["index", "node", "min", "max"]);
    for r in ranges {
        t.row([
            r.index.to_string(),
            r.node.clone(),
            format!("{:e}", r.min),
            format!("{:e}", r.max),
        ]);
    }
    write_atomic(path, &t.into_bytes())
}
