//! What a results folder says about itself, and `faultsweep report DIR`:
//! the summaries re-derived from `injections.csv` and checked against the
//! ones on disk, and every file checked against the hash recorded for it.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::rows::{existing_rows, finished_in};
use super::shard::Shard;
use super::{plan_recorded, run_count, Plan, RunArgs};
use crate::error::{Error, Result};
use crate::report::{cma, heatmap, Grouping, Summary};

/// Where a campaign's results come from: recorded in `provenance.json`,
/// `summary.json` and `summary.md`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    /// The tool and its version (`faultsweep X.Y.Z`).
    pub tool: String,
    /// The scenario's name (empty when it has none).
    pub scenario: String,
    /// The campaign's seed.
    pub seed: u64,
    /// The model file.
    pub model: String,
    /// blake3 of the model file.
    pub model_blake3: String,
    /// The data set.
    pub data: String,
    /// blake3 of the data set ([`Dataset::hash_into`](crate::data::Dataset::hash_into)).
    pub data_blake3: String,
    /// The labels (a file, or an image folder's class folders) and the
    /// blake3 of their values in sample order; absent without labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<String>,
    /// blake3 of the labels' values in sample order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels_blake3: Option<String>,
    /// The ground truth of `detection.annotations`, which `detections/`
    /// scores against; absent without annotations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<String>,
    /// blake3 of the annotations (a folder's: its files' names and
    /// contents in name order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations_blake3: Option<String>,
    /// Runs (injection x sample) in `injections.csv`.
    pub runs: usize,
    /// The shard of the campaign this folder holds (`run --shard I/N`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<Shard>,
}

impl Provenance {
    /// `runs`: the plan's run count ([`run_count`]), which the caller has.
    pub fn of(plan: &Plan, runs: usize) -> Result<Provenance> {
        let spec = &plan.campaign.spec;
        let model = &plan.graph.path;
        let model_blake3 = file_hash(model)?;
        let mut data = blake3::Hasher::new();
        plan.data.hash_into(&mut data)?;
        let labels: Option<Vec<i64>> = (0..plan.data.len())
            .map(|i| plan.data.sample(i).label)
            .collect();
        let labels_blake3 = labels.map(|l| {
            let bytes: Vec<u8> = l.iter().flat_map(|v| v.to_le_bytes()).collect();
            blake3::hash(&bytes).to_hex().to_string()
        });
        let labels_path = spec.data.labels.as_ref().unwrap_or(&spec.data.path);
        let annotations = (spec.detection.as_ref()).and_then(|d| d.annotations.as_ref());
        Ok(Provenance {
            tool: format!("faultsweep {}", env!("CARGO_PKG_VERSION")),
            scenario: spec.name.clone().unwrap_or_default(),
            seed: plan.campaign.seed,
            model: model.display().to_string(),
            model_blake3,
            data: spec.data.path.display().to_string(),
            data_blake3: data.finalize().to_hex().to_string(),
            labels: labels_blake3
                .is_some()
                .then(|| labels_path.display().to_string()),
            labels_blake3,
            annotations: annotations.map(|a| a.display().to_string()),
            annotations_blake3: annotations.map(|a| tree_hash(a)).transpose()?,
            runs,
            shard: plan.shard.as_ref().map(|p| p.shard),
        })
    }
}

/// The summary files of a campaign, exactly as `run` writes them.
pub fn summary_files(
    plan: &Plan,
    provenance: &Provenance,
    summary: &Summary,
    cells: &heatmap::Cells,
) -> Vec<(&'static str, String)> {
    let spec = &plan.campaign.spec;
    let heatmap_title = format!(
        "{} ({})",
        spec.name.as_deref().unwrap_or("campaign"),
        plan.graph.path.display()
    );
    let mut json = summary.json();
    json["provenance"] = serde_json::to_value(provenance).expect("provenance serializes");
    let p = provenance;
    let markdown = summary.markdown();
    let (title, rest) = markdown.split_once('\n').unwrap_or((&markdown, ""));
    let markdown = format!(
        "{title}\n\n{}: scenario {}, seed {}, model {} (blake3 {}), data {} (blake3 {}), {} runs\n{rest}",
        p.tool, p.scenario, p.seed, p.model, p.model_blake3, p.data, p.data_blake3, p.runs,
    );
    let mut files = vec![
        ("summary.csv", summary.csv()),
        ("summary.md", markdown),
        (
            "summary.json",
            serde_json::to_string_pretty(&json).expect("summary serializes"),
        ),
    ];
    if spec.outputs.heatmap {
        let unit = summary.unit(Grouping::Layer);
        let confidence = summary.settings.confidence;
        files.push((
            "heatmap.svg",
            heatmap::svg(
                cells,
                &heatmap_title,
                unit,
                confidence,
                plan.graph.task.sde_meaning(),
            ),
        ));
        let cma_title = format!("{heatmap_title}: convergence");
        let points = summary.cma.points();
        files.push(("cma.svg", cma::svg(&points, &cma_title, confidence)));
    }
    files
}

