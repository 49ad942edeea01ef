//! The task's measures over the runs (boxes added and lost, pixels or
//! positions changed, how far values moved): per column of
//! `injections.csv`, the runs that gave it, their mean and largest value.
//!
//! Sums are kept in fixed point (integers of 1e-9), so any order of the
//! runs (a resume, a merge of shards) gives the same bytes. A cell left
//! empty (a DUE's) is not counted; an infinite value counts in the largest
//! value only.

use serde_json::{json, Value};

/// Units of a fixed-point sum.
const SCALE: f64 = 1e9;

/// The tally of one column.
#[derive(Debug, Default, Clone, PartialEq)]
struct Column {
    name: String,
    runs: u64,
    finite: u64,
    sum: i128,
    max: Option<f64>,
}

impl Column {
    fn add(&mut self, v: f64) {
        self.runs += 1;
        self.max = Some(self.max.map_or(v, |m| m.max(v)));
        if v.is_finite() {
            self.finite += 1;
            self.sum += (v * SCALE).round() as i128;
        }
    }

    fn mean(&self) -> Option<f64> {
        (self.finite > 0).then(|| self.sum as f64 / SCALE / self.finite as f64)
    }
}

/// The task's measures, by column in `injections.csv` order.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Measures {
    columns: Vec<Column>,
}

impl Measures {
    /// Empty tallies of these columns (none for classification).
    pub fn new(columns: &[&str]) -> Measures {
        let columns = (columns.iter())
            .map(|c| Column {
                name: c.to_string(),
                ..Default::default()
            })
            .collect();
        Measures { columns }
    }

    /// No task measures (classification).
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// One run's cells, in column order, as written in its row.
    pub fn add<S: AsRef<str>>(&mut self, cells: &[S]) {
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            if let Ok(v) = cell.as_ref().parse::<f64>() {
                column.add(v);
            }
        }
    }

    /// summary.csv rows (grouping `measure`): the column as group, then
    /// the `measure_runs`, `measure_mean` and `measure_max` cells.
    pub fn csv_rows(&self) -> Vec<Vec<(String, String)>> {
        let text = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6e}"));
        (self.columns.iter())
            .map(|c| {
                vec![
                    ("group".into(), c.name.clone()),
                    ("measure_runs".into(), c.runs.to_string()),
                    ("measure_mean".into(), text(c.mean())),
                    ("measure_max".into(), text(c.max)),
                ]
            })
            .collect()
    }

    /// The columns summary.csv gives them.
    pub const CSV_COLUMNS: [&'static str; 3] = ["measure_runs", "measure_mean", "measure_max"];

    /// summary.json's `measures`: per column its runs, mean and max.
    pub fn json(&self) -> Value {
        (self.columns.iter())
            .map(|c| {
                (
                    c.name.clone(),
                    json!({"runs": c.runs, "mean": c.mean(), "max": c.max}),
                )
            })
            .collect::<serde_json::Map<_, _>>()
            .into()
    }

    /// summary.md's section (empty for classification).
    pub fn markdown(&self, runs: &str) -> String {
        if self.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "\n## task measures\n\nOver the {runs} that are not DUEs (a masked run measures 0 change); the mean over finite values.\n\n| measure | {runs} | mean | max |\n| --- | ---: | ---: | ---: |\n"
        );
        let text = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.4}"));
        for c in &self.columns {
            s += &format!(
                "| {} | {} | {} | {} |\n",
                c.name,
                c.runs,
                text(c.mean()),
                text(c.max)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_skip_empty_cells_and_do_not_depend_on_the_order() {
        let rows = [["1", "0.5"], ["", ""], ["3", "inf"], ["0", "0.25"]];
        let mut a = Measures::new(&["fp", "shift"]);
        let mut b = Measures::new(&["fp", "shift"]);
        rows.iter().for_each(|r| a.add(r));
        rows.iter().rev().for_each(|r| b.add(r));
        assert_eq!(a, b);
        let json = a.json();
        assert_eq!(json["fp"]["runs"], 3);
        assert_eq!(json["fp"]["mean"], json!(4.0 / 3.0));
        assert_eq!(json["fp"]["max"], json!(3.0));
        assert_eq!(json["shift"]["mean"], json!(0.375));
        assert!(a.markdown("runs").contains("| shift | 3 | 0.3750 | inf |"));
    }
}
