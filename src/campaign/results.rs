//! The rows of `injections.csv` and the tallies behind the summaries:
//! written as the campaign runs, and read back to resume it. A tally counts
//! an injection's runs as one cluster of the intervals once its last run is
//! in, so a resumed tally (read back part way through an injection) equals
//! an uninterrupted one. A resume keeps only the leading chunks whose
//! checksums in `injections.sums` hold, so a torn or edited chunk runs again.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::Path;

use super::rows::{Lines, Rows};
use super::Plan;
use crate::classify::{in_top, top1, Outcome};
use crate::error::{Error, Result};
use crate::faults::{self, Fault, FaultModel, NumFormat, Target};
use crate::inject::{InjectionResult, SiteValues};
use crate::report::accuracy::RunsOf;
use crate::report::compare::PairCounts;
use crate::report::fit::FitInputs;
use crate::report::measures::Measures;
use crate::report::{heatmap, Confidence, Counts, Grouping, Key, Settings, Summary};
use crate::scenario::SummaryKey;

/// The result columns after the fault list's (`faulty_correct`: the faulty
/// top-1 is the ground-truth label and the output is not a DUE, empty
/// without labels; the top-1, top-k and `faulty_correct` cells are empty
/// for tasks other than classification; `detected`: a
/// monitored node saw NaN or Inf; `outputs_changed`: the model outputs that
/// differ from golden, by name); hardened models add
/// `NAME_top1`, `NAME_outcome` and `NAME_topk_hit` each, and `save_outputs`
/// adds the top-k classes and scores of every output. A task other than
/// classification adds its measures last ([`crate::classify::Task::columns`]).
pub const RESULT_COLUMNS: [&str; 14] = [
    "sample_id",
    "label",
    "golden_top1",
    "faulty_top1",
    "outcome",
    "top5_hit",
    "original_value",
    "faulty_value",
    "masked_after",
    "first_nonfinite",
    "error",
    "faulty_correct",
    "detected",
    "outputs_changed",
];

/// What the rows show: the hardened models' names, the k of top-k, and
/// whether the top-k classes and scores are written.
pub struct Layout<'a> {
    pub hardened: &'a [String],
    pub top_k: i64,
    pub save_outputs: bool,
    /// The task's measure columns.
    pub task: &'a crate::classify::Task,
}