/// The files a results folder vouches for in `provenance.json`.
const RECORDED: [&str; 11] = [
    "scenario.yml",
    "faults.bin",
    "golden.csv",
    "ranges.csv",
    "injections.csv",
    "injections.sums",
    "summary.csv",
    "summary.md",
    "summary.json",
    "heatmap.svg",
    "cma.svg",
];

#[derive(Serialize, Deserialize)]
struct Record {
    #[serde(flatten)]
    provenance: Provenance,
    /// BLAKE3 of each file of the folder, when it was written.
    files: BTreeMap<String, String>,
}

/// Writes `provenance.json`, with the hash of every results file.
pub fn write_provenance(out: &Path, provenance: &Provenance) -> Result<()> {
    let record = Record {
        provenance: provenance.clone(),
        files: hashes(out)?,
    };
    let text = serde_json::to_string_pretty(&record).expect("provenance serializes");
    crate::output::write_atomic(&out.join("provenance.json"), text.as_bytes())
}

fn hashes(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut files = BTreeMap::new();
    for name in RECORDED {
        let path = dir.join(name);
        if path.exists() {
            files.insert(name.to_string(), file_hash(&path)?);
        }
    }
    for part in super::parquet::parts(&dir.join(super::parquet::FOLDER))? {
        let name = part.strip_prefix(dir).unwrap_or(&part);
        files.insert(name.to_string_lossy().into_owned(), file_hash(&part)?);
    }
    Ok(files)
}

/// The file's blake3, read a piece at a time (injections.csv may be GBs).
pub(super) fn file_hash(path: &Path) -> Result<String> {
    let mut hasher = blake3::Hasher::new();
    std::fs::File::open(path)
        .and_then(|mut f| std::io::copy(&mut f, &mut hasher))
        .map_err(|e| Error::io(path, e))?;
    Ok(hasher.finalize().to_hex().to_string())
}

/// blake3 of a file, or of a folder's files: each one's name (relative to
/// the folder) and contents, in name order.
fn tree_hash(path: &Path) -> Result<String> {
    if !path.is_dir() {
        return file_hash(path);
    }
    let mut files = Vec::new();
    let mut dirs = vec![path.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))? {
            let entry = entry.map_err(|e| Error::io(&dir, e))?.path();
            match entry.is_dir() {
                true => dirs.push(entry),
                false => files.push(entry),
            }
        }
    }
    files.sort();
    let mut hasher = blake3::Hasher::new();
    for file in files {
        let name = file.strip_prefix(path).unwrap_or(&file);
        hasher.update(name.to_string_lossy().as_bytes());
        hasher.update(b"\n");
        hasher.update(file_hash(&file)?.as_bytes());
    }
    Ok(hasher.finalize().to_hex().to_string())
}

/// `dir`'s `provenance.json` (`None` when the run has not written it).
fn read_record(dir: &Path) -> Result<Option<Record>> {
    let path = dir.join("provenance.json");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let record = serde_json::from_str(&text).map_err(|e| Error::Report {
        path,
        msg: format!("not a provenance record: {e}"),
    })?;
    Ok(Some(record))
}

/// Checks a campaign about to resume in `dir` against `provenance.json`:
/// its scenario and fault list unchanged, and the model and data (as the
/// scenario names them now) those it ran on. `Ok(false)`: there is no
/// record yet (the run stopped before writing it), so no row can be
/// trusted. A mismatch is an error naming the file (exit 11).
pub fn check_inputs(dir: &Path, plan: &Plan, runs: usize) -> Result<bool> {
    let Some(record) = read_record(dir)? else {
        return Ok(false);
    };
    let mismatch = |path: &Path, msg: String| Error::Report {
        path: path.to_path_buf(),
        msg,
    };
    for name in ["scenario.yml", "faults.bin"] {
        let path = dir.join(name);
        if record.files.get(name) != Some(&file_hash(&path)?) {
            return Err(mismatch(
                &path,
                "changed since the campaign started (its blake3 differs from provenance.json's); start the campaign afresh".into(),
            ));
        }
    }
    let now = Provenance::of(plan, runs)?;
    match changed_inputs(&now, &record.provenance).into_iter().next() {
        Some((path, msg)) => Err(mismatch(
            Path::new(&path),
            format!("{msg}; restore that file or start the campaign afresh"),
        )),
        None => Ok(true),
    }
}

