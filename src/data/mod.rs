//! Data sets: where samples come from, which of them, and how they are
//! turned into model inputs. Every sample keeps a stable id, its source and
//! its label when known, so a single result row can be traced back.

use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The `data` section of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// An IDX file (raw or gzipped), a folder of images (class subfolders give
    /// labels: their numbers when all are named by numbers, else their name
    /// order), or a .npy/.npz tensor file.
    pub path: PathBuf,
    /// Labels: an IDX or .npy file, or for a .npz data set the name of an
    /// array in it. Optional; image folders with class subfolders have theirs.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// For a .npz data set: the array holding the samples (default: the
    /// first array by name).
    #[serde(default)]
    pub array: Option<String>,
    /// Which samples to use (default: all).
    #[serde(default)]
    pub subset: Subset,
    /// Keep only the samples of the subset that the fault-free model
    /// classifies correctly (top-1 equals the label; PyTorchFI's practice).
    /// Needs labels; a campaign's plan narrows the data set to them
    /// ([`Dataset::retain`]) before its fault list is drawn.
    #[serde(default)]
    pub correct_only: bool,
    /// Samples per forward pass in the golden run.
    #[serde(default = "default_batch_size", deserialize_with = "at_least_one")]
    pub batch_size: usize,
    /// Runs (injection x sample) a campaign reads from its fault list at a
    /// time and orders by sample, so that a sample's runs share batches.
    /// Memory grows with it, not with the list.
    #[serde(default = "default_window", deserialize_with = "at_least_one")]
    pub window: usize,
    /// How each sample becomes a model input.
    #[serde(default)]
    pub preprocess: Preprocess,
}

/// A count that must be positive (a batch or window of 0 would never end);
/// the scenario's keys and the command line's flags share this check.
pub fn count(n: usize) -> std::result::Result<usize, String> {
    match n {
        0 => Err("must be at least 1".into()),
        n => Ok(n),
    }
}

/// A value samples are divided by (scale, std): 0 or a non-finite one would
/// make them NaN or Inf.
pub fn divisor(x: f32) -> std::result::Result<f32, String> {
    match x != 0.0 && x.is_finite() {
        true => Ok(x),
        false => Err(format!(
            "{x} would make samples NaN or Inf; give a finite number other than 0"
        )),
    }
}

fn at_least_one<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<usize, D::Error> {
    count(usize::deserialize(d)?).map_err(serde::de::Error::custom)
}

fn scale<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<f32>, D::Error> {
    let v = Option::<f32>::deserialize(d)?;
    v.map(divisor).transpose().map_err(serde::de::Error::custom)
}

fn stds<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<f32>, D::Error> {
    let v = Vec::<f32>::deserialize(d)?;
    v.into_iter()
        .map(divisor)
        .collect::<std::result::Result<_, _>>()
        .map_err(serde::de::Error::custom)
}

fn default_batch_size() -> usize {
    32
}

/// The default [`DataSpec::window`]: runs a campaign orders at a time.
pub fn default_window() -> usize {
    1 << 15
}

/// A subset of the data set, by position in its natural order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Subset {
    /// Every sample.
    #[default]
    All,
    /// The first N samples.
    First(usize),
    /// Samples `start..end`.
    /// Samples `start..end`.
    Range {
        /// First sample.
        start: usize,
        /// One past the last sample.
        end: usize,
    },
    /// N samples drawn without replacement with a seed, kept in data-set order.
    /// `count` samples drawn with `seed`.
    Random {
        /// Samples drawn.
        count: usize,
        /// Seed of the draw.
        seed: u64,
    },
}

