//! `faultsweep golden`: the fault-free pass over a data set, filling the
//! layer-split cache; and the data options other commands share.

use std::path::PathBuf;

use clap::Args;

use faultsweep::cache::{CacheSpec, Reader, Store};
use faultsweep::data::{Channels, DataSpec, Dataset, Preprocess, Subset};
use faultsweep::error::{Error, Result};
use faultsweep::golden::{self, GoldenRun};
use faultsweep::load;

/// Where the data comes from and how it is preprocessed.
#[derive(Debug, Args)]
pub struct DataArgs {
    /// IDX file, image folder or .npy file.
    pub data: PathBuf,
    /// Labels (IDX or .npy file, or an array name of a .npz data set); image
    /// folders with class subfolders have their own (folders named 285/,
    /// 967/ are classes 285 and 967; other names count in name order).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// For a .npz data set: the array holding the samples (default: the first).
    #[arg(long)]
    pub array: Option<String>,
    /// Use only the first N samples.
    #[arg(long, value_parser = super::positive)]
    pub first: Option<usize>,
    #[arg(long, default_value_t = 32, value_parser = super::positive)]
    pub batch_size: usize,
    /// Resize the short side of images to this many pixels.
    #[arg(long)]
    pub resize: Option<u32>,
    /// Center-crop images to this size.
    #[arg(long)]
    pub center_crop: Option<u32>,
    /// Divide values by this (default 255 for bytes, 1 for floats).
    #[arg(long, value_parser = divisor)]
    pub scale: Option<f32>,
    /// Per-channel mean, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub mean: Vec<f32>,
    /// Per-channel std, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = divisor)]
    pub std: Vec<f32>,
    /// Channel layout: auto, rgb, bgr, gray.
    #[arg(long, default_value = "auto", value_parser = parse_channels)]
    pub channels: Channels,
}

fn divisor(s: &str) -> std::result::Result<f32, String> {
    faultsweep::data::divisor(s.parse::<f32>().map_err(|e| e.to_string())?)
}

fn parse_channels(s: &str) -> std::result::Result<Channels, String> {
    match s {
        "auto" => Ok(Channels::Auto),
        "rgb" => Ok(Channels::Rgb),
        "bgr" => Ok(Channels::Bgr),
        "gray" => Ok(Channels::Gray),
        _ => Err("expected auto, rgb, bgr or gray".into()),
    }
}

impl DataArgs {
    /// The data set; a `--first` beyond its size is an error naming the flag.
    pub fn open(&self) -> Result<Dataset> {
        let spec = self.spec();
        let first = |m| Error::Data {
            path: spec.path.clone(),
            msg: format!("--first {}: {m}", self.first.unwrap_or_default()),
        };
        Dataset::open_with(&spec, first)
    }

    pub fn spec(&self) -> DataSpec {
        DataSpec {
            path: self.data.clone(),
            labels: self.labels.clone(),
            array: self.array.clone(),
            subset: self.first.map_or(Subset::All, Subset::First),
            correct_only: false,
            batch_size: self.batch_size,
            window: faultsweep::data::default_window(),
            preprocess: Preprocess {
                resize: self.resize,
                center_crop: self.center_crop,
                scale: self.scale,
                mean: self.mean.clone(),
                std: self.std.clone(),
                channels: self.channels,
                ..Default::default()
            },
        }
    }
}

#[derive(Debug, Args)]
pub struct GoldenArgs {
    pub model: PathBuf,
    #[command(flatten)]
    pub data: DataArgs,
    /// Cuts whose frontier to cache, comma-separated (cut k lies before node k).
    #[arg(long, value_delimiter = ',')]
    pub cuts: Vec<usize>,
    /// Cache root (overrides $FAULTSWEEP_CACHE and the default `cache/`).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// zstd level of new entries.
    #[arg(long, default_value_t = CacheSpec::default().zstd_level)]
    pub zstd_level: i32,
    /// Results directory for golden.csv and ranges.csv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 5)]
    pub top_k: usize,
}

pub fn golden(args: GoldenArgs) -> Result<()> {
    let graph = load::load(&args.model)?;
    let data = args.data.open()?;
    let spec = CacheSpec {
        zstd_level: args.zstd_level,
        ..CacheSpec::default()
    };
    let store = Store::new(&spec, args.cache_dir.as_deref());
    let started = std::time::Instant::now();
    let run = GoldenRun {
        graph: &graph,
        data: &data,
        cuts: args.cuts.clone(),
        reads: None,
        store: Some(&store),
        top_k: args.top_k,
    };
    let g = run.run()?;
    outln!(
        "golden pass: {} samples in {:.2} s",
        g.rows.len(),
        started.elapsed().as_secs_f64()
    );
    if let Some(acc) = g.accuracy() {
        outln!("top-1 accuracy {:.2}%", 100.0 * acc);
    }
    let nonfinite = g.rows.iter().filter(|r| r.nonfinite).count();
    if nonfinite > 0 {
        outln!("{nonfinite} samples give NaN or Inf");
    }
    for (cut, path) in &g.entries {
        let r = Reader::open(path)?;
        let (disk, raw) = r.sizes();
        let how = if g.reused.contains(cut) {
            "reused"
        } else {
            "written"
        };
        outln!(
            "cut {cut}: {how} {} ({} raw, {} on disk, ratio {:.2})",
            path.display(),
            raw,
            disk,
            raw as f64 / disk.max(1) as f64
        );
    }
    if let Some(out) = &args.out {
        std::fs::create_dir_all(out).map_err(|e| Error::io(out, e))?;
        golden::write_golden_csv(&out.join("golden.csv"), &g.rows)?;
        golden::write_ranges_csv(&out.join("ranges.csv"), &g.ranges)?;
        outln!("wrote {}/golden.csv and ranges.csv", out.display());
    }
    Ok(())
}
