//! The whole campaign (`faultsweep run`): scenario -> golden run and cache ->
//! fault list -> engine -> results directory.
//!
//! Neuron and weight faults, any fault model and number format, several
//! faults per inference, transient or permanent: a permanent fault runs once
//! per sample of its scope ([`runs`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::cache::{Reader, Store};
use crate::classify::{in_top, top1, Outcome};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::faults::{self, Fault, FaultList, Samples, Target};
use crate::golden::{self, Golden, GoldenRun};
use crate::graph::Graph;
use crate::inject::{
    agreement, plain_run, Agreement, CachedFrontiers, ComputedFrontiers, Engine,
    Fault as EngineFault, Injection, InjectionResult, Options,
};
use crate::report::{heatmap, CsvSink, Summary};
use crate::scenario::{self, Campaign, Scenario};

/// Command-line overrides of a scenario.
#[derive(Debug, Default, Clone)]
pub struct RunArgs {
    pub model: Option<PathBuf>,
    pub data: Option<PathBuf>,
    pub faults: Option<PathBuf>,
    pub out: Option<PathBuf>,
    pub cache_dir: Option<PathBuf>,
    pub batch_size: Option<usize>,
    /// Use this seed instead of the scenario's.
    pub seed: Option<u64>,
    /// Rerun this many injections (seeded choice) as plain full forward passes.
    pub verify: usize,
    /// Continue the campaign in `out`, keeping its finished rows.
    pub resume: bool,
}

/// What a finished run reports.
pub struct RunReport {
    pub out: PathBuf,
    pub summary: Summary,
    pub golden_accuracy: Option<f64>,
    pub verified: Option<VerifyReport>,
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    pub checked: usize,
    pub exact: usize,
    pub within_rounding: usize,
    pub differing: Vec<String>,
}

/// The plan of a campaign, resolved from a scenario and its overrides.
pub struct Plan {
    pub campaign: Campaign,
    pub graph: Graph,
    pub data: Dataset,
    pub faults: FaultList,
}

pub fn plan(scenario_path: &Path, args: &RunArgs) -> Result<Plan> {
    let mut sc = Scenario::load(scenario_path)?;
    if let Some(m) = &args.model {
        sc.spec.model.path = m.clone();
    }
    if let Some(d) = &args.data {
        sc.spec.data.path = d.clone();
    }
    sc.spec.seed = args.seed.or(sc.spec.seed);
    if let Some(b) = args.batch_size {
        sc.spec.data.batch_size = b;
    }
    let graph = crate::load::load(&sc.spec.model.path)?;
    let data = Dataset::open(&sc.spec.data)?;
    let campaign = sc.validate(&graph, Some(data.total_len() as u64))?;
    let faults = match &args.faults {
        Some(path) => faults::load(path, Some(&campaign.sites), Some(campaign.samples))?,
        None => faults::generate(&campaign),
    };
    Ok(Plan {
        campaign,
        graph,
        data,
        faults,
    })
}

/// One engine run: an injection of the fault list on one sample of its
/// scope (a transient fault has one sample; a permanent one holds for every
/// sample of its batch or of the data set).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub injection: u64,
    /// Position of the sample in the data set.
    pub sample: usize,
}

/// The runs of a fault list, in injection order, then sample order. The
/// engine's injection ids are positions in this list.
pub fn runs(plan: &Plan) -> Vec<Run> {
    let n = plan.data.len() as u64;
    let mut scope: BTreeMap<u64, faults::Samples> = BTreeMap::new();
    for f in &plan.faults.faults {
        scope.entry(f.injection).or_insert(f.sample);
    }
    let mut runs = Vec::new();
    for (injection, samples) in scope {
        let range = match samples {
            Samples::One(s) => s..s + 1,
            Samples::Range { start, end } => start..end.min(n),
            Samples::All => 0..n,
        };
        runs.extend(range.map(|s| Run {
            injection,
            sample: s as usize,
        }));
    }
    runs
}

