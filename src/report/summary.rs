//! The summaries: outcome counts per group of each grouping (overall,
//! protection, sweep point, layer, bit per number format, ...), then the
//! accuracy under faults, the paired comparisons of hardened models, the
//! convergence curve (CMA) and the FIT table, written as summary.csv,
//! summary.md and summary.json, and the line printed after a run. In:
//! [`Group`]s and the other tallies, filled an injection at a time. Out: the
//! three texts. Invariants: tables and their rows come in a fixed order (a
//! grouping's place, then each row's rank: numbers numerically, layers
//! topologically), whatever order the injections were counted in; every
//! table says what its `n` counts; every interval is at the campaign's
//! confidence level.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::accuracy::{ModelAccuracy, SpreadStats};
use super::cma::Cma;
use super::compare::{Paired, COMPARED};
use super::fit::{self, BitRates, FitInputs};
use super::measures::Measures;
use super::stats::{wilson, Confidence, Event, Group, Rate};
use super::CsvTable;
use crate::classify::Outcome;
use crate::faults::{FaultModel, NumFormat};

/// The events given as rates, in column order.
const RATED: [Event; 4] = [Event::Sde, Event::Due, Event::Masked, Event::SdeTopK];

/// A summary table, in the order the tables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Grouping {
    /// Every row in one group.
    Overall,
    /// InjectTF2's semantics (`per: inference`): per sweep point, every
    /// inference drawn, the clean ones as masked.
    PerInference,
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
            Grouping::PerInference => "per_inference".into(),
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
            Grouping::Overall | Grouping::PerInference | Grouping::Protection | Grouping::Sweep
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

/// Outcome counts per group of every table, and the other tallies.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Summary {
    /// How the summaries are computed and named.
    pub settings: Settings,
    /// Per table, its rows in order.
    pub tables: BTreeMap<Grouping, BTreeMap<Key, Group>>,
    /// Some injection ran on several samples (a permanent fault): a run is
    /// then one inference of an injection, and a row one fault on one sample.
    pub several_samples: bool,
    /// What runs saw inside the network, beside their outcomes.
    pub inside: Inside,
    /// The fault-free model's correct runs and labelled runs.
    pub golden_correct: (u64, u64),
    /// Accuracy under faults per protection (`none`, then each hardened
    /// model).
    pub accuracy: BTreeMap<Key, ModelAccuracy>,
    /// Per hardened model, the plain model against it: overall (`all`),
    /// then per layer.
    pub comparisons: BTreeMap<Key, BTreeMap<Key, Paired>>,
    /// The SDE rate over the first injections.
    pub cma: Cma,
    /// Single-bit flip rates per target, format and bit (with `fit`).
    pub bit_rates: BitRates,
    /// The task's measures over the runs (none for classification).
    pub measures: Measures,
}

