//! The scenario as written: serde structs, unknown keys rejected, every
//! default documented here and in scenarios/README.md. Nothing in this file
//! looks at a model; [`super::validate`] resolves a spec against one.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::cache::CacheSpec;
use crate::data::DataSpec;
// The layer choice is the generator's; the scenario names it as written.
pub use crate::faults::LayerChoice;
use crate::faults::{NumFormat, Target};

/// A whole scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// Scenario format version (1).
    #[serde(default = "one_u32")]
    pub version: u32,
    /// Campaign name (default: the file name without extension).
    #[serde(default)]
    pub name: Option<String>,
    /// Seed of the fault list (default: drawn once and written to the
    /// effective scenario).
    #[serde(default)]
    pub seed: Option<u64>,
    /// The model (`model:`).
    pub model: ModelSpec,
    /// What the model's outputs mean (`task:`, default `classification`).
    #[serde(default, skip_serializing_if = "TaskKind::is_classification")]
    pub task: TaskKind,
    /// Settings of `task: segmentation` (`segmentation:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segmentation: Option<SegmentationSpec>,
    /// Settings of `task: values` (`values:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<ValuesSpec>,
    /// Settings of `task: detection` (`detection:`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detection: Option<DetectionSpec>,
    /// The data set and its preprocessing (`data:`).
    pub data: DataSpec,
    /// The layer-split cache (`cache:`).
    #[serde(default)]
    pub cache: CacheSpec,
    /// Where faults strike (`targets:`).
    #[serde(default)]
    pub targets: TargetsSpec,
    /// What a fault does (`fault:`).
    #[serde(default)]
    pub fault: FaultSpec,
    /// How many injections (`counts:`).
    pub counts: CountsSpec,
    /// Values to sweep (`sweep:`).
    #[serde(default)]
    pub sweep: SweepSpec,
    /// What the run writes (`outputs:`).
    #[serde(default)]
    pub outputs: OutputsSpec,
    /// Protections evaluated on the same faults (`mitigations:`).
    #[serde(default)]
    pub mitigations: MitigationsSpec,
}

fn one_u32() -> u32 {
    1
}

/// The model to inject faults into.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelSpec {
    /// The ONNX model (relative paths are relative to the working directory).
    pub path: PathBuf,
    /// The first input's shape, replacing the one the file declares (`~`
    /// for a free dimension): for exports that declare a shape they are
    /// not used at, such as CenterFace's `[10, 3, 32, 32]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_shape: Option<Vec<Option<i64>>>,
    /// Keep only these outputs and the nodes they need (drops a decoding
    /// tail the task decodes itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Vec<String>>,
    /// Reshape targets that fix the batch the file declares follow the
    /// batch instead (see `load::Edits`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub free_batch: bool,
}

impl ModelSpec {
    /// The edits the scenario asks of the model file.
    pub fn edits(&self) -> crate::load::Edits {
        crate::load::Edits {
            outputs: self.outputs.clone(),
            free_batch: self.free_batch,
        }
    }
}

/// Where faults strike.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetsSpec {
    /// Neurons (activations), weights, or both.
    #[serde(default)]
    pub target: TargetSel,
    /// Which layers (default: every layer with sites of the target).
    #[serde(default)]
    pub layers: LayerSelect,
    /// How a fault picks its layer among the selected ones.
    #[serde(default)]
    pub layer_choice: LayerChoice,
    /// Which element inside the layer's tensor.
    #[serde(default)]
    pub element: ElementSel,
    /// Whether weight faults may strike biases (input 2 of Conv and Gemm).
    #[serde(default)]
    pub bias: bool,
}

/// What a fault strikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetSel {
    /// An element of a node's output (an activation), per sample.
    #[default]
    Neuron,
    /// An element of a weight (initializer of Conv, Gemm or MatMul).
    Weight,
    /// Neurons and weights mixed; each fault says which.
    Both,
}

/// A set of layers: the union of the given criteria minus `exclude`; all
/// layers when no criterion is given.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerSelect {
    /// ONNX op types (`Conv`, `Gemm`, `Relu`...), case-insensitive.
    #[serde(default)]
    pub ops: Vec<String>,
    /// Node names (`op#index` for unnamed nodes).
    #[serde(default)]
    pub names: Vec<String>,
    /// Node indices in topological order.
    #[serde(default)]
    pub indices: Vec<usize>,
    /// Inclusive index ranges `[first, last]`.
    #[serde(default)]
    pub ranges: Vec<[usize; 2]>,
    /// Node names removed from the selection.
    #[serde(default)]
    pub exclude: Vec<String>,
}

