//! Pipeline step 4, faults: the seeded, pre-generated fault list
//! (PyTorchALFI's "fault matrix"). In: a [`Recipe`] (seed, data size and
//! resolved sweep points; a validated
//! [`Campaign`](crate::scenario::Campaign) converts into one). Out: a [`FaultList`], one
//! [`Fault`] per row; rows sharing an `injection` id strike one inference
//! together. Lists are saved as a versioned binary file (`file`) and
//! exported and imported as CSV ([`csv`]); imported rows are checked against
//! the model ([`check`]).
//!
//! What a fault does to a value is the pure [`corrupt`] (built-in models) or
//! a [`FaultFn`] registered in [`Models`] (custom models).

pub mod count;
pub mod csv;
pub mod file;
mod format;
mod generate;
mod recipe;
pub mod rng;
pub mod sites;
pub mod summary;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use count::SampleSize;
pub use format::{corrupt, int8_scale, FaultModel, NumFormat};
pub use generate::{generate, meta as generated_meta, stream};
pub use recipe::{Budget, LayerChoice, PerInjection, Point, Recipe, Stratum};
pub use sites::{Candidate, Layer, Region, Sites, Target, TensorSite};

/// Which data samples a fault is active for: positions in the scenario's
/// data subset (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Samples {
    /// One sample (transient faults). CSV: `12`.
    One(u64),
    /// Samples `start..end` (a permanent fault for one batch). CSV: `0..32`.
    Range {
        /// First sample.
        start: u64,
        /// One past the last sample.
        end: u64,
    },
    /// Every sample (permanent for an epoch or the whole campaign). CSV: `*`.
    All,
}

impl fmt::Display for Samples {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Samples::One(s) => write!(f, "{s}"),
            Samples::Range { start, end } => write!(f, "{start}..{end}"),
            Samples::All => f.write_str("*"),
        }
    }
}

impl Samples {
    /// Reads the CSV form (`12`, `0..32`, `*`).
    pub fn parse(s: &str) -> Option<Samples> {
        if s == "*" {
            return Some(Samples::All);
        }
        match s.split_once("..") {
            Some((a, b)) => {
                let (start, end) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
                (start < end).then_some(Samples::Range { start, end })
            }
            None => s.trim().parse().ok().map(Samples::One),
        }
    }

    /// The first sample past the last one used (`None` for all).
    pub fn end(&self) -> Option<u64> {
        match self {
            Samples::One(s) => Some(s + 1),
            Samples::Range { end, .. } => Some(*end),
            Samples::All => None,
        }
    }
}

/// How long a fault stays.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One inference.
    #[default]
    Transient,
    /// Every inference of one batch of samples.
    Batch,
    /// One pass over the data set.
    Epoch,
    /// The whole campaign (a permanent weight fault).
    Campaign,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 4] = [
        Scope::Transient,
        Scope::Batch,
        Scope::Epoch,
        Scope::Campaign,
    ];

    /// The name in scenarios and CSV.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Transient => "transient",
            Scope::Batch => "batch",
            Scope::Epoch => "epoch",
            Scope::Campaign => "campaign",
        }
    }

    /// The scope named `s`.
    pub fn parse(s: &str) -> Option<Scope> {
        Self::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// One fault: one value changed at one site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// Row id, unique in the list.
    pub fault_id: u64,
    /// Faults with the same injection id strike the same inference(s).
    pub injection: u64,
    /// The samples the fault is active for.
    pub sample: Samples,
    /// A neuron (activation) or a weight.
    pub target: Target,
    /// Node index in topological order.
    pub node: u32,
    /// Node name (`op#index` when unnamed).
    pub layer: String,
    /// The value (neuron) or initializer (weight) name.
    pub tensor: String,
    /// Index in the per-sample tensor (neuron) or the weight tensor.
    pub coord: Vec<u32>,
    /// What the fault does to the value.
    pub model: FaultModel,
    /// The format the value is corrupted in.
    pub dtype: NumFormat,
    /// Bits the model acts on (empty for value models), descending.
    pub bits: Vec<u8>,
    /// How long the fault lasts.
    pub scope: Scope,
    /// Sweep point the fault belongs to.
    pub sweep: u32,
    /// The fault's random word (random_value draws its value from it).
    pub draw: u64,
}

impl Fault {
    /// The faulty value of `original` under a built-in model (`None` for a
    /// custom one: use [`Models::apply`]).
    pub fn corrupt(&self, original: f64, int8_scale: f32) -> Option<f64> {
        corrupt(
            original,
            &self.model,
            self.dtype,
            &self.bits,
            self.draw,
            int8_scale,
        )
    }
}

/// A sweep point of a generated list: its id and the swept keys' values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointInfo {
    /// The point's id.
    pub id: u32,
    /// The swept keys and their values.
    pub label: String,
}

