//! `faultsweep merge OUT DIR...`: the results folders of a campaign's
//! shards into the folder a single run would have written. In: N finished
//! shard folders of one campaign. Out: OUT with the single run's
//! `injections.csv` (the shards' rows in the single run's order: per window,
//! shard 1's rows, then shard 2's, ...), `injections.sums`, `golden.csv`,
//! summaries, heatmap and provenance (and a detection campaign's
//! `detections/`), byte for byte.
//!
//! Checked first, each failure naming the folder (exit 11): every folder is
//! a finished shard whose files match the hashes its provenance records,
//! all belong to one campaign (the same scenario apart from
//! the results folder and the cache folder, fault list, model, data, labels, seed and tool), and
//! the set is complete, without duplicates.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::provenance::{check_finished, write_provenance, Provenance};
use super::results::csv_record;
use super::rows::{existing_rows, finished_in, Lines, Rows};
use super::shard::{self, Shard};
use super::{plan_recorded, refuse_campaign_folder, run_count, summary_files, windows, RunArgs};
use crate::error::{Error, Result};
use crate::golden::NodeRange;
use crate::scenario;

/// What a merge wrote.
pub struct Merged {
    /// The merged results folder.
    pub out: PathBuf,
    /// Runs in its `injections.csv`.
    pub runs: usize,
    /// The summaries, as `report` prints them.
    pub summary: crate::report::Summary,
}

/// Merges the shard folders `dirs` (any order) into `out`.
pub fn merge(out: &Path, dirs: &[PathBuf]) -> Result<Merged> {
    let shards = check_shards(dirs)?;
    let first = &shards[0].1;
    let out = std::path::absolute(out).map_err(|e| Error::io(out, e))?;
    std::fs::create_dir_all(&out).map_err(|e| Error::io(&out, e))?;
    let _lock = crate::lock::try_lock(&out.join(super::LOCK), "the results folder")?;
    refuse_campaign_folder(&out)?;
    let args = RunArgs {
        faults: Some(first.join("faults.bin")),
        out: Some(out.clone()),
        ..RunArgs::default()
    };
    let mut plan = plan_recorded(&first.join("scenario.yml"), &args)?;
    let copy = |name: &str| {
        let to = out.join(name);
        std::fs::copy(first.join(name), &to).map_err(|e| Error::io(&to, e))
    };
    copy("faults.bin")?;
    scenario::save(&plan.campaign.spec, &out.join("scenario.yml"))?;
    concat_golden(&shards, &out.join("golden.csv"))?;
    combine_ranges(&shards, &out.join("ranges.csv"))?;
    let step = plan.campaign.spec.data.batch_size.max(1) * 8;
    interleave(&plan, &shards, &out, step)?;
    let total = run_count(&plan)?;
    let done = finished_in(&out, &plan, usize::MAX)?;
    if done.runs != total {
        return Err(Error::Report {
            path: existing_rows(&out),
            msg: format!(
                "the shards hold {} of the campaign's {total} runs",
                done.runs
            ),
        });
    }
    let (summary, cells) = done.tally.finish(&plan);
    let provenance = Provenance::of(&plan, total)?;
    for (name, text) in summary_files(&plan, &provenance, &summary, &cells) {
        crate::output::write_atomic(&out.join(name), text.as_bytes())?;
    }
    write_provenance(&out, &provenance)?;
    merged_detections(&mut plan, &out)?;
    Ok(Merged {
        out,
        runs: total,
        summary,
    })
}

/// A detection campaign's `detections/` as the single run writes it: its
/// SDE runs are spread over the shards (which write none), so they are
/// rerun from the merged rows, against the annotations if any.
fn merged_detections(plan: &mut super::Plan, out: &Path) -> Result<()> {
    if !matches!(*plan.graph.task, crate::classify::Task::Detection(_)) {
        return Ok(());
    }
    let sc = scenario::Scenario::load(&out.join("scenario.yml"))?;
    plan.truth = super::detections::ground_truth(&sc, &plan.graph, &plan.data)?;
    let scales = super::runs::int8_scales(&read_ranges(&out.join("ranges.csv"))?);
    let resolver = super::runs::Resolver::new(&plan.graph, &scales, &Default::default())?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    super::detections::write(plan, &plan.graph, &resolver, out, workers)?;
    Ok(())
}

