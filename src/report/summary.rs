//! The summary tables: outcome counts per group of each grouping (overall,
//! protection, sweep point, layer, bit per number format, ...), written as
//! summary.csv, summary.md and summary.json, and the line printed after a
//! run. In: [`Group`]s filled an injection at a time. Out: the three texts.
//! Invariants: tables and their rows come in a fixed order (a grouping's
//! place, then each row's rank: numbers numerically, layers topologically),
//! whatever order the injections were counted in; every table says what its
//! `n` counts.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::stats::{wilson, Group, Rate};
use super::CsvTable;
use crate::classify::Outcome;
use crate::faults::{FaultModel, NumFormat};

/// The outcomes given as rates, in column order.
const RATED: [Outcome; 3] = [Outcome::Sde, Outcome::Due, Outcome::Masked];

/// A summary table, in the order the tables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grouping {
    /// Every row in one group.
    Overall,
    /// Per protection (the unprotected model, then each hardened one).
    Protection,
    /// Per sweep point.
    Sweep,
    /// Per layer.
    Layer,
    /// Bits mean different things in different formats: one table each.
    Bit(NumFormat),
    /// Per op type.
    Op,
    /// Per number format.
    Dtype,
    /// Per fault model.
    Model,
    /// Per target (neurons, weights).
    Target,
}

impl Grouping {
    /// The name in summary.csv, summary.json and the headings of summary.md.
    pub fn name(self) -> String {
        match self {
            Grouping::Overall => "overall".into(),
            Grouping::Protection => "protection".into(),
            Grouping::Sweep => "sweep".into(),
            Grouping::Layer => "layer".into(),
            Grouping::Bit(format) => format!("bit:{}", format.name()),
            Grouping::Op => "op".into(),
            Grouping::Dtype => "dtype".into(),
            Grouping::Model => "model".into(),
            Grouping::Target => "target".into(),
        }
    }

    /// Whether each fault of a run counts (with the run's outcome), rather
    /// than each run once.
    fn per_fault(self) -> bool {
        !matches!(
            self,
            Grouping::Overall | Grouping::Protection | Grouping::Sweep
        )
    }
}

/// A row of a table: its label and where it sorts (by `rank`, then label).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    rank: Vec<u32>,
    /// The row's label in the table.
    pub label: String,
}

impl Key {
    /// A row labelled `label` that sorts by `rank`.
    pub fn new(rank: Vec<u32>, label: impl Into<String>) -> Key {
        Key {
            rank,
            label: label.into(),
        }
    }

    /// A row sorted by its label alone.
    pub fn label(label: impl Into<String>) -> Key {
        Key::new(Vec::new(), label)
    }

    /// The bit table's row of a fault: a bit model's bits (numerically,
    /// single bits first, `30+29` for two), named when it is not a flip
    /// (`31 (stuck_at_1)`); a value model by its name, after every bit.
    pub fn bits(model: &FaultModel, bits: &[u8]) -> Key {
        let flips = match model {
            FaultModel::BitFlip => 0,
            FaultModel::StuckAt0 => 1,
            FaultModel::StuckAt1 => 2,
            _ => return Key::new(vec![VALUE_MODEL], model.name()),
        };
        let mut rank = vec![flips, bits.len() as u32];
        rank.extend(bits.iter().map(|&b| u32::from(b)));
        let listed: Vec<String> = bits.iter().map(u8::to_string).collect();
        let label = match model {
            FaultModel::BitFlip => listed.join("+"),
            _ => format!("{} ({})", listed.join("+"), model.name()),
        };
        Key::new(rank, label)
    }

    /// A row of a value fault model (it acts on no bit).
    pub fn is_value_model(&self) -> bool {
        self.rank.first() == Some(&VALUE_MODEL)
    }
}

/// The rank of value fault models in a bit table: after every bit model.
const VALUE_MODEL: u32 = u32::MAX;

/// Outcome counts per group of every table.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// Per table, its rows in order.
    pub tables: BTreeMap<Grouping, BTreeMap<Key, Group>>,
    /// Some injection ran on several samples (a permanent fault): a run is
    /// then one inference of an injection, and a row one fault on one sample.
    pub several_samples: bool,
    /// What runs saw inside the network, beside their outcomes.
    pub inside: Inside,
}