impl Layout<'_> {
    pub fn header(&self) -> Vec<String> {
        let mut h: Vec<String> = faults::csv::COLUMNS
            .iter()
            .chain(&RESULT_COLUMNS)
            .map(|c| c.to_string())
            .collect();
        h[faults::csv::COLUMNS.len() + 5] = format!("top{}_hit", self.top_k);
        for name in self.hardened {
            h.extend([
                format!("{name}_top1"),
                format!("{name}_outcome"),
                format!("{name}_top{}_hit", self.top_k),
            ]);
        }
        if self.save_outputs {
            let k = self.top_k;
            h.extend([format!("golden_top{k}"), format!("faulty_top{k}")]);
            h.extend(self.hardened.iter().map(|n| format!("{n}_top{k}")));
        }
        h.extend(self.task.columns().iter().map(|c| c.to_string()));
        h
    }

    /// What the tally counts of a run: `r` on the plan's model, `hardened`
    /// the same run on each hardened model (named by `names`).
    pub fn facts<'n>(
        &self,
        plan: &Plan,
        r: &InjectionResult,
        hardened: &[InjectionResult],
        names: &'n [String],
    ) -> RunFacts<'n> {
        RunFacts {
            plain: self.verdict(r),
            hardened: names
                .iter()
                .zip(hardened)
                .map(|(n, h)| (n.as_str(), self.verdict(h)))
                .collect(),
            label: plan.data.sample(r.sample).label,
            golden_top1: self.task.ranks_classes().then(|| top1(&r.golden)),
            nonfinite: r.first_nonfinite.is_some(),
            detected: r.detected,
            measures: task_cells(self.task, r),
        }
    }

    /// One CSV row per fault of the run: `r` on the plan's model, `hardened`
    /// the same run on each hardened model, `facts` their verdicts.
    pub fn record(
        &self,
        plan: &Plan,
        faults: &[Fault],
        (r, hardened): (&InjectionResult, &[InjectionResult]),
        facts: &RunFacts,
        rows: &mut Rows,
    ) -> Result<()> {
        let golden_class = facts.golden_top1.map_or(String::new(), |c| c.to_string());
        let sample = plan.data.sample(r.sample);
        let verdict = facts.plain;
        for (k, f) in faults.iter().enumerate() {
            let site = r.sites.get(k);
            let mut row: Vec<String> = faults::csv::row(f).to_vec();
            let correct = match (sample.label, facts.golden_top1) {
                (Some(l), Some(_)) => verdict.correct(l).to_string(),
                _ => String::new(),
            };
            let [top1, outcome, hit] = verdict.cells();
            row.extend([
                sample.id.to_string(),
                sample.label.map_or(String::new(), |l| l.to_string()),
                golden_class.clone(),
                top1,
                outcome,
                hit,
                site.map_or(String::new(), |s| SiteValues::text(s.original)),
                site.map_or(String::new(), |s| SiteValues::text(s.faulty)),
                r.masked_after
                    .map_or(String::new(), |n| plan.graph.nodes[n].name.clone()),
                r.first_nonfinite
                    .map_or(String::new(), |n| plan.graph.nodes[n].name.clone()),
                r.error.clone().unwrap_or_default(),
                correct,
                r.detected.to_string(),
                changed_outputs(plan, r),
            ]);
            for (_, v) in &facts.hardened {
                row.extend(v.cells());
            }
            if self.save_outputs {
                row.push(self.top_list(&r.golden));
                for result in std::iter::once(r).chain(hardened) {
                    let out = match result.outcome() {
                        Outcome::Masked => Some(&result.golden),
                        _ => result.output.as_ref(),
                    };
                    row.push(out.map_or(String::new(), |o| self.top_list(o)));
                }
            }
            row.extend(facts.measures.iter().cloned());
            rows.row(row)?;
        }
        Ok(())
    }

    /// Top-1, outcome and top-k hit of a run, against its own model's
    /// golden class (neither for tasks other than classification).
    pub fn verdict(&self, r: &InjectionResult) -> Verdict {
        let outcome = r.outcome();
        if !self.task.ranks_classes() {
            return Verdict {
                top1: None,
                outcome,
                top_k_hit: None,
            };
        }
        let golden_class = top1(&r.golden);
        let (top1, top_k_hit) = match (outcome, &r.output) {
            (Outcome::Masked, _) => (Some(golden_class), true),
            (_, Some(out)) => (Some(top1(out)), in_top(out, golden_class, self.top_k)),
            (_, None) => (None, false),
        };
        let top_k_hit = Some(top_k_hit);
        Verdict {
            top1,
            outcome,
            top_k_hit,
        }
    }

    /// `class:score` for the top k classes, best first.
    fn top_list(&self, row: &tch::Tensor) -> String {
        let k = self.top_k.min(row.numel() as i64);
        let (scores, classes) = row.topk(k, 0, true, true);
        let scores = Vec::<f32>::try_from(scores).unwrap_or_default();
        let classes = Vec::<i64>::try_from(classes).unwrap_or_default();
        let parts: Vec<String> = classes
            .iter()
            .zip(&scores)
            .map(|(c, s)| format!("{c}:{s:e}"))
            .collect();
        parts.join(" ")
    }
}

/// A run's verdict on one model: its top-1 class (none when the run
/// failed), its outcome, and whether the golden class is among its top k.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    pub top1: Option<i64>,
    pub outcome: Outcome,
    /// `None` for tasks other than classification, which rank no classes.
    pub top_k_hit: Option<bool>,
}

impl Verdict {
    /// The row's `top1`, `outcome` and `topK_hit` fields.
    fn cells(&self) -> [String; 3] {
        [
            self.top1.map_or(String::new(), |c| c.to_string()),
            self.outcome.name().to_string(),
            self.top_k_hit.map_or(String::new(), |h| h.to_string()),
        ]
    }

    /// Read back from those fields (`None` if they are not a verdict's).
    fn parse([top1, outcome, hit]: [&str; 3]) -> Option<Verdict> {
        Some(Verdict {
            top1: match top1 {
                "" => None,
                c => Some(c.parse().ok()?),
            },
            outcome: parse_outcome(outcome)?,
            top_k_hit: match hit {
                "" => None,
                h => Some(parse_bool(h)?),
            },
        })
    }

    /// Whether the golden class is among the top k; a task that ranks no
    /// classes counts no top-k SDE.
    fn hit(&self) -> bool {
        self.top_k_hit.unwrap_or(true)
    }