/// Turning a decoded image (or array) into a model input, in this order:
/// resize the short side (or to an exact size), center-crop, divide by
/// `scale`, subtract `mean` and divide by `std` per channel, then move the
/// channels last for an NHWC model.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Resize so the shorter side has this many pixels (bilinear).
    #[serde(default)]
    pub resize: Option<u32>,
    /// Center-crop to this square size after resizing.
    #[serde(default)]
    pub center_crop: Option<u32>,
    /// Values are divided by this; default 255 for byte data (images, IDX,
    /// uint8 arrays), 1 for float arrays.
    #[serde(default, deserialize_with = "scale")]
    pub scale: Option<f32>,
    /// Per-channel mean subtracted after scaling (empty: none).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean (empty: none).
    #[serde(default, deserialize_with = "stds")]
    pub std: Vec<f32>,
    /// Channel layout of the model input.
    #[serde(default)]
    pub channels: Channels,
    /// Resize images to exactly `[height, width]` (bilinear), not keeping
    /// the aspect ratio (a detector's squashed input); instead of `resize`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resize_to: Option<[u32; 2]>,
    /// Axis order of the model input: `nchw` (default) or `nhwc`
    /// (channels last, as TensorFlow exports take).
    #[serde(default, skip_serializing_if = "AxisOrder::is_nchw")]
    pub layout: AxisOrder,
}

/// The axis order of an image model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AxisOrder {
    /// Batch, channels, height, width.
    #[default]
    Nchw,
    /// Batch, height, width, channels.
    Nhwc,
}

impl AxisOrder {
    fn is_nchw(&self) -> bool {
        *self == AxisOrder::Nchw
    }
}

/// The channels a decoded image is converted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// As stored: gray images stay 1 channel, colour images are RGB.
    #[default]
    Auto,
    /// Red, green, blue.
    Rgb,
    /// Blue, green, red (OpenCV's order).
    Bgr,
    /// One gray channel.
    Gray,
}

pub mod annotations;
mod idx;
mod images;
mod npy;

use rand::seq::index::sample as sample_indices;
use rand::SeedableRng;
use tch::{Kind, Tensor};

use crate::error::{Error, Result};

/// One sample of the data set: its stable id (position in the full data set),
/// where it comes from, and its label when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Position in the full data set.
    pub id: usize,
    /// Where it comes from (file, or file and index).
    pub source: String,
    /// The class label, when the data set has labels.
    pub label: Option<i64>,
}

/// A batch of preprocessed samples, ready for the model.
pub struct Batch {
    /// The batch's samples, in order.
    pub samples: Vec<Sample>,
    /// One tensor per model input, N rows each.
    pub inputs: Vec<Tensor>,
}

enum Source {
    Idx(idx::IdxImages),
    Npy(npy::Npy),
    /// A .npz archive's arrays, one per model input, in the model's order.
    Arrays(Vec<npy::Npy>),
    Images(images::ImageFolder),
}

/// An opened data set with its subset selected; reads batches on demand.
/// Its parts ([`Dataset::part`]) share the opened files.
pub struct Dataset {
    /// The data set as configured.
    pub spec: DataSpec,
    source: Arc<Source>,
    /// Selected sample ids, ascending.
    ids: Vec<usize>,
    /// Samples in the whole data set, before the subset.
    total: usize,
    labels: Option<Vec<i64>>,
    /// The model's input types, where known: float data is converted to
    /// them.
    kinds: Vec<Kind>,
}

/// A data file opened for reading: regular files only (a FIFO or device
/// is bad data, exit 4; a missing file is an I/O error, exit 6).
fn open_file(path: &std::path::Path) -> Result<std::fs::File> {
    crate::files::open(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidInput => bad(path, e.to_string()),
        _ => Error::io(path, e),
    })
}