/// Runs whose values held NaN or Inf inside the network (`first_nonfinite`)
/// and runs a monitored node caught (`detected`, PyTorchALFI's monitors),
/// whatever their outcome: a ReLU or Clip may remove an Inf before the
/// output, so these tell what a detector there would see.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Inside {
    pub runs: u64,
    pub nonfinite: u64,
    pub detected: u64,
}

impl Inside {
    pub fn add(&mut self, nonfinite: bool, detected: bool) {
        self.runs += 1;
        self.nonfinite += u64::from(nonfinite);
        self.detected += u64::from(detected);
    }

    /// The share of runs `count` is, with its 95% Wilson interval over runs.
    fn rate(&self, count: u64) -> Rate {
        let n = self.runs as f64;
        let rate = if self.runs == 0 {
            0.0
        } else {
            count as f64 / n
        };
        let (low, high) = wilson(rate, n);
        Rate {
            rate,
            low,
            high,
            n_eff: n,
        }
    }

    /// The summary.md section.
    fn markdown(&self, unit: &str) -> String {
        format!(
            "
## inside the network

n counts {unit}.

| seen inside | n | rate |
| --- | ---: | --- |
             | NaN or Inf in some node's output | {} | {} |
| detected by a monitored node | {} | {} |
",
            self.runs,
            percent(&self.rate(self.nonfinite)),
            self.runs,
            percent(&self.rate(self.detected)),
        )
    }

    fn json(&self) -> Value {
        let rate = |count| {
            let r = self.rate(count);
            json!({"count": count, "rate": r.rate, "low": r.low, "high": r.high})
        };
        json!({"runs": self.runs, "nonfinite": rate(self.nonfinite), "detected": rate(self.detected)})
    }
}

impl Summary {
    /// The row `key` of table `grouping`, created empty if missing.
    pub fn group_mut(&mut self, grouping: Grouping, key: Key) -> &mut Group {
        self.tables
            .entry(grouping)
            .or_default()
            .entry(key)
            .or_default()
    }

    /// Every run once.
    pub fn overall(&self) -> Group {
        let table = self.tables.get(&Grouping::Overall);
        table
            .and_then(|t| t.values().next().cloned())
            .unwrap_or_default()
    }