/// The engine's injections, one per run (see [`runs`]), with ids their
/// positions. Custom fault models come from `models`.
pub fn injections(plan: &Plan, golden: &Golden, models: &faults::Models) -> Result<Vec<Injection>> {
    let scales: HashMap<usize, f32> = golden
        .ranges
        .iter()
        .map(|r| (r.index, faults::int8_scale(r.min as f32, r.max as f32)))
        .collect();
    let mut by_injection: BTreeMap<u64, Vec<EngineFault>> = BTreeMap::new();
    for f in &plan.faults.faults {
        let int8_scale = scales
            .get(&(f.node as usize))
            .copied()
            .unwrap_or(1.0 / 127.0);
        let fault = engine_fault(plan, f, int8_scale, models)?;
        by_injection.entry(f.injection).or_default().push(fault);
    }
    Ok(runs(plan)
        .into_iter()
        .enumerate()
        .map(|(id, run)| Injection {
            id,
            sample: run.sample,
            faults: by_injection[&run.injection].clone(),
        })
        .collect())
}

/// The engine's form of a fault of the list.
fn engine_fault(
    plan: &Plan,
    f: &Fault,
    int8_scale: f32,
    models: &faults::Models,
) -> Result<EngineFault> {
    let bad = |msg: String| Error::Usage(format!("fault {}: {msg}", f.fault_id));
    if let faults::FaultModel::Custom(name) = &f.model {
        if !models.has(name) {
            return Err(bad(format!("custom fault model '{name}' is not registered (library users register it in faults::Models)")));
        }
    }
    let layer = plan
        .campaign
        .sites
        .find(&f.layer)
        .ok_or_else(|| bad(format!("the model has no layer '{}'", f.layer)))?;
    let site = match f.target {
        Target::Neuron => layer.neuron.as_ref(),
        Target::Weight => layer.weights.iter().find(|w| w.name == f.tensor),
    }
    .ok_or_else(|| {
        bad(format!(
            "layer '{}' has no {} site '{}'",
            f.layer, f.target, f.tensor
        ))
    })?;
    let index = flat_index(&f.coord, &site.shape).ok_or_else(|| {
        bad(format!(
            "coordinate {:?} is outside {:?}",
            f.coord, site.shape
        ))
    })?;
    let (fault, models) = (f.clone(), models.clone());
    let corrupt: crate::inject::Corrupt = Arc::new(move |v| {
        let site = faults::Site {
            fault: &fault,
            int8_scale,
        };
        models
            .apply(v, &site)
            .expect("custom models were checked above")
    });
    let node = f.node as usize;
    Ok(match f.target {
        Target::Neuron => EngineFault::neuron(node, index, corrupt),
        Target::Weight => {
            let graph = &plan.graph;
            let input = graph.nodes[node]
                .inputs
                .iter()
                .position(|id| id.is_some_and(|id| graph.values[id].name == f.tensor))
                .ok_or_else(|| bad(format!("'{}' is not an input of '{}'", f.tensor, f.layer)))?;
            EngineFault::weight(node, input, index, corrupt)
        }
    })
}

fn flat_index(coord: &[u32], shape: &[u64]) -> Option<i64> {
    if coord.len() != shape.len() || coord.iter().zip(shape).any(|(&c, &s)| u64::from(c) >= s) {
        return None;
    }
    Some(
        coord
            .iter()
            .zip(shape)
            .fold(0i64, |acc, (&c, &s)| acc * s as i64 + i64::from(c)),
    )
}

/// The cuts a fault list reads from the cache: each injection's start cut,
/// and the cut before a weight-faulted first node (that node's input).
fn cuts(list: &FaultList) -> Vec<usize> {
    let mut by_injection: BTreeMap<u64, Vec<&Fault>> = BTreeMap::new();
    for f in &list.faults {
        by_injection.entry(f.injection).or_default().push(f);
    }
    let mut cuts = Vec::new();
    for faults in by_injection.values() {
        let first = faults.iter().map(|f| f.node as usize).min().unwrap_or(0);
        cuts.push(first + 1);
        if faults
            .iter()
            .any(|f| f.node as usize == first && f.target == Target::Weight)
        {
            cuts.push(first);
        }
    }
    cuts
}