    /// Whether the run classified the sample as `label` (a DUE's output
    /// holds NaN or Inf, so it never does).
    pub fn correct(&self, label: i64) -> bool {
        self.outcome != Outcome::Due && self.top1 == Some(label)
    }

    /// Whether the run kept the golden class (masked or benign).
    fn agrees(&self) -> bool {
        matches!(self.outcome, Outcome::Masked | Outcome::Benign)
    }
}

/// What the tally counts of one run, exactly as its rows in
/// `injections.csv` say it, so that a tally read back from the rows equals
/// the one counted live.
pub struct RunFacts<'a> {
    /// The verdict on the plan's model.
    pub plain: Verdict,
    /// The verdict on each hardened model, by name.
    pub hardened: Vec<(&'a str, Verdict)>,
    /// The sample's ground-truth label, if the data has labels.
    pub label: Option<i64>,
    /// The fault-free model's top-1 class (`None` for tasks other than
    /// classification).
    pub golden_top1: Option<i64>,
    /// Some value inside the network was NaN or Inf.
    pub nonfinite: bool,
    /// A monitored node caught NaN or Inf.
    pub detected: bool,
    /// The task's cells of the row (`injections.csv`'s last columns).
    pub measures: Vec<String>,
}

/// The task's measures of a run: as measured; a masked run's are those of
/// golden against itself (no box counted); a DUE's are empty.
fn task_cells(task: &crate::classify::Task, r: &InjectionResult) -> Vec<String> {
    use crate::classify::Task;
    if let Some(v) = &r.diff.task {
        return v.measures.cells();
    }
    let masked = r.outcome() == Outcome::Masked;
    let cells: &[&str] = match (task, masked) {
        (_, false) => &[],
        (Task::Segmentation { .. }, true) => &["0e0", "1e0"],
        (Task::Tokens { .. }, true) => &["0"],
        (Task::Values { .. }, true) => &["0e0", "0e0"],
        (Task::Detection(_), true) => &["0", "0", "", "0e0", "0e0"],
        (Task::Classification, true) => &[],
    };
    let mut out: Vec<String> = cells.iter().map(|c| c.to_string()).collect();
    out.resize(task.columns().len(), String::new());
    out
}

/// The names of the model outputs that `r` changed, space-separated.
fn changed_outputs(plan: &Plan, r: &InjectionResult) -> String {
    let graph = &plan.graph;
    let names: Vec<&str> = (r.diff.changed.iter().zip(&graph.outputs))
        .filter(|(changed, _)| **changed)
        .map(|(_, &id)| graph.values[id].name.as_str())
        .collect();
    names.join(" ")
}

/// Outcome counts for the summaries and the heatmap. A run's counts wait
/// with its injection's until the injection's last run (one per sample of
/// its scope), then join the groups as one cluster
/// ([`add_injection`](crate::report::Group::add_injection));
/// injections run a window at a time, so few wait at once.
pub struct Tally {
    summary: Summary,
    cells: heatmap::Cells,
    open: HashMap<u64, Open>,
}

/// An injection with runs still to count, and its counts so far.
struct Open {
    runs_left: u64,
    counts: BTreeMap<Slot, Counts>,
    /// Per hardened model and group (`all` or a layer): both models' rows.
    pairs: BTreeMap<(Key, Key), PairCounts>,
    /// Per protection (`none`, then each hardened model): its runs for the
    /// accuracy.
    accuracy: BTreeMap<Key, RunsOf>,
}

/// Where a run counts: a table's row, a heatmap cell (format, layer,
/// column), or a bit's rate for the FIT table (target, format, bit).
#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum Slot {
    Row(Grouping, Key),
    Cell(NumFormat, (usize, String), Key),
    Fit(Target, NumFormat, u8),
}

impl Tally {
    /// An empty tally for the plan's campaign.
    pub fn new(plan: &Plan) -> Tally {
        let outputs = &plan.campaign.spec.outputs;
        let settings = Settings {
            confidence: Confidence::new(outputs.confidence),
            top_k: outputs.top_k,
            classification: plan.graph.task.ranks_classes(),
            fit: outputs.fit.as_ref().map(|f| FitInputs {
                raw_per_bit: f.raw_per_bit,
                elements: [Target::Neuron, Target::Weight]
                    .into_iter()
                    .filter_map(|t| {
                        let given = f.elements.get(&t).copied();
                        Some((t, given.or_else(|| targeted_elements(plan, t))?))
                    })
                    .collect(),
            }),
        };
        Tally {
            summary: Summary {
                settings,
                measures: Measures::new(plan.graph.task.columns()),
                ..Summary::default()
            },
            cells: heatmap::Cells::default(),
            open: HashMap::new(),
        }
    }

