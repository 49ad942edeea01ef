//! `faultsweep cache`: housekeeping of the layer-split cache (list, show,
//! verify, plan, remove).

use std::path::PathBuf;

use clap::{Args, Subcommand};

use super::golden::DataArgs;
use faultsweep::cache::{CacheSpec, Reader, Store};
use faultsweep::error::{Error, Result};
use faultsweep::golden::GoldenRun;
use faultsweep::load;

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// List entries: key, model, data, cut, samples, sizes and ratio.
    Ls,
    /// Show one entry's header.
    Info { key: String },
    /// Check every checksum of every entry (or of those matching KEY).
    Verify { key: Option<String> },
    /// The cut plan of a model on a data set: per cut, its bytes per
    /// sample, read and recompute times, and whether it is stored (costs
    /// the cache lacks are measured on this machine and kept).
    Plan(Box<PlanArgs>),
    /// Remove the entry whose key starts with KEY (a prefix of several keys
    /// is refused), or all, and the cached golden results and costs, with
    /// --all; --stale (also part of --all) removes the temporary files of
    /// fills whose process is gone.
    Rm {
        key: Option<String>,
        #[arg(long)]
        all: bool,
        #[arg(long)]
        stale: bool,
    },
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Cuts to plan, comma-separated (default: every cut inside the model).
    #[arg(long, value_delimiter = ',')]
    pub cuts: Vec<usize>,
    /// zstd level of the entries.
    #[arg(long, default_value_t = CacheSpec::default().zstd_level)]
    pub zstd_level: i32,
    /// Plan within this many bytes on disk for the data set.
    #[arg(long)]
    pub budget_bytes: Option<u64>,
}

fn plan(args: PlanArgs, cache_dir: Option<PathBuf>) -> Result<()> {
    let graph = load::load(&args.model)?;
    let data = args.data.open()?;
    let spec = CacheSpec {
        zstd_level: args.zstd_level,
        budget_bytes: args.budget_bytes,
        ..CacheSpec::default()
    };
    let store = Store::new(&spec, cache_dir.as_deref());
    let cuts = match args.cuts.is_empty() {
        true => (1..graph.nodes.len()).collect(),
        false => args.cuts,
    };
    // As if every sample read every cut once.
    let reads = cuts.iter().map(|&c| (c, data.len() as u64)).collect();
    let run = GoldenRun {
        graph: &graph,
        data: &data,
        cuts,
        reads: Some(reads),
        store: Some(&store),
        top_k: 1,
    };
    let (plan, costs) = run.plan(&store)?;
    outln!(
        "{:>4}  {:<40} {:>11} {:>11} {:>8} {:>12}  plan",
        "cut",
        "after node",
        "raw B",
        "disk B",
        "read ms",
        "recompute ms"
    );
    let ms = |s: f64| format!("{:.3}", 1e3 * s);
    for (cut, choice) in &plan.cuts {
        let node = &graph.nodes[cut - 1].name;
        let Some(c) = costs.cuts.get(cut) else {
            outln!(
                "{cut:>4}  {node:<40} {:>58}",
                "not per-sample: cannot be cached"
            );
            continue;
        };
        let how = match (choice.stored, choice.root) {
            (true, _) => "stored".to_string(),
            (false, 0) => "recomputed from the input".to_string(),
            (false, root) => format!("recomputed from cut {root}"),
        };
        outln!(
            "{cut:>4}  {node:<40} {:>11} {:>11} {:>8} {:>12}  {how}",
            c.raw_bytes,
            c.disk_bytes,
            ms(c.read_secs),
            ms(choice.recompute_secs)
        );
    }
    let stored = plan.stored();
    let per_sample = plan.disk_bytes(&costs);
    outln!(
        "{} of {} cuts stored: {per_sample} bytes a sample, {} for the {} samples",
        stored.len(),
        plan.cuts.len(),
        per_sample * data.len() as u64,
        data.len()
    );
    outln!(
        "per sample: load {} ms, whole model {} ms (costs measured on this machine, kept in {})",
        ms(costs.input_secs),
        ms(costs.node_secs.iter().sum()),
        store.root.display()
    );
    Ok(())
}