/// Position of the fault list's `injection` column in injections.csv.
const INJECTION_COL: usize = 10;

const RESULT_COLUMNS: [&str; 11] = [
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
];

/// Runs the campaign; `progress` hears (injections done, total) after
/// every chunk.
pub fn run(
    scenario_path: &Path,
    args: &RunArgs,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    run_with_models(scenario_path, args, &faults::Models::default(), progress)
}

/// As [`run`], with custom fault models (`custom:NAME` in scenarios and
/// fault lists) registered in `models`.
pub fn run_with_models(
    scenario_path: &Path,
    args: &RunArgs,
    models: &faults::Models,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<RunReport> {
    let plan = plan(scenario_path, args)?;
    let spec = &plan.campaign.spec;
    let out = args
        .out
        .clone()
        .or_else(|| spec.outputs.dir.clone())
        .unwrap_or_else(|| {
            PathBuf::from("results").join(spec.name.as_deref().unwrap_or("campaign"))
        });
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    scenario::save(spec, &out.join("scenario.yml"))?;
    faults::save(&plan.faults, &out.join("faults.bin"))?;

    let store = Store::new(&spec.cache, args.cache_dir.as_deref());
    let cuts = cuts(&plan.faults);
    let golden = GoldenRun {
        graph: &plan.graph,
        data: &plan.data,
        cuts,
        store: spec.cache.enabled.then_some(&store),
        top_k: 5,
    }
    .run()?;
    golden::write_golden_csv(&out.join("golden.csv"), &golden.rows)?;
    golden::write_ranges_csv(&out.join("ranges.csv"), &golden.ranges)?;
    let injections = injections(&plan, &golden, models)?;
    let runs = runs(&plan);

    let options = Options {
        batch_size: spec.data.batch_size,
        drop_masked: true,
        stop_at_nonfinite: spec.outputs.early_due,
        from_input: false,
    };
    let cached;
    let computed;
    let frontiers: &dyn crate::inject::Frontiers = if spec.cache.enabled {
        cached = CachedFrontiers {
            entries: golden
                .entries
                .iter()
                .map(|(c, p)| Ok((*c, Reader::open(p)?)))
                .collect::<Result<_>>()?,
        };
        &cached
    } else {
        computed = ComputedFrontiers { data: &plan.data };
        &computed
    };
    let engine = Engine {
        graph: &plan.graph,
        frontiers,
        options,
    };
    let path = out.join("injections.csv");
    let chunks: Vec<&[Injection]> = injections.chunks(options.batch_size.max(1) * 8).collect();
    let rows_of: BTreeMap<u64, Vec<&Fault>> =
        plan.faults.faults.iter().fold(BTreeMap::new(), |mut m, f| {
            m.entry(f.injection).or_insert_with(Vec::new).push(f);
            m
        });
    let mut tally = Tally::default();
    let (mut sink, done) = if args.resume && path.exists() {
        let done = resume_rows(&path, &chunks, &runs, &rows_of, &plan, &mut tally)?;
        (CsvSink::append(&path)?, done)
    } else {
        let header = [&faults::csv::COLUMNS[..], &RESULT_COLUMNS[..]].concat();
        (CsvSink::create(&path, &header)?, 0)
    };
    let mut results: HashMap<usize, InjectionResult> = HashMap::new();
    let mut finished: usize = chunks[..done].iter().map(|c| c.len()).sum();
    for chunk in &chunks[done..] {
        for r in engine.run(chunk)? {
            let faults = &rows_of[&runs[r.id].injection];
            record(&plan, faults, &r, &mut sink)?;
            tally.add(&plan, faults, r.outcome());
            results.insert(r.id, r);
        }
        sink.flush()?;
        finished += chunk.len();
        progress(finished, injections.len());
    }
    let Tally { summary, cells } = tally;
    let summary_files = [
        ("summary.csv", summary.csv()),
        ("summary.md", summary.markdown()),
        (
            "summary.json",
            serde_json::to_string_pretty(&summary).expect("summary serializes"),
        ),
    ];
    let title = format!(
        "{} ({})",
        spec.name.as_deref().unwrap_or("campaign"),
        plan.graph.path.display()
    );
    let summary_files = summary_files
        .into_iter()
        .chain([("heatmap.svg", heatmap::svg(&cells, &title))]);
    for (name, text) in summary_files {
        crate::report::write_atomic(&out.join(name), text.as_bytes())?;
    }
    let verified = (args.verify > 0)
        .then(|| verify(&plan, &injections, &results, args.verify))
        .transpose()?;
    Ok(RunReport {
        out,
        summary,
        golden_accuracy: golden.accuracy(),
        verified,
    })
}

/// Outcome counts for the summaries and the heatmap.
#[derive(Default)]
struct Tally {
    summary: Summary,
    cells: heatmap::Cells,
}

impl Tally {
    fn add(&mut self, plan: &Plan, faults: &[&Fault], outcome: Outcome) {
        self.summary.overall.add(outcome);
        for f in faults {
            let op = plan
                .campaign
                .sites
                .find(&f.layer)
                .map_or("?".into(), |l| l.op.clone());
            let bits: Vec<String> = f.bits.iter().map(u8::to_string).collect();
            let keys = [
                ("layer", f.layer.clone()),
                ("bit", bits.join("+")),
                ("op", op),
                ("dtype", f.dtype.to_string()),
            ];
            self.summary.add(&keys, outcome);
            if let [bit] = f.bits[..] {
                self.cells
                    .entry((f.node as usize, f.layer.clone()))
                    .or_default()
                    .entry(bit)
                    .or_default()
                    .add(outcome);
            }
        }
    }
}

/// Keeps the rows of the leading chunks that finished completely (a killed
/// run may have written part of a chunk, or half a line), counts them, and
/// returns how many chunks are done. Rerunning whole chunks keeps every
/// batch as it was, so a resumed campaign equals an uninterrupted one.
fn resume_rows(
    path: &Path,
    chunks: &[&[Injection]],
    runs: &[Run],
    rows_of: &BTreeMap<u64, Vec<&Fault>>,
    plan: &Plan,
    tally: &mut Tally,
) -> Result<usize> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let complete = text.rfind('\n').map_or("", |i| &text[..=i]);
    let mut lines = complete.lines();
    let header = lines.next().unwrap_or_default();
    let outcome_col = faults::csv::COLUMNS.len() + 4;
    let rows: Vec<&str> = lines.collect();
    let (mut kept, mut done) = (0, 0);
    for chunk in chunks {
        let need: usize = chunk
            .iter()
            .map(|i| rows_of[&runs[i.id].injection].len())
            .sum();
        if kept + need > rows.len() {
            break;
        }
        let mut at = kept;
        for inj in *chunk {
            let run = runs[inj.id];
            let faults = &rows_of[&run.injection];
            let record = csv_record(rows[at]).ok_or_else(|| Error::Data {
                path: path.to_path_buf(),
                msg: format!("row {} is not CSV", at + 2),
            })?;
            let field = |i: usize| record.get(i).map_or("", String::as_str);
            let sample_id = plan.data.sample(run.sample).id.to_string();
            let outcome = parse_outcome(field(outcome_col))
                .filter(|_| field(INJECTION_COL) == run.injection.to_string())
                .filter(|_| field(faults::csv::COLUMNS.len()) == sample_id)
                .ok_or_else(|| Error::Data { path: path.to_path_buf(), msg: format!("row {} does not belong to injection {} of the fault list; start the campaign afresh", at + 2, inj.id) })?;
            tally.add(plan, faults, outcome);
            at += faults.len();
        }
        kept = at;
        done += 1;
    }
    let mut keep = String::from(header);
    keep.push('\n');
    for line in &rows[..kept] {
        keep.push_str(line);
        keep.push('\n');
    }
    crate::report::write_atomic(path, keep.as_bytes())?;
    Ok(done)
}