    /// Counts one run: its faults and what its row says (see `RunFacts`).
    pub fn add(&mut self, plan: &Plan, faults: &[Fault], run: &RunFacts) {
        let summary = &mut self.summary;
        summary.inside.add(run.nonfinite, run.detected);
        summary.measures.add(&run.measures);
        if let (Some(label), Some(golden)) = (run.label, run.golden_top1) {
            summary.golden_correct.0 += u64::from(golden == label);
            summary.golden_correct.1 += 1;
        }
        let injection = faults[0].injection;
        let several_samples = &mut summary.several_samples;
        let open = self.open.entry(injection).or_insert_with(|| {
            let runs = super::runs::own_scope(plan, faults);
            let runs_left = runs.end - runs.start;
            *several_samples |= runs_left > 1;
            Open {
                runs_left,
                counts: BTreeMap::new(),
                pairs: BTreeMap::new(),
                accuracy: BTreeMap::new(),
            }
        });
        let fit = summary.settings.fit.is_some();
        for (slot, v) in slots(plan, faults, run, fit) {
            open.counts.entry(slot).or_default().add(v.outcome, v.hit());
        }
        let plain = (run.plain.outcome, run.plain.hit());
        for (i, (name, v)) in run.hardened.iter().enumerate() {
            let versus = protection_key(i + 1, name);
            let hardened = (v.outcome, v.hit());
            let groups = std::iter::once(Key::label("all"))
                .chain(faults.iter().map(|f| Key::new(vec![f.node], &f.layer)));
            for group in groups {
                let pair = open.pairs.entry((versus.clone(), group)).or_default();
                pair.add(plain, hardened);
            }
        }
        let models =
            std::iter::once(("none", &run.plain)).chain(run.hardened.iter().map(|(n, v)| (*n, v)));
        for (i, (name, v)) in models.enumerate() {
            let r = open.accuracy.entry(protection_key(i, name)).or_default();
            if let (Some(label), Some(_)) = (run.label, run.golden_top1) {
                r.labelled += 1;
                r.correct += u64::from(v.correct(label));
            }
            r.runs += 1;
            r.agree += u64::from(v.agrees());
        }
        open.runs_left -= 1;
        if open.runs_left == 0 {
            let open = self.open.remove(&injection).expect("open");
            self.close(injection, open);
        }
    }

    fn close(&mut self, injection: u64, open: Open) {
        let summary = &mut self.summary;
        for (slot, counts) in open.counts {
            let group = match slot {
                Slot::Row(grouping, key) => {
                    if grouping == Grouping::Overall {
                        summary.cma.add_injection(injection, &counts);
                    }
                    summary.group_mut(grouping, key)
                }
                Slot::Cell(format, layer, key) => self
                    .cells
                    .entry(format)
                    .or_default()
                    .entry(layer)
                    .or_default()
                    .entry(key)
                    .or_default(),
                Slot::Fit(target, format, bit) => summary
                    .bit_rates
                    .entry((target, format))
                    .or_default()
                    .entry(bit)
                    .or_default(),
            };
            group.add_injection(&counts);
        }
        for ((versus, group), pair) in open.pairs {
            let paired = summary.comparisons.entry(versus).or_default();
            paired.entry(group).or_default().add_injection(&pair);
        }
        for (key, runs) in open.accuracy {
            let model = summary.accuracy.entry(key).or_default();
            model.add_injection(&runs);
        }
    }

    /// The summary and the heatmap cells, every injection counted (one
    /// still open, in a list read only in part, counts as it is), and with
    /// `per: inference` the clean inferences of the plan's points.
    pub fn finish(mut self, plan: &Plan) -> (Summary, heatmap::Cells) {
        // Every sum is order-free: the injections close in any order.
        for (injection, open) in std::mem::take(&mut self.open) {
            self.close(injection, open);
        }
        // The clean inferences of InjectTF2's semantics: masked, one each.
        for p in &plan.campaign.points {
            if let Some((key, drawn)) = drawn_inferences(plan, p.id) {
                let group = self.summary.group_mut(Grouping::PerInference, key);
                group.add_masked_injections(drawn.saturating_sub(group.injections));
            }
        }
        (self.summary, self.cells)
    }
}