pub fn cache(cmd: CacheCommand, cache_dir: Option<PathBuf>) -> Result<()> {
    let store = Store::new(&CacheSpec::default(), cache_dir.as_deref());
    match cmd {
        CacheCommand::Plan(args) => plan(*args, cache_dir),
        CacheCommand::Ls => {
            outln!(
                "{:<32}  {:>4} {:>7} {:>12} {:>12} {:>6}  model / data",
                "key",
                "cut",
                "samples",
                "raw",
                "disk",
                "ratio"
            );
            for (_, r) in store.entries()? {
                match r {
                    Ok(r) => {
                        let (disk, raw) = r.sizes();
                        let h = &r.header;
                        outln!(
                            "{:<32}  {:>4} {:>7} {:>12} {:>12} {:>6.2}  {} / {}",
                            h.key,
                            h.cut,
                            h.samples,
                            raw,
                            disk,
                            raw as f64 / disk.max(1) as f64,
                            h.model,
                            h.data
                        );
                    }
                    // The error names the path already.
                    Err(e) => outln!("{e}"),
                }
            }
            list_temporaries(&store)
        }
        CacheCommand::Info { key } => {
            for path in only_match(&store, &key)? {
                let r = Reader::open(&path)?;
                outln!(
                    "{}",
                    serde_json::to_string_pretty(&r.header).expect("header serializes")
                );
            }
            Ok(())
        }
        CacheCommand::Verify { key } => {
            let paths = match key {
                Some(k) => matching(&store, &k)?,
                None => store.entries()?.into_iter().map(|e| e.0).collect(),
            };
            let mut bad = None;
            for path in paths {
                match Reader::open(&path).and_then(|r| r.verify()) {
                    Ok(()) => outln!("ok      {}", path.display()),
                    Err(e) => {
                        outln!("CORRUPT {e}");
                        bad = Some(e);
                    }
                }
            }
            list_temporaries(&store)?;
            bad.map_or(Ok(()), Err)
        }
        CacheCommand::Rm { key, all, stale } => {
            if stale || all {
                for t in store.remove_stale()? {
                    outln!(
                        "removed {} ({} bytes, {})",
                        t.path.display(),
                        t.bytes,
                        t.writer()
                    );
                }
            }
            let paths = match (key, all) {
                (_, true) => {
                    let entries = store.entries()?.into_iter().map(|e| e.0);
                    entries.chain(store.small_files()?).collect()
                }
                (Some(k), false) => only_match(&store, &k)?,
                (None, false) if stale => vec![],
                (None, false) => {
                    return Err(Error::Usage(
                        "cache rm needs a KEY, --stale or --all".into(),
                    ))
                }
            };
            for p in paths {
                std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
                outln!("removed {}", p.display());
            }
            Ok(())
        }
    }
}

/// The temporary files under the cache root, with their size and writer;
/// the stale ones (writer gone) say how to remove them.
fn list_temporaries(store: &Store) -> Result<()> {
    for t in store.temporaries()? {
        let hint = match t.stale() {
            true => "; `faultsweep cache rm --stale` removes it",
            false => "",
        };
        let state = if t.stale() { "stale  " } else { "partial" };
        let (path, bytes, who) = (t.path.display(), t.bytes, t.writer());
        outln!("{state} {path} ({bytes} bytes, temporary of {who}{hint})");
    }
    Ok(())
}

fn matching(store: &Store, key: &str) -> Result<Vec<PathBuf>> {
    let found = store.matching(key)?;
    if found.is_empty() {
        return Err(Error::Usage(format!(
            "no cache entry under {} has a key starting with '{key}'",
            store.root.display()
        )));
    }
    Ok(found)
}

/// The one entry whose key starts with `key`: a prefix that names several
/// is refused with their keys, so `cache rm` never deletes more than meant.
fn only_match(store: &Store, key: &str) -> Result<Vec<PathBuf>> {
    let found = matching(store, key)?;
    if found.len() > 1 {
        let keys: Vec<String> = (found.iter())
            .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
            .collect();
        return Err(Error::Usage(format!(
            "'{key}' is the start of {} keys: {}; give more of the key",
            keys.len(),
            keys.join(", ")
        )));
    }
    Ok(found)
}