fn csv_record(line: &str) -> Option<Vec<String>> {
    let mut reader = ::csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(line.as_bytes());
    let record = reader.records().next()?.ok()?;
    Some(record.iter().map(str::to_string).collect())
}

fn parse_outcome(s: &str) -> Option<Outcome> {
    [Outcome::Masked, Outcome::Benign, Outcome::Sde, Outcome::Due]
        .into_iter()
        .find(|o| o.name() == s)
}

/// One CSV row per fault of the injection.
fn record(plan: &Plan, faults: &[&Fault], r: &InjectionResult, sink: &mut CsvSink) -> Result<()> {
    let outcome = r.outcome();
    let golden_class = top1(&r.golden);
    let faulty_class = r.output.as_ref().map(top1);
    let top5_hit = match (&r.output, outcome) {
        (_, Outcome::Masked) => true,
        (Some(out), _) => in_top(out, golden_class, 5),
        (None, _) => false,
    };
    let sample = plan.data.sample(r.sample);
    for (k, f) in faults.iter().enumerate() {
        let site = r.sites.get(k);
        let mut row: Vec<String> = faults::csv::row(f).to_vec();
        row.extend([
            sample.id.to_string(),
            sample.label.map_or(String::new(), |l| l.to_string()),
            golden_class.to_string(),
            match outcome {
                Outcome::Masked => golden_class.to_string(),
                _ => faulty_class.map_or(String::new(), |c| c.to_string()),
            },
            outcome.name().to_string(),
            top5_hit.to_string(),
            site.map_or(String::new(), |s| format!("{:e}", s.original)),
            site.map_or(String::new(), |s| format!("{:e}", s.faulty)),
            r.masked_after
                .map_or(String::new(), |n| plan.graph.nodes[n].name.clone()),
            r.first_nonfinite
                .map_or(String::new(), |n| plan.graph.nodes[n].name.clone()),
            r.error.clone().unwrap_or_default(),
        ]);
        sink.row(row)?;
    }
    Ok(())
}