impl LayerSelect {
    /// No criterion is given: every layer (less `exclude`).
    pub fn is_all(&self) -> bool {
        self.ops.is_empty()
            && self.names.is_empty()
            && self.indices.is_empty()
            && self.ranges.is_empty()
    }
}

impl fmt::Display for LayerSelect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![];
        if !self.ops.is_empty() {
            parts.push(format!("ops={}", self.ops.join("+")));
        }
        if !self.names.is_empty() {
            parts.push(format!("names={}", self.names.join("+")));
        }
        if !self.indices.is_empty() {
            let i: Vec<String> = self.indices.iter().map(usize::to_string).collect();
            parts.push(format!("indices={}", i.join("+")));
        }
        for [a, b] in &self.ranges {
            parts.push(format!("range={a}..={b}"));
        }
        if parts.is_empty() {
            parts.push("all".into());
        }
        if !self.exclude.is_empty() {
            parts.push(format!("exclude={}", self.exclude.join("+")));
        }
        f.write_str(&parts.join(","))
    }
}

/// Which element inside a layer's tensor.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ElementSel {
    /// Uniform over the whole tensor.
    #[default]
    Uniform,
    /// One given element (coordinate in the per-sample or weight tensor).
    Index(Vec<u64>),
    /// Uniform inside one channel (dimension 0 of the per-sample tensor;
    /// output channel of a weight).
    Channel(u64),
    /// Uniform inside a box, `start` inclusive, `end` exclusive.
    Region(RegionSpec),
}

/// A box of a layer's tensor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegionSpec {
    /// First coordinate (inclusive).
    pub start: Vec<u64>,
    /// Last coordinate (exclusive).
    pub end: Vec<u64>,
}

/// What a fault does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// The fault model.
    #[serde(default)]
    pub model: ModelName,
    /// The number format the value is held in.
    #[serde(default)]
    pub dtype: NumFormat,
    /// Bits a bit model may act on (default: all bits of the format).
    #[serde(default)]
    pub bits: BitsSpec,
    /// Distinct bits changed together in one value (multi-bit upset).
    #[serde(default = "one_u8")]
    pub simultaneous: u8,
    /// The simultaneous bits lie next to each other in the word (an
    /// adjacent multi-bit upset), not anywhere in it.
    #[serde(default)]
    pub adjacent: bool,
    /// The constant of `constant`.
    #[serde(default)]
    pub value: Option<f32>,
    /// `[min, max]` of `random_value`.
    #[serde(default)]
    pub range: Option<[f32; 2]>,
    /// Faults per inference.
    #[serde(default)]
    pub per_inference: PerInference,
    /// How long a fault stays.
    #[serde(default)]
    pub scope: ScopeSpec,
}

fn one_u8() -> u8 {
    1
}

impl Default for FaultSpec {
    fn default() -> Self {
        FaultSpec {
            model: ModelName::default(),
            dtype: NumFormat::default(),
            bits: BitsSpec::default(),
            simultaneous: 1,
            adjacent: false,
            value: None,
            range: None,
            per_inference: PerInference::default(),
            scope: ScopeSpec::default(),
        }
    }
}

/// A fault model by name, as written in scenarios and CSV.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelName {
    /// Invert the bits (`bit_flip`).
    #[default]
    BitFlip,
    /// Force the bits to 0 (`stuck_at_0`).
    #[serde(rename = "stuck_at_0")]
    StuckAt0,
    /// Force the bits to 1 (`stuck_at_1`).
    #[serde(rename = "stuck_at_1")]
    StuckAt1,
    /// A value drawn uniformly from `range` (`random_value`).
    RandomValue,
    /// Zero (`zero`).
    Zero,
    /// The constant `value` (`constant`).
    Constant,
    /// A model registered by a library user under this name.
    Custom(String),
}

impl fmt::Display for ModelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ModelName::BitFlip => "bit_flip",
            ModelName::StuckAt0 => "stuck_at_0",
            ModelName::StuckAt1 => "stuck_at_1",
            ModelName::RandomValue => "random_value",
            ModelName::Zero => "zero",
            ModelName::Constant => "constant",
            ModelName::Custom(n) => return write!(f, "custom:{n}"),
        };
        f.write_str(s)
    }
}