/// The shards, checked, in index order: (shard, folder).
fn check_shards(dirs: &[PathBuf]) -> Result<Vec<(Shard, PathBuf)>> {
    let bad = |dir: &Path, msg: String| Error::Report {
        path: dir.to_path_buf(),
        msg,
    };
    let mut found: BTreeMap<u32, PathBuf> = BTreeMap::new();
    let mut campaign: Option<(PathBuf, Identity)> = None;
    let mut count = None;
    for dir in dirs {
        // Finished, and every file as its run wrote it.
        let provenance = check_finished(dir)?;
        let Some(shard) = provenance.shard else {
            return Err(bad(
                dir,
                "is not a shard (it was not run with --shard I/N)".into(),
            ));
        };
        let identity = Identity::of(dir, &provenance)?;
        match &campaign {
            None => campaign = Some((dir.clone(), identity)),
            Some((other, id)) => {
                if let Some(what) = id.differs(&identity) {
                    return Err(bad(
                        dir,
                        format!(
                            "is a shard of another campaign than {}: {what} differs",
                            other.display()
                        ),
                    ));
                }
            }
        }
        match count {
            None => count = Some(shard.count),
            Some(n) if n != shard.count => {
                return Err(bad(
                    dir,
                    format!(
                        "is shard {shard}, of {} shards; the others are of {n}",
                        shard.count
                    ),
                ))
            }
            Some(_) => {}
        }
        if let Some(other) = found.insert(shard.index, dir.clone()) {
            return Err(bad(
                dir,
                format!(
                    "is shard {shard}, and so is {} (give each shard once)",
                    other.display()
                ),
            ));
        }
    }
    let count = count.ok_or_else(|| Error::Usage("merge: give the shard folders".into()))?;
    let missing: Vec<String> = (1..=count)
        .filter(|i| !found.contains_key(i))
        .map(|index| Shard { index, count }.to_string())
        .collect();
    if !missing.is_empty() {
        let (dir, _) = campaign.expect("a shard was read");
        return Err(bad(
            &dir,
            format!(
                "missing shards: {} (give all {count} shard folders)",
                missing.join(", ")
            ),
        ));
    }
    Ok(found
        .into_iter()
        .map(|(index, dir)| (Shard { index, count }, dir))
        .collect())
}

/// What makes two shards parts of one campaign.
#[derive(PartialEq)]
struct Identity {
    provenance: Provenance,
    scenario: String,
    faults: String,
}

impl Identity {
    fn of(dir: &Path, p: &Provenance) -> Result<Identity> {
        // Where the results and the cache went does not change them.
        let mut spec = scenario::Scenario::load(&dir.join("scenario.yml"))?.spec;
        spec.outputs.dir = None;
        spec.cache.dir = None;
        let scenario = serde_norway::to_string(&spec).unwrap_or_default();
        let faults = super::provenance::file_hash(&dir.join("faults.bin"))?;
        let provenance = Provenance {
            runs: 0,
            shard: None,
            ..p.clone()
        };
        Ok(Identity {
            provenance,
            scenario,
            faults,
        })
    }

    /// What differs from `other`, in words (`None`: one campaign).
    fn differs(&self, other: &Identity) -> Option<&'static str> {
        let (a, b) = (&self.provenance, &other.provenance);
        [
            (self.faults != other.faults, "the fault list (faults.bin)"),
            (a.model_blake3 != b.model_blake3, "the model"),
            (a.data_blake3 != b.data_blake3, "the data set"),
            (a.labels_blake3 != b.labels_blake3, "the labels"),
            (a.seed != b.seed, "the seed"),
            (a.tool != b.tool, "the tool version"),
            (self.scenario != other.scenario, "the scenario"),
        ]
        .into_iter()
        .find_map(|(differs, what)| differs.then_some(what))
    }
}

/// The single run's `golden.csv`: each shard's rows (its samples) in shard
/// order, under the header of a shard with rows (a shard without samples
/// writes no top-k columns).
fn concat_golden(shards: &[(Shard, PathBuf)], path: &Path) -> Result<()> {
    let mut header = None;
    let mut rows = Vec::new();
    for (_, dir) in shards {
        let p = dir.join("golden.csv");
        let text = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
        let split = text
            .iter()
            .position(|&b| b == b'\n')
            .map_or(text.len(), |i| i + 1);
        let (head, body) = text.split_at(split);
        if header.is_none() && !body.is_empty() {
            header = Some(head.to_vec());
        }
        rows.extend_from_slice(body);
    }
    let mut bytes = header.unwrap_or_default();
    bytes.extend(rows);
    crate::output::write_atomic(path, &bytes)
}