/// Reruns `n` injections chosen with the campaign seed the plain way
/// ([`plain_run`]: the whole model from the input, no engine shortcut).
fn verify(
    plan: &Plan,
    injections: &[Injection],
    results: &HashMap<usize, InjectionResult>,
    n: usize,
) -> Result<VerifyReport> {
    let mut stream = faults::rng::Stream::new(plan.campaign.seed, 0x5645_5249_4659);
    // Among the injections this process ran (a resumed run did not rerun the rest).
    let ran: Vec<&Injection> = injections
        .iter()
        .filter(|i| results.contains_key(&i.id))
        .collect();
    let mut picked: Vec<usize> = (0..n.min(ran.len()))
        .map(|_| stream.below(ran.len() as u64) as usize)
        .collect();
    picked.sort_unstable();
    picked.dedup();
    let chosen: Vec<Injection> = picked.iter().map(|&i| ran[i].clone()).collect();
    let reference: Vec<InjectionResult> = chosen
        .iter()
        .map(|inj| {
            let input = plan.data.batch(inj.sample..inj.sample + 1)?.input;
            plain_run(&plan.graph, &input, inj)
        })
        .collect::<Result<_>>()?;
    let mut report = VerifyReport {
        checked: chosen.len(),
        ..Default::default()
    };
    for r in &reference {
        let engine = &results[&r.id];
        match agreement(engine, r) {
            Agreement::Exact => report.exact += 1,
            Agreement::WithinRounding => report.within_rounding += 1,
            Agreement::Differs => report.differing.push(format!(
                "injection {} (sample {}): engine {}, full forward {}",
                r.id,
                r.sample,
                engine.outcome().name(),
                r.outcome().name()
            )),
        }
    }
    Ok(report)
}