/// What the summaries need from the scenario.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The confidence level of every interval (`outputs.confidence`).
    pub confidence: Confidence,
    /// The k of the top-k rate (`outputs.top_k`).
    pub top_k: u32,
    /// The task classifies (top-k and accuracy mean something); other
    /// tasks' tables leave the top-k rate out.
    pub classification: bool,
    /// The FIT inputs (`outputs.fit`), if any.
    pub fit: Option<FitInputs>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            confidence: Confidence::default(),
            top_k: 5,
            classification: true,
            fit: None,
        }
    }
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

    /// The share of runs `count` is, with its Wilson interval over runs.
    fn rate(&self, count: u64, z: f64) -> Rate {
        let n = self.runs as f64;
        let rate = if self.runs == 0 {
            0.0
        } else {
            count as f64 / n
        };
        let (low, high) = wilson(rate, n, z);
        Rate {
            rate,
            low,
            high,
            n_eff: n,
        }
    }

    /// The summary.md section.
    fn markdown(&self, unit: &str, z: f64) -> String {
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
            percent(&self.rate(self.nonfinite, z)),
            self.runs,
            percent(&self.rate(self.detected, z)),
        )
    }

    fn json(&self, z: f64) -> Value {
        let rate = |count| {
            let r = self.rate(count, z);
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
        if grouping == Grouping::PerInference {
            return "drawn inferences";
        }
        match (grouping.per_fault(), self.several_samples) {
            (false, false) => "injections",
            (false, true) => "inferences",
            (true, false) => "faults",
            (true, true) => "rows",
        }
    }

    fn z(&self) -> f64 {
        self.settings.confidence.z
    }

    /// The events the rate tables give, in column order.
    fn rated(&self) -> &'static [Event] {
        match self.settings.classification {
            true => &RATED,
            false => &RATED[..3],
        }
    }

    /// An event's column name: `sde`, `due`, `masked`, `sde_top5`.
    fn event_name(&self, e: Event) -> String {
        match e {
            Event::SdeTopK => format!("sde_top{}", self.settings.top_k),
            Event::Masked => "masked".into(),
            Event::Benign => "benign".into(),
            Event::Sde => "sde".into(),
            Event::Due => "due".into(),
        }
    }

    /// A rate table row's counts and rates (each with its interval and
    /// effective size), by column name, in column order.
    fn rate_fields(&self, group: &Group) -> (Fields<u64>, Fields<f64>) {
        let c = &group.counts;
        let counts = [
            ("n".to_string(), c.n),
            ("injections".to_string(), group.injections),
            ("masked".to_string(), c.masked),
            ("benign".to_string(), c.benign),
            ("sde".to_string(), c.sde),
            ("due".to_string(), c.due),
            (self.event_name(Event::SdeTopK), c.sde_top_k),
        ];
        let counts = &counts[..counts.len() - usize::from(!self.settings.classification)];
        let mut rates = Vec::new();
        for &e in self.rated() {
            let r = group.rate(e, self.z());
            let o = self.event_name(e);
            rates.push((format!("{o}_rate"), r.rate));
            rates.push((format!("{o}_low"), r.low));
            rates.push((format!("{o}_high"), r.high));
            rates.push((format!("{o}_n_eff"), r.n_eff));
        }
        (counts.to_vec(), rates)
    }

    /// The cells of a rate table's row, by column name.
    fn rate_cells(&self, key: &Key, group: &Group) -> Cells {
        let (counts, rates) = self.rate_fields(group);
        let mut row = Cells::new();
        row.insert("group".into(), key.label.clone());
        row.extend(counts.into_iter().map(|(k, v)| (k, v.to_string())));
        row.extend(rates.into_iter().map(|(k, v)| {
            let text = match k.ends_with("_n_eff") {
                true => format!("{v:.1}"),
                false => format!("{v:.6}"),
            };
            (k, text)
        }));
        row
    }

    /// Every row of summary.csv, in order, as (grouping, unit, cells).
    fn csv_rows(&self) -> Vec<(String, String, Cells)> {
        let mut rows = Vec::new();
        for (g, rows_of) in &self.tables {
            for (key, group) in rows_of {
                rows.push((g.name(), self.unit(*g).into(), self.rate_cells(key, group)));
            }
        }
        let runs = self.unit(Grouping::Overall).to_string();
        for (key, cells) in self.accuracy_rows() {
            let mut row = Cells::new();
            row.insert("group".into(), key);
            for (name, value) in cells {
                let text = accuracy_text(&name, value);
                row.insert(name, text);
            }
            rows.push(("accuracy".into(), runs.clone(), row));
        }
        for (versus, event, key, d) in self.differences() {
            let mut row = difference_cells(&d);
            row.insert("group".into(), key.label.clone());
            row.insert("versus".into(), versus.label.clone());
            let grouping = format!("compare:{}", self.event_name(event));
            let unit = if key.label == "all" { &runs } else { "faults" };
            rows.push((grouping, unit.into(), row));
        }
        for cells in self.measures.csv_rows() {
            rows.push(("measure".into(), runs.clone(), cells.into_iter().collect()));
        }
        for g in self.cma.points() {
            let key = Key::label(g.injections.to_string());
            rows.push(("cma".into(), runs.clone(), self.rate_cells(&key, &g)));
        }
        if let Some(inputs) = &self.settings.fit {
            for r in fit::table(&self.bit_rates, inputs, self.z()) {
                let mut row = Cells::new();
                row.insert("group".into(), fit_label(&r));
                row.insert("n".into(), r.n.to_string());
                row.insert(
                    "raw_fit_per_bit".into(),
                    format!("{:e}", inputs.raw_per_bit),
                );
                row.insert("bits_held".into(), r.bits_held.to_string());
                for (e, (v, low, high)) in fit::EVENTS.into_iter().zip(r.fit) {
                    let o = self.event_name(e);
                    row.insert(format!("fit_{o}"), format!("{v:.6e}"));
                    row.insert(format!("fit_{o}_low"), format!("{low:.6e}"));
                    row.insert(format!("fit_{o}_high"), format!("{high:.6e}"));
                }
                let grouping = format!("fit:{}:{}", r.target.name(), r.format.name());
                rows.push((grouping, "faults".into(), row));
            }
        }
        rows
    }

    /// The columns of summary.csv: every table's, the rate columns first.
    fn csv_header(&self) -> Vec<String> {
        let mut header: Vec<String> = ["grouping", "group", "unit", "n", "injections"]
            .into_iter()
            .chain(["masked", "benign", "sde", "due"])
            .map(String::from)
            .collect();
        if self.settings.classification {
            header.push(self.event_name(Event::SdeTopK));
        }
        for &e in self.rated() {
            let o = self.event_name(e);
            header.extend(["rate", "low", "high", "n_eff"].map(|c| format!("{o}_{c}")));
        }
        for kind in ["accuracy", "agreement"] {
            header.extend(["mean", "std", "min", "max"].map(|c| format!("{kind}_{c}")));
        }
        if !self.measures.is_empty() {
            header.extend(Measures::CSV_COLUMNS.map(String::from));
        }
        header.extend(
            [
                "versus",
                "plain_rate",
                "hardened_rate",
                "difference",
                "difference_low",
                "difference_high",
                "plain_only",
                "hardened_only",
                "mcnemar_p",
                "test",
                "raw_fit_per_bit",
                "bits_held",
            ]
            .map(String::from),
        );
        for e in fit::EVENTS {
            let o = self.event_name(e);
            header.extend([
                format!("fit_{o}"),
                format!("fit_{o}_low"),
                format!("fit_{o}_high"),
            ]);
        }
        header
    }

    /// summary.csv: one row per group of every table, with its unit; each
    /// kind of table fills its own columns (the rate tables: counts, rates
    /// with intervals and the effective sample size behind them).
    pub fn csv(&self) -> String {
        let header = self.csv_header();
        let mut t = CsvTable::new();
        t.row(header.clone());
        for (grouping, unit, mut cells) in self.csv_rows() {
            cells.insert("grouping".into(), grouping);
            cells.insert("unit".into(), unit);
            t.row(
                header
                    .iter()
                    .map(|c| cells.remove(c).unwrap_or_default())
                    .collect::<Vec<_>>(),
            );
        }
        t.into_string()
    }

    /// summary.json: the overall row and every table in order, each row with
    /// the columns of summary.csv, then the other sections.
    pub fn json(&self) -> Value {
        let tables: Vec<Value> = self
            .tables
            .iter()
            .map(|(g, rows)| {
                let rows: Vec<Value> = rows.iter().map(|(k, c)| self.json_row(k, c)).collect();
                json!({"grouping": g.name(), "unit": self.unit(*g), "rows": rows})
            })
            .collect();
        let overall = self.json_row(&Key::label("all"), &self.overall());
        let mut accuracy = Map::new();
        for (key, cells) in self.accuracy_rows() {
            let values: Map<String, Value> = cells
                .into_iter()
                .map(|(k, v)| {
                    let value = match k.as_str() {
                        "n" | "injections" => json!(v as u64),
                        _ => json!(v),
                    };
                    (k, value)
                })
                .collect();
            accuracy.insert(key, Value::Object(values));
        }
        let comparisons: Vec<Value> = self
            .differences()
            .into_iter()
            .map(|(versus, event, key, d)| {
                json!({
                    "versus": versus.label, "event": self.event_name(event), "group": key.label,
                    "plain_rate": d.plain.rate, "plain_low": d.plain.low, "plain_high": d.plain.high,
                    "hardened_rate": d.hardened.rate, "hardened_low": d.hardened.low,
                    "hardened_high": d.hardened.high, "difference": d.diff,
                    "difference_low": d.low, "difference_high": d.high,
                    "plain_only": d.plain_only, "hardened_only": d.hardened_only,
                    "mcnemar_p": d.p_value, "test": d.test,
                })
            })
            .collect();
        let cma: Vec<Value> = self
            .cma
            .points()
            .iter()
            .map(|g| {
                let r = g.rate(Event::Sde, self.z());
                json!({"injections": g.injections, "n": g.counts.n, "sde": g.counts.sde,
                       "sde_rate": r.rate, "sde_low": r.low, "sde_high": r.high})
            })
            .collect();
        let mut out = json!({
            "confidence": self.settings.confidence.level,
            "overall": overall,
            "tables": tables,
            "inside": self.inside.json(self.z()),
            "accuracy": accuracy,
            "comparisons": comparisons,
            "cma": cma,
        });
        if !self.measures.is_empty() {
            out["measures"] = self.measures.json();
        }
        if let Some(inputs) = &self.settings.fit {
            let rows: Vec<Value> = fit::table(&self.bit_rates, inputs, self.z())
                .iter()
                .map(|r| {
                    let mut row = json!({"target": r.target.name(), "format": r.format.name(),
                        "bit": r.bit, "bits_held": r.bits_held, "n": r.n});
                    for (e, (v, low, high)) in fit::EVENTS.into_iter().zip(r.fit) {
                        let o = self.event_name(e);
                        row[format!("fit_{o}")] = json!(v);
                        row[format!("fit_{o}_low")] = json!(low);
                        row[format!("fit_{o}_high")] = json!(high);
                    }
                    row
                })
                .collect();
            let elements: Map<String, Value> = inputs
                .elements
                .iter()
                .map(|(t, n)| (t.name().to_string(), json!(n)))
                .collect();
            out["fit"] =
                json!({"raw_fit_per_bit": inputs.raw_per_bit, "elements": elements, "rows": rows});
        }
        out
    }

    fn json_row(&self, key: &Key, group: &Group) -> Value {
        let (counts, rates) = self.rate_fields(group);
        let mut row = Map::new();
        row.insert("group".into(), json!(key.label));
        row.extend(counts.into_iter().map(|(k, v)| (k, json!(v))));
        row.extend(rates.into_iter().map(|(k, v)| (k, json!(v))));
        Value::Object(row)
    }

    /// The accuracy rows: `golden` (the fault-free model on the same runs),
    /// then each protection's accuracy and agreement under faults, as
    /// (label, column -> value); `n` and `injections` are counts.
    fn accuracy_rows(&self) -> Vec<(String, Vec<(String, f64)>)> {
        let mut rows = Vec::new();
        let (correct, labelled) = self.golden_correct;
        if labelled > 0 {
            let a = correct as f64 / labelled as f64;
            let mut cells = vec![("n".to_string(), labelled as f64)];
            cells.extend(["mean", "std", "min", "max"].map(|c| {
                let v = if c == "std" { 0.0 } else { a };
                (format!("accuracy_{c}"), v)
            }));
            rows.push(("golden".to_string(), cells));
        }
        for (key, m) in &self.accuracy {
            let mut cells = Vec::new();
            let agreement = m.agreement.stats();
            if let Some(a) = &agreement {
                cells.push(("n".to_string(), a.runs as f64));
                cells.push(("injections".to_string(), a.injections as f64));
            }
            for (kind, stats) in [("accuracy", m.accuracy.stats()), ("agreement", agreement)] {
                if let Some(s) = stats {
                    cells.extend(spread_cells(kind, &s));
                }
            }
            rows.push((key.label.clone(), cells));
        }
        rows
    }

    /// Every paired comparison: (hardened model, event, group, result).
    fn differences(&self) -> Vec<(&Key, Event, &Key, super::compare::Difference)> {
        let mut out = Vec::new();
        for event in COMPARED {
            for (versus, groups) in &self.comparisons {
                for (key, paired) in groups {
                    out.push((versus, event, key, paired.difference(event, self.z())));
                }
            }
        }
        out
    }

    /// summary.md: what the intervals are, then a table per grouping, each
    /// saying what its `n` counts, then the other sections.
    pub fn markdown(&self) -> String {
        let mut s = String::from("# Campaign summary\n\n");
        s += &intervals(&self.settings.confidence);
        let runs = self.unit(Grouping::Overall);
        let top = self.event_name(Event::SdeTopK).replace("sde_", "SDE ");
        let columns = match self.settings.classification {
            true => format!(" {top} |"),
            false => String::new(),
        };
        let rules = " --- |".repeat(self.rated().len());
        for (g, rows) in &self.tables {
            let name = g.name();
            s += &format!(
                "\n## {name}\n\n{}\n\n| {name} | n | injections | SDE | DUE | masked |{columns}\n| --- | ---: | ---: |{rules}\n",
                unit_meaning(self.unit(*g))
            );
            for (key, group) in rows {
                let c = &group.counts;
                s += &format!("| {} | {} | {} |", key.label, c.n, group.injections);
                for &e in self.rated() {
                    s += &format!(" {} |", percent(&group.rate(e, self.z())));
                }
                s.push('\n');
            }
        }
        if self.settings.classification {
            s += &format!(
                "\n{top}: SDE runs whose golden class is not among the faulty top {} either (PyTorchFI's \"top-1 not in top-{}\").\n",
                self.settings.top_k, self.settings.top_k
            );
        }
        s += &self.measures.markdown(runs);
        s += &self.inside.markdown(runs, self.z());
        s += &self.accuracy_markdown(runs);
        s += &self.comparisons_markdown();
        s += &self.cma_markdown();
        s += &self.fit_markdown();
        s
    }

    fn accuracy_markdown(&self, runs: &str) -> String {
        let rows = self.accuracy_rows();
        if rows.is_empty() {
            return String::new();
        }
        let mut s = format!(
            "\n## accuracy\n\nPer injection, the share of its inferences (one for a transient fault; each sample of its scope for a permanent one) whose faulty top-1 is the label (accuracy; a DUE is never correct) and whose faulty top-1 is the golden one (agreement); then the mean, standard deviation (population), minimum and maximum over injections. `golden`: the fault-free model on the same inferences. n counts {runs}.\n\n| model | n | accuracy mean | std | min | max | agreement mean | std | min | max |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        );
        for (label, cells) in rows {
            let get = |c: &str| {
                cells
                    .iter()
                    .find(|(k, _)| k == c)
                    .map_or("-".to_string(), |(k, v)| accuracy_text(k, *v))
            };
            s += &format!("| {label} | {} |", get("n"));
            for kind in ["accuracy", "agreement"] {
                for c in ["mean", "std", "min", "max"] {
                    s += &format!(" {} |", get(&format!("{kind}_{c}")));
                }
            }
            s.push('\n');
        }
        s
    }

    fn comparisons_markdown(&self) -> String {
        let differences = self.differences();
        if differences.is_empty() {
            return String::new();
        }
        let level = self.settings.confidence.percent();
        let mut s = format!(
            "\n## protection: differences\n\nThe hardened model's rate minus the plain model's on the same runs (negative: the mitigation removes errors), with a {level} interval (Newcombe's hybrid score interval for paired rates), and McNemar's two-sided p-value for equal rates (exact binomial on the discordant runs with one row per injection; clustered by injection, as Durkalski's, otherwise). `all` counts {}; a layer's row counts faults.\n\n| event | versus | group | plain | hardened | difference | plain only | hardened only | p (McNemar) |\n| --- | --- | --- | --- | --- | --- | ---: | ---: | ---: |\n",
            self.unit(Grouping::Overall)
        );
        for (versus, event, key, d) in differences {
            s += &format!(
                "| {} | {} | {} | {} | {} | {:+.2}% [{:+.2}, {:+.2}] | {} | {} | {} ({}) |\n",
                self.event_name(event),
                versus.label,
                key.label,
                percent(&d.plain),
                percent(&d.hardened),
                100.0 * d.diff,
                100.0 * d.low,
                100.0 * d.high,
                d.plain_only,
                d.hardened_only,
                p_value(d.p_value),
                d.test
            );
        }
        s
    }

    fn cma_markdown(&self) -> String {
        let points = self.cma.points();
        if points.is_empty() {
            return String::new();
        }
        let mut s = String::from(
            "\n## convergence (CMA)\n\nThe SDE rate over the first m injections of the fault list (InjectTF2's cumulative moving average; every point in summary.csv and cma.svg), at each power of ten and at the end.\n\n| m | n | SDE |\n| ---: | ---: | --- |\n",
        );
        let last = points.len() - 1;
        for (i, g) in points.iter().enumerate() {
            let m = g.injections;
            let power_of_ten = m > 0 && 10u64.pow(m.ilog10()) == m;
            if power_of_ten || i == last {
                s += &format!(
                    "| {m} | {} | {} |\n",
                    g.counts.n,
                    percent(&g.rate(Event::Sde, self.z()))
                );
            }
        }
        s
    }

    fn fit_markdown(&self) -> String {
        let Some(inputs) = &self.settings.fit else {
            return String::new();
        };
        let mut s = format!(
            "\n## FIT\n\nFIT (failures per 10^9 hours) contributed by each bit position of the elements held, derated by its single-bit flip rate: raw {:e} FIT per bit x elements x rate; the total adds the injected bits (its interval adds theirs, conservatively); bits not injected are not counted. Elements: {}.\n\n| target | format | bit | bits held | n | FIT SDE | FIT DUE |\n| --- | --- | --- | ---: | ---: | --- | --- |\n",
            inputs.raw_per_bit,
            inputs
                .elements
                .iter()
                .map(|(t, n)| format!("{} {n}", t.name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for r in fit::table(&self.bit_rates, inputs, self.z()) {
            s += &format!(
                "| {} | {} | {} | {} | {} |",
                r.target.name(),
                r.format.name(),
                fit_label(&r),
                r.bits_held,
                r.n
            );
            for (v, low, high) in r.fit {
                s += &format!(" {v:.3e} [{low:.3e}, {high:.3e}] |");
            }
            s.push('\n');
        }
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
        let z = self.z();
        format!(
            "{counted}: SDE {}, DUE {}, masked {}, benign {:.2}%",
            percent(&g.rate(Outcome::Sde, z)),
            percent(&g.rate(Outcome::Due, z)),
            percent(&g.rate(Outcome::Masked, z)),
            100.0 * g.rate(Outcome::Benign, z).rate
        )
    }
}

/// A row's cells by column name.
type Cells = BTreeMap<String, String>;

/// Values by column name, in column order.
type Fields<T> = Vec<(String, T)>;

fn spread_cells(kind: &str, s: &SpreadStats) -> Vec<(String, f64)> {
    [
        ("mean", s.mean),
        ("std", s.std),
        ("min", s.min),
        ("max", s.max),
    ]
    .into_iter()
    .map(|(c, v)| (format!("{kind}_{c}"), v))
    .collect()
}

/// An accuracy cell as text: counts whole, shares to six decimals.
fn accuracy_text(column: &str, v: f64) -> String {
    match column {
        "n" | "injections" => format!("{v}"),
        _ => format!("{v:.6}"),
    }
}

fn difference_cells(d: &super::compare::Difference) -> Cells {
    [
        ("plain_rate", format!("{:.6}", d.plain.rate)),
        ("hardened_rate", format!("{:.6}", d.hardened.rate)),
        ("difference", format!("{:.6}", d.diff)),
        ("difference_low", format!("{:.6}", d.low)),
        ("difference_high", format!("{:.6}", d.high)),
        ("plain_only", d.plain_only.to_string()),
        ("hardened_only", d.hardened_only.to_string()),
        ("mcnemar_p", format!("{:.6e}", d.p_value)),
        ("test", d.test.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

fn fit_label(r: &fit::FitRow) -> String {
    r.bit.map_or("total".into(), |b| b.to_string())
}

fn intervals(confidence: &Confidence) -> String {
    let level = confidence.percent();
    format!(
        "Rates with {level} Wilson intervals, clustered by injection. An injection (one \
or more faults drawn together) is the campaign's independent trial; its rows \
(each fault, on each sample a permanent fault stays for) share their cause. \
So each interval is Wilson's at an effective sample size: n divided by the \
design effect estimated from how the injections' own rates spread, kept \
between the number of injections and n, and equal to the number of \
injections when no row or every row has the outcome. With one row per \
injection it is the plain Wilson interval of n. summary.csv gives each \
effective size (`*_n_eff`).\n"
    )
}

fn unit_meaning(unit: &str) -> &'static str {
    match unit {
        "injections" => "n counts injections (one inference each).",
        "inferences" => "n counts inferences: each injection on each sample of its scope.",
        "faults" => "n counts faults, each with its injection's outcome.",
        "drawn inferences" => "n counts every inference drawn with InjectTF2's semantics (`per: inference`: each targeted layer faulted with its probability), the clean ones (no layer hit) as masked: the rates per inference, where the other tables give them per faulted inference.",
        _ => "n counts rows of injections.csv: each fault on each sample of its scope, with that inference's outcome.",
    }
}

/// A p-value as people read it: 0.0625, 0.0039, 9.3e-10.
fn p_value(p: f64) -> String {
    if p >= 0.001 {
        format!("{p:.4}")
    } else {
        format!("{p:.1e}")
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