/// Bits: `all`, one bit `30`, `{range: [lo, hi]}` (inclusive) or
/// `{list: [31, 22]}`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum BitsSpec {
    /// Every bit of the format.
    #[default]
    All,
    /// One bit.
    One(u8),
    /// Bits `lo..=hi`.
    Range(u8, u8),
    /// These bits.
    List(Vec<u8>),
}

impl fmt::Display for BitsSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BitsSpec::All => f.write_str("all"),
            BitsSpec::One(b) => write!(f, "{b}"),
            BitsSpec::Range(a, b) => write!(f, "{a}..={b}"),
            BitsSpec::List(l) => f.write_str(&crate::faults::join(l)),
        }
    }
}

/// Faults per inference: a number, `{uniform: [lo, hi]}`, `{poisson:
/// mean}` (zero-truncated) or `{probability: p, layers: {NAME: p}, per:
/// element|inference}` (InjectTF2's probability: per element, each eligible
/// element of the chosen layer is faulty with probability p, at least one;
/// per inference, each targeted layer is faulted with probability p, in
/// one random element, and an inference no layer is hit in runs clean).
#[derive(Debug, Clone, PartialEq)]
pub enum PerInference {
    /// Exactly this many.
    Fixed(u32),
    /// Uniform in `lo..=hi`.
    Uniform(u32, u32),
    /// Poisson with this mean, at least one.
    Poisson(f64),
    /// InjectTF2's probability mode.
    Probability {
        /// Probability per element of a layer not in `layers`.
        p: f64,
        /// Probability per element, by layer name.
        layers: BTreeMap<String, f64>,
        /// What the probability applies to.
        per: ProbabilityPer,
    },
}

/// What InjectTF2's probability (`per_inference: {probability: p, per:
/// ..}`) is the chance of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbabilityPer {
    /// Each eligible element of the injection's one layer is faulty with
    /// probability p, conditioned on at least one (the default).
    #[default]
    Element,
    /// InjectTF2's own semantics: in each inference, each targeted layer is
    /// faulted with probability p (one uniformly random element); an
    /// inference where no layer is hit runs clean and is not in the list.
    Inference,
}

impl Default for PerInference {
    fn default() -> Self {
        PerInference::Fixed(1)
    }
}

impl fmt::Display for PerInference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PerInference::Fixed(k) => write!(f, "{k}"),
            PerInference::Uniform(a, b) => write!(f, "uniform {a}..={b}"),
            PerInference::Poisson(m) => write!(f, "poisson {m}"),
            PerInference::Probability {
                p,
                per: ProbabilityPer::Element,
                ..
            } => write!(f, "p={p}"),
            PerInference::Probability {
                p,
                per: ProbabilityPer::Inference,
                ..
            } => write!(f, "p={p} per inference"),
        }
    }
}

/// How long a fault stays: `transient`, `{batch: N}` (N consecutive
/// samples), `epoch`, `campaign`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScopeSpec {
    /// One inference.
    #[default]
    Transient,
    /// N consecutive samples.
    Batch(u64),
    /// One pass over the data set.
    Epoch,
    /// The whole campaign (a permanent weight fault).
    Campaign,
}

/// How many injections: exactly one of the two.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountsSpec {
    /// Injections (faulty inferences) per sweep point.
    #[serde(default)]
    pub injections: Option<u64>,
    /// Leveugle et al. sample size per stratum.
    #[serde(default)]
    pub stratified: Option<StratifiedSpec>,
}

/// Leveugle et al.'s statistical fault sampling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StratifiedSpec {
    /// What a stratum is.
    #[serde(default)]
    pub per: Strata,
    /// Error margin e (0.01 = 1%).
    #[serde(default = "default_margin")]
    pub margin: f64,
    /// Confidence level (0.95 gives t = 1.96).
    #[serde(default = "default_confidence")]
    pub confidence: f64,
    /// Estimated proportion of faults with the outcome (0.5 is the safe
    /// upper bound).
    #[serde(default = "default_p")]
    pub p: f64,
}

fn default_margin() -> f64 {
    0.01
}
fn default_confidence() -> f64 {
    0.95
}
fn default_p() -> f64 {
    0.5
}

/// What a stratum is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strata {
    /// One stratum per layer.
    #[default]
    Layer,
    /// One stratum per layer and bit.
    LayerBit,
}