fn bad(path: &std::path::Path, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

impl Dataset {
    /// Opens the data set `spec` names and selects its subset.
    pub fn open(spec: &DataSpec) -> Result<Self> {
        Dataset::open_with(spec, |msg| bad(&spec.path, format!("subset: {msg}")))
    }

    /// As [`Dataset::open`]; `subset_error` turns the words saying why the
    /// subset does not fit the data set into the error of whoever chose it
    /// (a scenario key, a command-line flag).
    pub fn open_with(spec: &DataSpec, subset_error: impl FnOnce(String) -> Error) -> Result<Self> {
        Dataset::open_for(spec, &[], subset_error)
    }

    /// As [`Dataset::open_with`], for a model whose inputs are `inputs`:
    /// with several, the data set is a .npz archive holding one array per
    /// input name; float data reaches an input of another float type
    /// (float16, bfloat16, float64) in that type.
    pub fn open_for(
        spec: &DataSpec,
        inputs: &[crate::graph::InputSpec],
        subset_error: impl FnOnce(String) -> Error,
    ) -> Result<Self> {
        let kinds = inputs.iter().map(|i| i.kind).collect();
        let inputs: Vec<String> = inputs.iter().map(|i| i.name.clone()).collect();
        let path = &spec.path;
        let name = path.to_string_lossy().to_ascii_lowercase();
        let source = if inputs.len() > 1 {
            if !name.ends_with(".npz") {
                let names = inputs.join(", ");
                return Err(bad(path, format!("the model takes {} inputs ({names}): give a .npz data set with one array per input name", inputs.len())));
            }
            let arrays: Vec<npy::Npy> = (inputs.iter())
                .map(|input| npy::Npy::open_npz(path, Some(input)))
                .collect::<Result<_>>()?;
            if let Some(other) = arrays.iter().find(|a| a.len() != arrays[0].len()) {
                let (a, b) = (arrays[0].len(), other.len());
                return Err(bad(path, format!("its input arrays hold {a} and {b} samples: every input needs one row per sample")));
            }
            Source::Arrays(arrays)
        } else if path.is_dir() {
            Source::Images(images::ImageFolder::open(path)?)
        } else if name.ends_with(".npy") {
            Source::Npy(npy::Npy::open(path)?)
        } else if name.ends_with(".npz") {
            Source::Npy(npy::Npy::open_npz(path, spec.array.as_deref())?)
        } else if name.contains("idx") || name.ends_with("ubyte") || name.ends_with("ubyte.gz") {
            Source::Idx(idx::IdxImages::open(path)?)
        } else if !path.exists() {
            return Err(Error::io(
                path,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        } else {
            return Err(bad(path, "unknown data format: expected an image folder, a .npy file or an IDX file (name containing 'idx' or 'ubyte')"));
        };
        let len = match &source {
            Source::Idx(s) => s.len(),
            Source::Npy(s) => s.len(),
            Source::Arrays(s) => s[0].len(),
            Source::Images(s) => s.files.len(),
        };
        let npz = name.ends_with(".npz");
        let labels = match (&spec.labels, &source) {
            (Some(l), _) if npz && !l.exists() => {
                Some(npy::Npy::open_npz(path, l.to_str())?.read_labels()?)
            }
            (Some(l), _) => Some(read_labels(l)?),
            (None, Source::Images(f)) => f.labels.clone(),
            (None, _) => None,
        };
        if let Some(l) = &labels {
            if l.len() != len {
                let at = spec.labels.as_deref().unwrap_or(path);
                return Err(bad(at, format!("{} labels for {len} samples", l.len())));
            }
        }
        let ids = select(&spec.subset, len).map_err(subset_error)?;
        Ok(Dataset {
            spec: spec.clone(),
            source: Arc::new(source),
            ids,
            labels,
            total: len,
            kinds,
        })
    }

    /// Whether the samples have labels.
    pub fn has_labels(&self) -> bool {
        self.labels.is_some()
    }

    /// Keeps the selected samples at `positions` (positions in the subset,
    /// ascending, each below [`Dataset::len`]) and drops the others: the
    /// kept samples are renumbered `0..positions.len()` in order, their ids
    /// (positions in the whole data set) unchanged.
    pub fn retain(&mut self, positions: &[usize]) {
        self.ids = positions.iter().map(|&p| self.ids[p]).collect();
    }

    /// The selected samples at `positions` (a shard's), their ids and
    /// labels as in `self`.
    pub fn part(&self, positions: Range<usize>) -> Dataset {
        Dataset {
            spec: self.spec.clone(),
            source: Arc::clone(&self.source),
            ids: self.ids[positions].to_vec(),
            total: self.total,
            labels: self.labels.clone(),
            kinds: self.kinds.clone(),
        }
    }

    /// Number of selected samples.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Number of samples in the whole data set, before the subset.
    pub fn total_len(&self) -> usize {
        self.total
    }

    /// No sample is selected.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The `pos`-th selected sample.
    pub fn sample(&self, pos: usize) -> Sample {
        let id = self.ids[pos];
        let source = match &*self.source {
            Source::Images(f) => f.files[id].display().to_string(),
            _ => format!("{}#{id}", self.spec.path.display()),
        };
        Sample {
            id,
            source,
            label: self.labels.as_ref().map(|l| l[id]),
        }
    }

    /// The image file of the `pos`-th selected sample, when the data set
    /// is an image folder.
    pub fn image_path(&self, pos: usize) -> Option<&std::path::Path> {
        match &*self.source {
            Source::Images(f) => Some(&f.files[self.ids[pos]]),
            _ => None,
        }
    }

    /// Selected samples `range` (positions in the subset), preprocessed.
    pub fn batch(&self, range: std::ops::Range<usize>) -> Result<Batch> {
        let ids = &self.ids[range.clone()];
        let pre = &self.spec.preprocess;
        let raw = match &*self.source {
            Source::Idx(s) => vec![(s.read(ids)?, true)],
            Source::Npy(s) => vec![(s.read(ids)?, s.kind == Kind::Uint8)],
            Source::Arrays(arrays) => (arrays.iter())
                .map(|s| Ok((s.read(ids)?, s.kind == Kind::Uint8)))
                .collect::<Result<_>>()?,
            Source::Images(s) => vec![(s.read(ids, pre)?, true)],
        };
        let inputs = (raw.into_iter().enumerate())
            .map(|(i, (raw, bytes))| match is_index(raw.kind()) {
                true => as_stored(raw, pre),
                false => normalize(&raw, pre, bytes).map(|x| match self.kinds.get(i) {
                    Some(&k) if crate::graph::is_float(k) => x.to_kind(k),
                    _ => x,
                }),
            })
            .collect::<std::result::Result<Vec<Tensor>, _>>()
            .map_err(|m| bad(&self.spec.path, m))?;
        let inputs = match pre.layout {
            AxisOrder::Nchw => inputs,
            AxisOrder::Nhwc => (inputs.into_iter())
                .map(|x| match x.dim() {
                    4 => Ok(x.permute([0, 2, 3, 1]).contiguous()),
                    d => Err(bad(
                        &self.spec.path,
                        format!("preprocess.layout nhwc needs samples of 3 axes (channels, height, width), these have {}", d.max(1) - 1),
                    )),
                })
                .collect::<Result<Vec<Tensor>>>()?,
        };
        Ok(Batch {
            samples: range.map(|p| self.sample(p)).collect(),
            inputs,
        })
    }

    /// Batches of `size` over the whole subset, in order.
    pub fn batches(&self, size: usize) -> impl Iterator<Item = Result<Batch>> + '_ {
        let size = size.max(1);
        (0..self.len())
            .step_by(size)
            .map(move |s| self.batch(s..(s + size).min(self.len())))
    }

    /// `e` with a hint when it is the model refusing this data's shape
    /// while the images are grayscale and `auto` read them as RGB.
    pub fn explain(&self, e: Error) -> Error {
        let gray = match &*self.source {
            Source::Images(f) => {
                self.spec.preprocess.channels == Channels::Auto && f.first_is_gray()
            }
            _ => false,
        };
        match e {
            Error::Input { path, input, msg } if gray && msg.contains("expected shape") => {
                Error::Input {
                    path,
                    input,
                    msg: format!(
                        "{msg}; the images ({}) are grayscale and were read as RGB (3 channels): for a 1-channel model pass --channels gray (scenario: data.preprocess.channels: gray)",
                        self.spec.path.display()
                    ),
                }
            }
            e => e,
        }
    }

    /// Feeds what identifies the samples' content to `hasher`: the data
    /// files' bytes, the selected ids and the preprocessing.
    pub fn hash_into(&self, hasher: &mut blake3::Hasher) -> Result<()> {
        let files: Vec<&std::path::Path> = match &*self.source {
            Source::Images(f) => self.ids.iter().map(|&i| f.files[i].as_path()).collect(),
            _ => vec![self.spec.path.as_path()],
        };
        for f in files {
            let mut file = std::fs::File::open(f).map_err(|e| Error::io(f, e))?;
            std::io::copy(&mut file, hasher).map_err(|e| Error::io(f, e))?;
        }
        for id in &self.ids {
            hasher.update(&(*id as u64).to_le_bytes());
        }
        hasher.update(format!("{:?}", self.spec.preprocess).as_bytes());
        Ok(())
    }
}

/// A whole .npy array as stored (`infer`'s input): the one .npy reader
/// every command uses.
pub fn read_npy(path: &std::path::Path) -> Result<Tensor> {
    npy::Npy::open(path)?.read_all()
}

/// The array `name` of the .npz archive `path`, in its own type.
pub fn read_npz(path: &std::path::Path, name: &str) -> Result<Tensor> {
    npy::Npy::open_npz(path, Some(name))?.read_all()
}

/// A model's inputs from a file: a .npz with one array per input name, or
/// a .npy for a model of one input. Each array is converted to its input's
/// declared type when no value can change: integers and booleans to any
/// float or wider integer, floats to a wider float; anything else (float
/// to integer, int64 to int32) is an error naming the input.
pub fn read_inputs(
    path: &std::path::Path,
    inputs: &[crate::graph::InputSpec],
) -> Result<Vec<Tensor>> {
    let npz = path
        .to_string_lossy()
        .to_ascii_lowercase()
        .ends_with(".npz");
    if !npz && inputs.len() != 1 {
        let names: Vec<&str> = inputs.iter().map(|i| i.name.as_str()).collect();
        return Err(bad(
            path,
            format!(
                "the model takes {} inputs ({}): give a .npz with one array per input name",
                inputs.len(),
                names.join(", ")
            ),
        ));
    }
    inputs
        .iter()
        .map(|spec| {
            let t = match npz {
                true => read_npz(path, &spec.name)?,
                false => read_npy(path)?,
            };
            match widens(t.kind(), spec.kind) {
                true => Ok(t.to_kind(spec.kind)),
                false => Err(bad(
                    path,
                    format!(
                        "input '{}' takes {} values; {} values would change in the conversion",
                        spec.name,
                        crate::graph::kind_name(spec.kind),
                        crate::graph::kind_name(t.kind())
                    ),
                )),
            }
        })
        .collect()
}

/// Whether every value of kind `from` is exactly a value of kind `to`.
fn widens(from: Kind, to: Kind) -> bool {
    use Kind::*;
    // Integers by (signed, bits); floats by (significand bits, exponent
    // bits): an integer of b bits is exact in a float of b significand bits.
    let int = |k| match k {
        Bool => Some((false, 1)),
        Uint8 => Some((false, 8)),
        Int8 => Some((true, 8)),
        Int16 => Some((true, 16)),
        Int => Some((true, 32)),
        Int64 => Some((true, 64)),
        _ => None,
    };
    let float = |k| match k {
        Half => Some((11, 5)),
        BFloat16 => Some((8, 8)),
        Float => Some((24, 8)),
        Double => Some((53, 11)),
        _ => None,
    };
    match (int(from), int(to), float(from), float(to)) {
        _ if from == to => true,
        (Some((s1, b1)), Some((s2, b2)), ..) if s1 == s2 => b2 >= b1,
        (Some((_, b1)), Some((signed, b2)), ..) => signed && b2 > b1,
        (Some((_, b)), None, None, Some((m, _))) => b <= m,
        (None, None, Some((m1, e1)), Some((m2, e2))) => m2 >= m1 && e2 >= e1,
        _ => false,
    }
}

/// Integer labels from a .npy (1-D) or IDX file.
pub fn read_labels(path: &std::path::Path) -> Result<Vec<i64>> {
    if path
        .to_string_lossy()
        .to_ascii_lowercase()
        .ends_with(".npy")
    {
        npy::Npy::open(path)?.read_labels()
    } else {
        idx::read_labels(path)
    }
}

/// The sample ids a subset selects, ascending; the error says in words why
/// the subset does not fit `len` samples.
fn select(subset: &Subset, len: usize) -> std::result::Result<Vec<usize>, String> {
    let too_many = |n: usize| format!("asks for {n} samples but the data set has {len}");
    match *subset {
        Subset::All => Ok((0..len).collect()),
        Subset::First(n) if n <= len => Ok((0..n).collect()),
        Subset::First(n) => Err(too_many(n)),
        Subset::Range { start, end } if start >= end => Err(format!(
            "range {start}..{end} is empty (start must be below end)"
        )),
        Subset::Range { end, .. } if end > len => Err(too_many(end)),
        Subset::Range { start, end } => Ok((start..end).collect()),
        Subset::Random { count, .. } if count > len => Err(too_many(count)),
        Subset::Random { count, seed } => {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let mut ids = sample_indices(&mut rng, len, count).into_vec();
            ids.sort_unstable();
            Ok(ids)
        }
    }
}

/// Scale, per-channel mean and std: the float input the model sees.
/// Whether arrays of `kind` hold indices (token ids, masks) rather than
/// pixels or measurements: int16, int32, int64 and bool arrays reach the
/// model as they are.
fn is_index(kind: Kind) -> bool {
    matches!(kind, Kind::Int16 | Kind::Int | Kind::Int64 | Kind::Bool)
}

/// Index data as stored; scaling or normalizing it is an error.
fn as_stored(raw: Tensor, pre: &Preprocess) -> std::result::Result<Tensor, String> {
    if pre.scale.is_some() || !pre.mean.is_empty() || !pre.std.is_empty() {
        return Err(format!(
            "holds {} indices (token ids, masks), which reach the model as they are: preprocess.scale, mean and std apply to images and float data",
            crate::graph::kind_name(raw.kind())
        ));
    }
    Ok(raw)
}

fn normalize(raw: &Tensor, pre: &Preprocess, bytes: bool) -> std::result::Result<Tensor, String> {
    let scale = pre.scale.unwrap_or(if bytes { 255.0 } else { 1.0 });
    let mut x = raw.to_kind(Kind::Float);
    if scale != 1.0 {
        x = x
            .f_div_scalar(f64::from(scale))
            .map_err(|e| e.to_string())?;
    }
    let channels = if x.dim() >= 2 { x.size()[1] } else { 1 };
    for (name, v) in [("mean", &pre.mean), ("std", &pre.std)] {
        if !v.is_empty() && v.len() as i64 != channels {
            return Err(format!(
                "preprocess.{name} has {} values, the data has {channels} channels",
                v.len()
            ));
        }
    }
    let rank = x.dim();
    let per_channel = |v: &[f32]| {
        let mut shape = vec![1, channels];
        shape.extend(std::iter::repeat_n(1, rank.saturating_sub(2)));
        Tensor::from_slice(v).reshape(shape)
    };
    if !pre.mean.is_empty() {
        x = x
            .f_sub(&per_channel(&pre.mean))
            .map_err(|e| e.to_string())?;
    }
    if !pre.std.is_empty() {
        x = x.f_div(&per_channel(&pre.std)).map_err(|e| e.to_string())?;
    }
    Ok(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_convert_only_where_no_value_changes() {
        use Kind::*;
        for (from, to) in [
            (Uint8, Float),
            (Bool, Int64),
            (Int, Int64),
            (Int16, Float),
            (Half, Float),
            (BFloat16, Double),
            (Int, Double),
        ] {
            assert!(widens(from, to), "{from:?} to {to:?}");
        }
        for (from, to) in [
            (Float, Int64),
            (Int64, Int),
            (Int, Float),
            (Int64, Double),
            (Double, Float),
            (BFloat16, Half),
            (Uint8, Int8),
            (Int8, Uint8),
        ] {
            assert!(!widens(from, to), "{from:?} to {to:?}");
        }
    }
}