/// The Leveugle sample size chosen for one stratum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StratumInfo {
    /// The stratum's sweep point.
    pub sweep: u32,
    /// The stratum's layer.
    pub layer: String,
    /// Neurons or weights of that layer.
    pub target: Target,
    /// The bit, for per-bit strata.
    pub bit: Option<u8>,
    /// The Leveugle sample size chosen.
    pub size: SampleSize,
}

/// What a list was generated from (empty for imported CSV).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Meta {
    /// The campaign seed.
    pub seed: Option<u64>,
    /// The scenario file.
    pub scenario: Option<String>,
    /// The model file.
    pub model: Option<String>,
    /// Samples in the data subset the list was drawn for.
    pub samples: Option<u64>,
    /// The sweep points.
    pub points: Vec<PointInfo>,
    /// The strata of stratified points.
    pub strata: Vec<StratumInfo>,
}

/// A fault list: metadata and rows.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FaultList {
    /// What the list was generated from.
    pub meta: Meta,
    /// The rows, by `fault_id`.
    pub faults: Vec<Fault>,
}

/// A custom fault model: maps the original value at a site to the faulty one
/// (PyTorchFI's custom error models). Register it in [`Models`] by name and
/// name it `custom:NAME` in scenarios and CSV.
pub trait FaultFn: Send + Sync {
    /// The faulty value of `original` at `site`.
    fn apply(&self, original: f32, site: &Site<'_>) -> f32;
}

/// Where a fault strikes, as seen by a [`FaultFn`].
pub struct Site<'a> {
    /// The fault being applied.
    pub fault: &'a Fault,
    /// Scale of the tensor's golden range (see [`int8_scale`]).
    pub int8_scale: f32,
}

/// The fault models available to a run: the built-ins and registered custom
/// ones.
#[derive(Default, Clone)]
pub struct Models {
    custom: BTreeMap<String, Arc<dyn FaultFn>>,
}

impl Models {
    /// Registers the model `custom:NAME` under `name`.
    pub fn register(&mut self, name: impl Into<String>, f: Arc<dyn FaultFn>) {
        self.custom.insert(name.into(), f);
    }

    /// A model is registered under `name`.
    pub fn has(&self, name: &str) -> bool {
        self.custom.contains_key(name)
    }

    /// The faulty value of `original` at `site`; `None` for an unregistered
    /// custom model (which sees the value as f32: exact for every format
    /// but an int32 word beyond 2^24).
    pub fn apply(&self, original: f64, site: &Site<'_>) -> Option<f64> {
        match &site.fault.model {
            FaultModel::Custom(name) => {
                let f = self.custom.get(name)?;
                Some(f64::from(f.apply(original as f32, site)))
            }
            _ => site.fault.corrupt(original, site.int8_scale),
        }
    }
}

/// Checks one fault against the model: the layer exists, the tensor is one
/// of its sites for the target, the coordinate is inside it, the bits fit the
/// format and suit the model, the sample is in the data subset. Returns the
/// node index, or what is wrong.
pub fn check(fault: &Fault, sites: &Sites, samples: Option<u64>) -> Result<u32, String> {
    let layer = sites
        .find(&fault.layer)
        .ok_or_else(|| format!("layer '{}' is not a node of the model", fault.layer))?;
    let tensor = layer.tensor(fault.target, &fault.tensor).ok_or_else(|| {
        let names: Vec<&str> = layer
            .tensors(fault.target, true)
            .iter()
            .map(|t| t.name.as_str())
            .collect();
        format!(
            "tensor '{}' is not a {} site of layer '{}' (it has: {})",
            fault.tensor,
            fault.target,
            layer.name,
            if names.is_empty() {
                "none".into()
            } else {
                names.join(", ")
            }
        )
    })?;
    check_coord(&fault.coord, &tensor.shape)?;
    check_format(fault.dtype, tensor)?;
    check_bits(&fault.model, fault.dtype, &fault.bits)?;
    if let (Some(n), Some(end)) = (samples, fault.sample.end()) {
        if end > n {
            return Err(format!(
                "sample {} is outside the data subset ({n} samples)",
                fault.sample
            ));
        }
    }
    Ok(layer.node as u32)
}

/// As [`check`]; a node the row gives (`given`) must be the model's.
fn check_node(
    fault: &Fault,
    sites: &Sites,
    samples: Option<u64>,
    given: bool,
) -> Result<u32, String> {
    let node = check(fault, sites, samples)?;
    if given && node != fault.node {
        return Err(format!(
            "node {} but layer '{}' is node {node}",
            fault.node, fault.layer
        ));
    }
    Ok(node)
}