/// Values to sweep; the campaign runs the Cartesian product of the keys
/// given, each a list of values for the key of the same name.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepSpec {
    /// Targets to sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Vec<TargetSel>>,
    /// Layer selections to sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub layers: Option<Vec<LayerSelect>>,
    /// Fault models to sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<Vec<ModelName>>,
    /// Number formats to sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtype: Option<Vec<NumFormat>>,
    /// Bit sets to sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<Vec<BitsSpec>>,
    /// Faults per inference to sweep.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_inference: Option<Vec<PerInference>>,
}

/// What the run writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputsSpec {
    /// Results folder (default `results/NAME`).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// One CSV row per injection.
    #[serde(default = "yes")]
    pub per_injection: bool,
    /// How those rows are stored: `injections.csv`, or Parquet parts in
    /// `injections/` for large campaigns.
    #[serde(default, skip_serializing_if = "RowsFormat::is_csv")]
    pub injections: RowsFormat,
    /// Summary tables with 95% confidence intervals.
    #[serde(default = "default_summaries")]
    pub summaries: Vec<SummaryKey>,
    /// heatmap.svg: the SDE and DUE rates by layer and bit, per number format.
    #[serde(default = "yes")]
    pub heatmap: bool,
    /// Top-k membership recorded per injection.
    #[serde(default = "default_top_k")]
    pub top_k: u32,
    /// Layers whose outputs are checked for NaN/Inf (a hit is recorded
    /// in the `detected` column and rate, beside the outcome).
    #[serde(default)]
    pub monitor: LayerSelect,
    /// The model output whose change tells `benign` from `sde` (default
    /// the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub judge: Option<String>,
    /// Also save the faulty outputs (logits) of every injection.
    #[serde(default)]
    pub save_outputs: bool,
    /// The confidence level of every interval and test.
    #[serde(
        default = "default_confidence",
        skip_serializing_if = "is_default_confidence"
    )]
    pub confidence: f64,
    /// Derate a raw fault rate per bit into FIT contributions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fit: Option<FitSpec>,
}

/// `outputs.fit`: the raw fault rate per bit and, optionally, the elements
/// each target holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FitSpec {
    /// Raw FIT (failures per 10^9 hours) per bit.
    pub raw_per_bit: f64,
    /// Elements held per target (default: the targeted layers' eligible
    /// elements).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub elements: BTreeMap<Target, u64>,
}

fn is_default_confidence(c: &f64) -> bool {
    *c == 0.95
}

fn yes() -> bool {
    true
}
fn default_top_k() -> u32 {
    5
}
fn default_summaries() -> Vec<SummaryKey> {
    vec![
        SummaryKey::Layer,
        SummaryKey::Bit,
        SummaryKey::Op,
        SummaryKey::Dtype,
    ]
}

impl Default for OutputsSpec {
    fn default() -> Self {
        OutputsSpec {
            dir: None,
            per_injection: true,
            injections: RowsFormat::Csv,
            summaries: default_summaries(),
            heatmap: true,
            top_k: default_top_k(),
            monitor: LayerSelect::default(),
            judge: None,
            save_outputs: false,
            confidence: default_confidence(),
            fit: None,
        }
    }
}

/// The form of the per-injection rows (`outputs.injections`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RowsFormat {
    /// `injections.csv`.
    #[default]
    Csv,
    /// `injections/part-N.parquet`, a part per window of runs.
    Parquet,
}

impl RowsFormat {
    fn is_csv(&self) -> bool {
        *self == RowsFormat::Csv
    }
}

/// A summary table of the outcome rates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SummaryKey {
    /// Per layer.
    Layer,
    /// Per bit (one table per number format).
    Bit,
    /// Per op type.
    Op,
    /// Per number format.
    Dtype,
    /// Per fault model.
    Model,
    /// Per target (neurons, weights).
    Target,
    /// Per sweep point.
    Sweep,
}

/// Protections to evaluate on the same fault list (scenarios/README.md).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MitigationsSpec {
    /// Ranger: clamp outputs of these layers to the golden range widened by
    /// `margin` x its width.
    #[serde(default)]
    pub ranger: Option<GuardSpec>,
    /// Clipper: set outputs outside the widened golden range to zero.
    #[serde(default)]
    pub clipper: Option<GuardSpec>,
    /// A hardened variant of the model, run on the same fault list.
    #[serde(default)]
    pub hardened_model: Option<PathBuf>,
}