/// The eligible elements of the campaign's targeted layers for target `t`
/// (each layer counted once across sweep points), if any.
fn targeted_elements(plan: &Plan, t: Target) -> Option<u64> {
    let mut seen = std::collections::BTreeSet::new();
    let mut total = 0;
    for p in &plan.campaign.points {
        for c in p.candidates.iter().filter(|c| c.target == t) {
            if seen.insert(c.node) {
                total += c.elements();
            }
        }
    }
    (total > 0).then_some(total)
}

fn protection_key(rank: usize, name: &str) -> Key {
    Key::new(vec![rank as u32], name)
}

/// The rows and cells one run counts in, each with the verdict it counts
/// (`fit`: also each single-bit flip's bit, for the FIT table).
fn slots<'v>(
    plan: &Plan,
    faults: &[Fault],
    run: &'v RunFacts,
    fit: bool,
) -> Vec<(Slot, &'v Verdict)> {
    let plain = &run.plain;
    let mut slots = vec![(Slot::Row(Grouping::Overall, Key::label("all")), plain)];
    if !run.hardened.is_empty() {
        slots.push((protection(0, "none"), plain));
        for (i, (name, v)) in run.hardened.iter().enumerate() {
            slots.push((protection(i + 1, name), v));
        }
    }
    if let Some(key) = drawn_inferences(plan, faults[0].sweep).map(|(key, _)| key) {
        slots.push((Slot::Row(Grouping::PerInference, key), plain));
    }
    let chosen = &plan.campaign.spec.outputs.summaries;
    if chosen.contains(&SummaryKey::Sweep) {
        let sweep = faults[0].sweep;
        let key = Key::new(vec![sweep], sweep_label(plan, sweep));
        slots.push((Slot::Row(Grouping::Sweep, key), plain));
    }
    for f in faults {
        for key in chosen {
            if let Some((grouping, key)) = fault_row(plan, f, *key) {
                slots.push((Slot::Row(grouping, key), plain));
            }
        }
        let layer = (f.node as usize, f.layer.clone());
        let column = Key::bits(&f.model, &f.bits);
        slots.push((Slot::Cell(f.dtype, layer, column), plain));
        if let (true, FaultModel::BitFlip, [bit]) = (fit, &f.model, f.bits.as_slice()) {
            slots.push((Slot::Fit(f.target, f.dtype, *bit), plain));
        }
    }
    slots
}

/// The `per_inference` row of sweep point `sweep` and its inferences drawn,
/// when the point draws with InjectTF2's semantics (not in a shard, which
/// sees only part of them: the merge counts them).
fn drawn_inferences(plan: &Plan, sweep: u32) -> Option<(Key, u64)> {
    if plan.shard.is_some() {
        return None;
    }
    let point = plan.campaign.points.iter().find(|p| p.id == sweep)?;
    let drawn = point.inferences()?;
    let label = match plan.campaign.points.len() {
        1 => "all".to_string(),
        _ => sweep_label(plan, sweep),
    };
    Some((Key::new(vec![sweep], label), drawn))
}

fn protection(rank: usize, name: &str) -> Slot {
    Slot::Row(Grouping::Protection, protection_key(rank, name))
}

/// The row a fault counts in for a per-fault summary (`None` for the
/// sweep, counted once per run).
fn fault_row(plan: &Plan, f: &Fault, key: SummaryKey) -> Option<(Grouping, Key)> {
    Some(match key {
        SummaryKey::Layer => (Grouping::Layer, Key::new(vec![f.node], &f.layer)),
        SummaryKey::Bit => (Grouping::Bit(f.dtype), Key::bits(&f.model, &f.bits)),
        SummaryKey::Op => {
            let op = plan.campaign.sites.find(&f.layer).map_or("?", |l| &l.op);
            (Grouping::Op, Key::label(op))
        }
        SummaryKey::Dtype => {
            let rank = NumFormat::ALL.iter().position(|d| *d == f.dtype);
            let rank = vec![rank.unwrap_or(0) as u32];
            (Grouping::Dtype, Key::new(rank, f.dtype.name()))
        }
        SummaryKey::Model => (Grouping::Model, Key::label(f.model.name())),
        SummaryKey::Target => (Grouping::Target, Key::label(f.target.name())),
        SummaryKey::Sweep => return None,
    })
}