/// The single run's `ranges.csv`: per node, the smallest of the shards'
/// minima and the largest of their maxima (a shard's ranges cover its own
/// samples).
fn combine_ranges(shards: &[(Shard, PathBuf)], path: &Path) -> Result<()> {
    let mut ranges: BTreeMap<usize, NodeRange> = BTreeMap::new();
    for (_, dir) in shards {
        let p = dir.join("ranges.csv");
        for range in read_ranges(&p)? {
            ranges
                .entry(range.index)
                .and_modify(|r| {
                    r.min = r.min.min(range.min);
                    r.max = r.max.max(range.max);
                })
                .or_insert(range);
        }
    }
    let ranges: Vec<NodeRange> = ranges.into_values().collect();
    crate::golden::write_ranges_csv(path, &ranges)
}

/// The rows of a `ranges.csv`.
fn read_ranges(path: &Path) -> Result<Vec<NodeRange>> {
    let bad = |msg: String| Error::Report {
        path: path.to_path_buf(),
        msg,
    };
    let mut reader = ::csv::Reader::from_path(path).map_err(|e| bad(e.to_string()))?;
    let mut ranges = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| bad(e.to_string()))?;
        let field = |i: usize| record.get(i).unwrap_or_default();
        let number = |i: usize| -> Result<f64> {
            field(i)
                .parse()
                .map_err(|_| bad(format!("line {}: {:?} is not a number", line + 2, field(i))))
        };
        ranges.push(NodeRange {
            index: number(0)? as usize,
            node: field(1).to_string(),
            min: number(2)?,
            max: number(3)?,
        });
    }
    Ok(ranges)
}

/// Writes the single run's rows (`injections.csv` or its Parquet parts)
/// and `injections.sums` from the shards' rows: per window of the single
/// run, each shard's rows of it in shard order, with a sums line per chunk
/// of `step` runs.
fn interleave(
    plan: &super::Plan,
    shards: &[(Shard, PathBuf)],
    out: &Path,
    step: usize,
) -> Result<()> {
    let ranges = shard::ranges(plan, shards.len() as u32)?;
    let mut readers = Vec::new();
    let mut header: Option<String> = None;
    for (_, dir) in shards {
        let mut lines = Lines::open(&existing_rows(dir))?;
        // A shard without runs may have written no rows at all.
        if let Some(line) = lines.next()? {
            match &header {
                None => header = Some(line),
                Some(h) if *h != line => {
                    return Err(Error::Report {
                        path: lines.path().to_path_buf(),
                        msg: "its header differs from the first shard's".into(),
                    })
                }
                Some(_) => {}
            }
        }
        readers.push(lines);
    }
    let header = csv_record(&header.unwrap_or_default()).unwrap_or_default();
    let mut rows = Rows::create(out, plan.campaign.spec.outputs.injections, &header)?;
    for window in windows(plan)? {
        let window = window?;
        // Each run's rows, taken from its shard in window order.
        let mut lines: Vec<String> = Vec::new();
        let mut per_run = Vec::with_capacity(window.runs.len());
        for id in window.ids() {
            let run = window.run(id);
            let k = ranges
                .iter()
                .position(|r| r.contains(&(run.sample as u64)))
                .expect("the ranges cover every sample");
            let reader = &mut readers[k];
            let start = lines.len();
            for _ in 0..window.faults(id).len() {
                let line = reader.next()?.ok_or_else(|| Error::Report {
                    path: reader.path().to_path_buf(),
                    msg: "ends before the shard's last run".into(),
                })?;
                lines.push(line);
            }
            per_run.push(start..lines.len());
        }
        for chunk in window.chunks(step) {
            let (from, to) = (
                per_run[chunk.start - window.first].start,
                per_run[chunk.end - 1 - window.first].end,
            );
            for line in &lines[from..to] {
                let fields = csv_record(line).ok_or_else(|| Error::Report {
                    path: out.to_path_buf(),
                    msg: format!("a shard's row is not CSV: {line}"),
                })?;
                rows.row(fields)?;
            }
            rows.flushed(chunk.end, chunk.end == window.ids().end)?;
        }
    }
    for reader in &mut readers {
        if reader.next()?.is_some() {
            return Err(Error::Report {
                path: reader.path().to_path_buf(),
                msg: "holds more rows than its shard's runs".into(),
            });
        }
    }
    Ok(())
}