    /// What `n` counts in a table: `injections` or `inferences` (runs),
    /// `faults` or `rows` (a fault on one sample).
    pub fn unit(&self, grouping: Grouping) -> &'static str {
        match (grouping.per_fault(), self.several_samples) {
            (false, false) => "injections",
            (false, true) => "inferences",
            (true, false) => "faults",
            (true, true) => "rows",
        }
    }

    fn rows(&self) -> impl Iterator<Item = (Grouping, &Key, &Group)> {
        self.tables
            .iter()
            .flat_map(|(g, rows)| rows.iter().map(move |(k, c)| (*g, k, c)))
    }

    /// summary.csv: one row per group with its unit, counts, and rates with
    /// intervals and the effective sample size behind them.
    pub fn csv(&self) -> String {
        let mut t = CsvTable::new();
        let mut header: Vec<String> = ["grouping", "group", "unit", "n", "injections"]
            .into_iter()
            .chain(["masked", "benign", "sde", "due"])
            .map(String::from)
            .collect();
        for o in RATED {
            let o = o.name();
            header.extend(["rate", "low", "high", "n_eff"].map(|c| format!("{o}_{c}")));
        }
        t.row(header);
        for (g, key, group) in self.rows() {
            let c = &group.counts;
            let mut row = vec![
                g.name(),
                key.label.clone(),
                self.unit(g).to_string(),
                c.n.to_string(),
                group.injections.to_string(),
                c.masked.to_string(),
                c.benign.to_string(),
                c.sde.to_string(),
                c.due.to_string(),
            ];
            for o in RATED {
                let r = group.rate(o);
                row.push(format!("{:.6}", r.rate));
                row.push(format!("{:.6}", r.low));
                row.push(format!("{:.6}", r.high));
                row.push(format!("{:.1}", r.n_eff));
            }
            t.row(row);
        }
        t.into_string()
    }

    /// summary.json: the overall row and every table in order, each row with
    /// the columns of summary.csv.
    pub fn json(&self) -> Value {
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|(g, rows)| {
                let rows: Vec<Value> = rows.iter().map(|(k, c)| json_row(k, c)).collect();
                json!({"grouping": g.name(), "unit": self.unit(*g), "rows": rows})
            })
            .collect();
        let overall = json_row(&Key::label("all"), &self.overall());
        json!({"overall": overall, "tables": tables, "inside": self.inside.json()})
    }

    /// summary.md: what the intervals are, then a table per grouping, each
    /// saying what its `n` counts.
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Campaign summary\n\n");
        s += INTERVALS;
        let runs = self.unit(Grouping::Overall);
        for (g, rows) in &self.tables {
            let name = g.name();
            s += &format!(
                "\n## {name}\n\n{}\n\n| {name} | n | injections | SDE | DUE | masked |\n| --- | ---: | ---: | --- | --- | --- |\n",
                unit_meaning(self.unit(*g))
            );
            for (key, group) in rows {
                let c = &group.counts;
                s += &format!("| {} | {} | {} |", key.label, c.n, group.injections);
                for o in RATED {
                    s += &format!(" {} |", percent(&group.rate(o)));
                }
                s.push('\n');
            }
        }
        s += &self.inside.markdown(runs);
        s
    }

    /// The overall line printed at the end of a run.
    pub fn headline(&self) -> String {
        let g = self.overall();
        let c = &g.counts;
        let counted = if self.several_samples {
            format!("{} inferences of {} injections", c.n, g.injections)
        } else {
            format!("{} injections", c.n)
        };
        format!(
            "{counted}: SDE {}, DUE {}, masked {}, benign {:.2}%",
            percent(&g.rate(Outcome::Sde)),
            percent(&g.rate(Outcome::Due)),
            percent(&g.rate(Outcome::Masked)),
            100.0 * g.rate(Outcome::Benign).rate
        )
    }
}

const INTERVALS: &str =
    "Rates with 95% Wilson intervals, clustered by injection. An injection (one \
or more faults drawn together) is the campaign's independent trial; its rows \
(each fault, on each sample a permanent fault stays for) share their cause. \
So each interval is Wilson's at an effective sample size: n divided by the \
design effect estimated from how the injections' own rates spread, kept \
between the number of injections and n, and equal to the number of \
injections when no row or every row has the outcome. With one row per \
injection it is the plain Wilson interval of n. summary.csv gives each \
effective size (`*_n_eff`).\n";

fn unit_meaning(unit: &str) -> &'static str {
    match unit {
        "injections" => "n counts injections (one inference each).",
        "inferences" => "n counts inferences: each injection on each sample of its scope.",
        "faults" => "n counts faults, each with its injection's outcome.",
        _ => "n counts rows of injections.csv: each fault on each sample of its scope, with that inference's outcome.",
    }
}

fn percent(r: &Rate) -> String {
    format!(
        "{:.2}% [{:.2}, {:.2}]",
        100.0 * r.rate,
        100.0 * r.low,
        100.0 * r.high
    )
}

fn json_row(key: &Key, group: &Group) -> Value {
    let c = &group.counts;
    let mut row = Map::new();
    row.insert("group".into(), json!(key.label));
    for (name, count) in [
        ("n", c.n),
        ("injections", group.injections),
        ("masked", c.masked),
        ("benign", c.benign),
        ("sde", c.sde),
        ("due", c.due),
    ] {
        row.insert(name.into(), json!(count));
    }
    for o in RATED {
        let r = group.rate(o);
        let o = o.name();
        row.insert(format!("{o}_rate"), json!(r.rate));
        row.insert(format!("{o}_low"), json!(r.low));
        row.insert(format!("{o}_high"), json!(r.high));
        row.insert(format!("{o}_n_eff"), json!(r.n_eff));
    }
    Value::Object(row)
}