fn sweep_label(plan: &Plan, sweep: u32) -> String {
    plan.faults
        .meta
        .points
        .iter()
        .find(|p| p.id == sweep)
        .map_or_else(|| sweep.to_string(), |p| format!("{sweep}: {}", p.label))
}

/// The finished part of an `injections.csv`: the rows of the leading
/// chunks that finished completely (a killed run may have written part of a
/// chunk, or half a line), and their tally.
pub struct Finished {
    /// Runs in the finished chunks: the id of the first run to redo.
    pub runs: usize,
    /// Length of the header and the finished rows.
    pub bytes: u64,
    /// Chunks in the finished part.
    pub chunks: usize,
    pub tally: Tally,
}

/// The side file of `injections.csv`: a line per flushed chunk with the id
/// after its last run, the length of `injections.csv` after it, and the
/// blake3 of its rows, so a resumed run keeps only rows written whole and
/// unchanged.
pub const SUMS: &str = "injections.sums";

/// A line of [`SUMS`].
#[derive(Debug, Clone, PartialEq)]
pub struct Sum {
    pub runs: usize,
    pub bytes: u64,
    pub blake3: String,
}

impl Sum {
    pub(super) fn line(&self) -> String {
        format!("{} {} {}\n", self.runs, self.bytes, self.blake3)
    }

    fn parse(line: &str) -> Option<Sum> {
        let mut parts = line.split(' ');
        let sum = Sum {
            runs: parts.next()?.parse().ok()?,
            bytes: parts.next()?.parse().ok()?,
            blake3: parts.next()?.to_string(),
        };
        parts.next().is_none().then_some(sum)
    }
}

/// The complete lines of a [`SUMS`] file up to the first that does not
/// parse (none when the file does not exist).
pub fn read_sums(path: &Path) -> Result<Vec<Sum>> {
    let text = match std::fs::read(path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(path, e)),
    };
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    Ok(complete.split('\n').map_while(Sum::parse).collect())
}

/// Appends a [`SUMS`] line per flushed chunk.
pub struct SumsFile {
    path: std::path::PathBuf,
    file: File,
}

impl SumsFile {
    /// `sums` kept (written anew, atomically), later lines appended.
    pub fn start(path: &Path, sums: &[Sum]) -> Result<SumsFile> {
        let text: String = sums.iter().map(Sum::line).collect();
        crate::output::write_atomic(path, text.as_bytes())?;
        let file = File::options()
            .append(true)
            .open(path)
            .map_err(|e| Error::io(path, e))?;
        let path = path.to_path_buf();
        Ok(SumsFile { path, file })
    }

    /// Records a chunk flushed to the rows; `sync`: at a window's end, to
    /// disk (the rows were synced first).
    pub fn record(&mut self, sum: Sum, sync: bool) -> Result<()> {
        use std::io::Write;
        let io = |e| Error::io(&self.path, e);
        self.file.write_all(sum.line().as_bytes()).map_err(io)?;
        if sync {
            self.file.sync_data().map_err(io)?;
        }
        Ok(())
    }
}