/// The model, data and labels whose hash `now` differs from the recorded
/// one (`was`), each with what differs. (A record without labels may come
/// from a version that did not record them: its labels are not compared.)
fn changed_inputs(now: &Provenance, was: &Provenance) -> Vec<(String, String)> {
    let mut inputs = vec![
        (
            now.model.clone(),
            now.model_blake3.clone(),
            was.model_blake3.clone(),
        ),
        (
            now.data.clone(),
            now.data_blake3.clone(),
            was.data_blake3.clone(),
        ),
    ];
    if let Some(recorded) = &was.labels_blake3 {
        let path = now
            .labels
            .clone()
            .or(was.labels.clone())
            .unwrap_or_default();
        let current = now.labels_blake3.clone().unwrap_or_else(|| "none".into());
        inputs.push((path, current, recorded.clone()));
    }
    inputs
        .into_iter()
    .filter(|(_, now, was)| now != was)
    .map(|(path, now, was)| {
        let msg = format!("blake3 {now} is not {was}, which the campaign's rows were computed with (provenance.json)");
        (path, msg)
    })
    .collect()
}

/// What `faultsweep report` found.
pub struct Checked {
    /// The summary re-derived from `injections.csv`.
    pub summary: Summary,
    /// The folder's `provenance.json`.
    pub provenance: Provenance,
    /// Runs in `injections.csv`.
    pub runs: usize,
}

/// The provenance a results folder recorded (`None` before the campaign
/// wrote it).
pub fn recorded(dir: &Path) -> Result<Option<Provenance>> {
    Ok(read_record(dir)?.map(|r| r.provenance))
}

/// The provenance of the finished campaign in `dir` whose files are all as
/// its run wrote them (by their recorded hashes): a cheaper check than
/// [`check`], which also re-derives the summaries. A run records the
/// summaries' hashes only when it finishes.
pub fn check_finished(dir: &Path) -> Result<Provenance> {
    let record = read_record(dir)?.ok_or_else(|| Error::Report {
        path: dir.to_path_buf(),
        msg: "has no provenance.json: not the results folder of a `faultsweep run`".into(),
    })?;
    if !record.files.contains_key("summary.json") {
        return Err(Error::Report {
            path: dir.to_path_buf(),
            msg: "the campaign is not finished (resume it with `faultsweep run --resume`)".into(),
        });
    }
    for (name, hash) in &record.files {
        let path = dir.join(name);
        if !path.exists() {
            return Err(Error::Report {
                path,
                msg: "is missing, though provenance.json records it: the campaign is not finished or was damaged (resume it with `faultsweep run --resume`)".into(),
            });
        }
        if file_hash(&path)? != *hash {
            return Err(Error::Report {
                path,
                msg: "changed since the run wrote it (its blake3 differs from provenance.json's)"
                    .into(),
            });
        }
    }
    Ok(record.provenance)
}

/// Re-derives the summaries of the finished campaign in `dir` from its
/// `injections.csv` and checks them, the files' recorded hashes, and the
/// model and data against the provenance. Any difference is an error naming
/// what differs (exit 11).
pub fn check(dir: &Path) -> Result<Checked> {
    let mismatch = |path: &Path, msg: String| Error::Report {
        path: path.to_path_buf(),
        msg,
    };
    let record_path = dir.join("provenance.json");
    // A folder without a record: the error reading it would give.
    let missing = || {
        Error::io(
            &record_path,
            std::io::Error::from_raw_os_error(libc::ENOENT),
        )
    };
    let record = read_record(dir)?.ok_or_else(missing)?;
    let args = RunArgs {
        faults: Some(dir.join("faults.bin")),
        shard: record.provenance.shard,
        ..RunArgs::default()
    };
    // The faults are not run again: custom models need no registration.
    let plan = plan_recorded(&dir.join("scenario.yml"), &args)?;
    let mut problems = Vec::new();
    let now = hashes(dir)?;
    for (name, hash) in &record.files {
        if now.get(name) != Some(hash) {
            problems.push(format!("{name} changed since the run wrote it"));
        }
    }
    let provenance = Provenance::of(&plan, run_count(&plan)?)?;
    let inputs = changed_inputs(&provenance, &record.provenance);
    problems.extend(inputs.iter().map(|(path, msg)| format!("{path}: {msg}")));
    if inputs.is_empty() && provenance != record.provenance {
        problems.push(format!(
            "the model, data or tool differ from the run's: now {provenance:?}, recorded {:?}",
            record.provenance
        ));
    }
    let path = existing_rows(dir);
    // One chunk per window: only whether every run has its rows matters.
    let done = finished_in(dir, &plan, usize::MAX)?;
    if done.runs != provenance.runs {
        return Err(mismatch(
            &path,
            "the campaign is not finished (resume it with `faultsweep run --resume`)".into(),
        ));
    }
    let (summary, cells) = done.tally.finish(&plan);
    for (name, derived) in summary_files(&plan, &record.provenance, &summary, &cells) {
        let on_disk = std::fs::read_to_string(dir.join(name)).unwrap_or_default();
        if on_disk != derived {
            problems.push(format!(
                "{name} differs from the one derived from injections.csv"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(mismatch(dir, problems.join("; ")));
    }
    Ok(Checked {
        summary,
        runs: provenance.runs,
        provenance,
    })
}