/// A range-supervision mitigation as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuardSpec {
    /// The layers whose outputs are supervised.
    pub layers: LayerSelect,
    /// The golden range is widened by `margin` times its width.
    #[serde(default)]
    pub margin: f64,
}

/// What the model's outputs mean (`task:`); see scenarios/README.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    /// `[N, classes]` by top-1; other outputs element-wise.
    #[default]
    Classification,
    /// Boxes (`detection:` says how to read them).
    Detection,
    /// A class per pixel (`segmentation:`).
    Segmentation,
    /// `[N, positions, vocabulary]` logits: the top-1 token per position.
    Tokens,
    /// Any values, against a tolerance (`values:`).
    Values,
}

impl TaskKind {
    /// The task is the default, top-1 classification.
    pub fn is_classification(&self) -> bool {
        *self == TaskKind::Classification
    }

    /// The name as written.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::Classification => "classification",
            TaskKind::Detection => "detection",
            TaskKind::Segmentation => "segmentation",
            TaskKind::Tokens => "tokens",
            TaskKind::Values => "values",
        }
    }
}

/// `segmentation:` settings.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SegmentationSpec {
    /// `sde` when the fraction of pixels whose class changed exceeds this
    /// (default 0: any pixel).
    #[serde(default)]
    pub threshold: f64,
    /// The class axis of the output (default 1, `[N, C, H, W]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class_axis: Option<i64>,
}

/// `values:` settings: `sde` when `|faulty - golden| > abs + rel * |golden|`
/// for some element.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValuesSpec {
    /// Absolute tolerance (default 0).
    #[serde(default)]
    pub abs: f64,
    /// Relative tolerance (default 0).
    #[serde(default)]
    pub rel: f64,
}

/// How a detector's boxes are read (`detection.decoder`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderKind {
    /// The graph's own boxes, one row of `columns` per box.
    #[default]
    Decoded,
    /// CenterNet heads: `heatmap` and `wh`.
    Centernet,
    /// CenterFace heads: `heatmap`, `scale` and `offset`.
    Centerface,
}

/// `detection:` settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetectionSpec {
    /// How boxes are read (default `decoded`).
    #[serde(default)]
    pub decoder: DecoderKind,
    /// `decoded`: the output holding the boxes (default: `outputs.judge`,
    /// else the first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// `decoded`: the columns of a box, in order (default
    /// `[x1, y1, x2, y2, score, class]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
    /// `centernet`, `centerface`: the heatmap output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heatmap: Option<String>,
    /// `centernet`: the box size output (left, top, right, bottom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wh: Option<String>,
    /// `centerface`: the log size output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<String>,
    /// `centerface`: the centre offset output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<String>,
    /// `centernet`: the heads are channels last, `[N, H, W, C]` (default
    /// false).
    #[serde(default)]
    pub channels_last: bool,
    /// Input pixels per heatmap cell (default 4).
    #[serde(default = "default_stride")]
    pub stride: f32,
    /// `centernet`: peaks kept (default 100).
    #[serde(default = "default_top_k_boxes")]
    pub top_k: i64,
    /// Boxes with a score at or below this are dropped (default 0.5).
    #[serde(default = "default_score")]
    pub score: f32,
    /// Greedy NMS IoU per class (default: no NMS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nms: Option<f32>,
    /// NMS across classes: a box suppresses overlapping boxes of any class
    /// (default false: of its own class only).
    #[serde(default)]
    pub class_agnostic: bool,
    /// A faulty box matches a golden box of its class at this IoU or more
    /// (default 0.5).
    #[serde(default = "default_match_iou")]
    pub match_iou: f32,
    /// Pictures of the worst SDE runs drawn into `detections/` (default 5).
    #[serde(default = "default_pictures")]
    pub pictures: usize,
    /// Ground truth of an image folder: a COCO instances JSON file or a
    /// folder of YOLO text files; `detections/summary.json` then gives AP50
    /// against it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<PathBuf>,
}

fn default_pictures() -> usize {
    5
}

fn default_stride() -> f32 {
    4.0
}
fn default_top_k_boxes() -> i64 {
    100
}
fn default_score() -> f32 {
    0.5
}
fn default_match_iou() -> f32 {
    0.5
}