/// Reads `path` against the plan's runs, chunk by chunk (`step` runs per
/// chunk, as the campaign ran them), a line at a time. With `sums`, a chunk
/// counts only if its line there matches its rows; the first that does not
/// (torn by a crash, or edited) ends the finished part, with a warning.
pub fn finished(
    lines: &mut Lines,
    plan: &Plan,
    step: usize,
    sums: Option<&[Sum]>,
) -> Result<Finished> {
    let path = &lines.path().to_path_buf();
    let empty = Finished {
        runs: 0,
        bytes: 0,
        chunks: 0,
        tally: Tally::new(plan),
    };
    // Killed before the header reached the disk: nothing to keep.
    let Some(header) = lines.next()? else {
        return Ok(empty);
    };
    let columns = csv_record(&header).unwrap_or_default();
    let col = |name: &str| columns.iter().position(|c| c == name);
    let bad = |msg: String| Error::Data {
        path: path.to_path_buf(),
        msg,
    };
    let hit = format!("top{}_hit", plan.campaign.spec.outputs.top_k);
    let needed = [
        "injection",
        "sample_id",
        "label",
        "golden_top1",
        "faulty_top1",
        "outcome",
        &hit,
        "first_nonfinite",
        "detected",
    ]
    .map(col);
    let Some(
        [injection_col, sample_col, label_col, golden_col, top1_col, outcome_col, hit_col, nonfinite_col, detected_col],
    ) = needed
        .iter()
        .copied()
        .collect::<Option<Vec<usize>>>()
        .and_then(|v| <[usize; 9]>::try_from(v).ok())
    else {
        return Err(bad(
            "the header is not that of injections.csv; start the campaign afresh".into(),
        ));
    };
    let measure_cols = (plan.graph.task.columns().iter())
        .map(|c| col(c))
        .collect::<Option<Vec<usize>>>()
        .ok_or_else(|| {
            bad("the header lacks the task's columns; start the campaign afresh".into())
        })?;
    // Each hardened model's top-1, outcome and top-k hit columns.
    let hardened: Vec<(String, [usize; 3])> = columns
        .iter()
        .filter_map(|c| {
            let name = c.strip_suffix("_outcome")?;
            let at = |suffix: &str| col(&format!("{name}_{suffix}"));
            Some((name.to_string(), [at("top1")?, at("outcome")?, at(&hit)?]))
        })
        .collect();
    let mut done = Finished {
        bytes: lines.bytes(),
        ..empty
    };
    let mut kept_rows = 0;
    for window in super::windows(plan)? {
        let window = window?;
        for chunk in window.chunks(step) {
            let need: usize = chunk.clone().map(|id| window.faults(id).len()).sum();
            let mut rows = Vec::with_capacity(need);
            while rows.len() < need {
                match lines.next()? {
                    Some(line) => rows.push(line),
                    None => return Ok(done),
                }
            }
            if let Some(sums) = sums {
                let sum = Sum {
                    runs: chunk.end,
                    bytes: lines.bytes(),
                    blake3: rows_hash(&rows),
                };
                if sums.get(done.chunks) != Some(&sum) {
                    eprintln!(
                        "faultsweep: warning: {}: rows {} to {} do not match their line in {SUMS} (torn by a crash, or changed); running them again",
                        path.display(),
                        kept_rows + 2,
                        kept_rows + need + 1
                    );
                    return Ok(done);
                }
            }
            let mut at = 0;
            for id in chunk.clone() {
                let (run, faults) = (window.run(id), window.faults(id));
                let row = kept_rows + at + 2;
                let record =
                    csv_record(&rows[at]).ok_or_else(|| bad(format!("row {row} is not CSV")))?;
                let field = |i: usize| record.get(i).map_or("", String::as_str);
                let sample_id = plan.data.sample(run.sample).id.to_string();
                let mismatch = || {
                    bad(format!(
                        "row {row} does not belong to injection {} of the fault list; start the campaign afresh",
                        run.injection
                    ))
                };
                if field(injection_col) != run.injection.to_string()
                    || field(sample_col) != sample_id
                {
                    return Err(mismatch());
                }
                let verdict =
                    |[a, b, c]: [usize; 3]| Verdict::parse([field(a), field(b), field(c)]);
                let plain = verdict([top1_col, outcome_col, hit_col]).ok_or_else(mismatch)?;
                let others = hardened
                    .iter()
                    .map(|(name, cols)| Some((name.as_str(), verdict(*cols)?)))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(mismatch)?;
                let label = match field(label_col) {
                    "" => None,
                    l => Some(l.parse().map_err(|_| mismatch())?),
                };
                let facts = RunFacts {
                    plain,
                    hardened: others,
                    label,
                    golden_top1: match field(golden_col) {
                        "" => None,
                        g => Some(g.parse().map_err(|_| mismatch())?),
                    },
                    nonfinite: !field(nonfinite_col).is_empty(),
                    detected: field(detected_col) == "true",
                    measures: measure_cols.iter().map(|&c| field(c).to_string()).collect(),
                };
                done.tally.add(plan, faults, &facts);
                at += faults.len();
            }
            kept_rows += need;
            done.runs = chunk.end;
            done.bytes = lines.bytes();
            done.chunks += 1;
        }
    }
    Ok(done)
}

/// The blake3 of rows as written (each with its newline).
fn rows_hash(rows: &[String]) -> String {
    let mut h = blake3::Hasher::new();
    for row in rows {
        h.update(row.as_bytes());
        h.update(b"\n");
    }
    h.finalize().to_hex().to_string()
}

pub(super) fn csv_record(line: &str) -> Option<Vec<String>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(str::to_string).collect())
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    }
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    [Outcome::Masked, Outcome::Benign, Outcome::Sde, Outcome::Due]
        .into_iter()
        .find(|o| o.name() == s)
}