fn check_coord(coord: &[u32], shape: &[u64]) -> Result<(), String> {
    let inside =
        coord.len() == shape.len() && coord.iter().zip(shape).all(|(&c, &d)| u64::from(c) < d);
    if inside {
        Ok(())
    } else {
        Err(format!(
            "coord [{}] is outside the tensor of shape [{}]",
            join(coord),
            join(shape)
        ))
    }
}

/// A native format strikes only a tensor whose words are its type; an
/// emulation only a float tensor.
pub fn check_format(dtype: NumFormat, site: &TensorSite) -> Result<(), String> {
    let kind = if dtype.is_native() {
        site.word
    } else {
        site.kind
    };
    if dtype.fits(kind) {
        return Ok(());
    }
    let native = NumFormat::of_kind(site.word).map_or("none".into(), |f| f.to_string());
    Err(format!(
        "{dtype} does not fit tensor '{}', which holds {}: {}",
        site.name,
        crate::graph::kind_name(kind),
        match crate::graph::is_float(site.kind) {
            true => format!("its formats are {native} and the emulations fp32, fp16, bf16, int8"),
            false => format!("its format is {native} (`dtype: native` picks it)"),
        }
    ))
}

/// Bits must fit the format, be distinct, and be given exactly when the
/// model acts on bits.
pub fn check_bits(model: &FaultModel, dtype: NumFormat, bits: &[u8]) -> Result<(), String> {
    if let Some(b) = bits.iter().find(|&&b| b >= dtype.width()) {
        return Err(format!(
            "bit {b} does not exist in {dtype} (bits 0..={})",
            dtype.width() - 1
        ));
    }
    let mut sorted = bits.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() != bits.len() {
        return Err("a bit is given twice".into());
    }
    match (model.uses_bits(), bits.is_empty()) {
        (true, true) => Err(format!("{} needs at least one bit", model.name())),
        (false, false) if !matches!(model, FaultModel::Custom(_)) => {
            Err(format!("{} takes no bits (write '-')", model.name()))
        }
        _ => Ok(()),
    }
}

/// The lowest bits of the runs of `k` adjacent bits within `bits`.
pub fn adjacent_starts(bits: &[u8], k: u8) -> Vec<u8> {
    (bits.iter().copied())
        .filter(|&b| (b..b.saturating_add(k)).all(|x| bits.contains(&x)) && k > 0)
        .collect()
}

/// Items joined with commas (coordinates and shapes in messages and CSV).
pub fn join<T: fmt::Display>(items: &[T]) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// Reads a fault list: CSV when the name ends in `.csv`, else the binary
/// file. With `sites`, every row is checked against the model (binary rows
/// are named by position and fault id, CSV rows by line).
pub fn load(
    path: &std::path::Path,
    sites: Option<&Sites>,
    samples: Option<u64>,
) -> crate::Result<FaultList> {
    let (meta, rows) = rows(path, sites, samples)?;
    Ok(FaultList {
        meta,
        faults: rows.collect::<crate::Result<_>>()?,
    })
}

/// A fault list's rows, read one at a time as they are consumed.
pub type Rows<'s> = Box<dyn Iterator<Item = crate::Result<Fault>> + 's>;

/// The rows of a fault list file, read (and checked, see [`load`]) one at a
/// time as they are consumed, and the list's metadata.
pub fn rows<'s>(
    path: &std::path::Path,
    sites: Option<&'s Sites>,
    samples: Option<u64>,
) -> crate::Result<(Meta, Rows<'s>)> {
    if is_csv(path) {
        return Ok((
            Meta::default(),
            Box::new(csv::Reader::open(path, sites, samples)?),
        ));
    }
    let reader = file::Reader::open(path)?;
    let meta = reader.meta.clone();
    let Some(sites) = sites else {
        return Ok((meta, Box::new(reader)));
    };
    let path = path.to_path_buf();
    let checked = reader.enumerate().map(move |(row, f)| {
        let f = f?;
        match check_node(&f, sites, samples, true) {
            Ok(_) => Ok(f),
            Err(msg) => Err(crate::Error::FaultList {
                path: path.clone(),
                line: None,
                msg: format!("row {row} (fault {}): {msg}", f.fault_id),
            }),
        }
    });
    Ok((meta, Box::new(checked)))
}

/// Writes a fault list: CSV when the name ends in `.csv`, else binary.
pub fn save(list: &FaultList, path: &std::path::Path) -> crate::Result<()> {
    let rows = list.faults.iter().cloned().map(Ok);
    save_rows(path, &list.meta, rows).map(|_| ())
}

/// As [`save`], a row at a time as `faults` yields them; returns how many.
pub fn save_rows(
    path: &std::path::Path,
    meta: &Meta,
    faults: impl Iterator<Item = crate::Result<Fault>>,
) -> crate::Result<u64> {
    match is_csv(path) {
        true => csv::write_rows(path, faults),
        false => file::write_rows(path, meta, faults),
    }
}

fn is_csv(path: &std::path::Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"))
}
