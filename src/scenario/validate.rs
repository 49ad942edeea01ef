//! Resolving a scenario against its model (pipeline step 4, before
//! generation). In: a parsed [`Scenario`], the loaded [`Graph`] and the data
//! set's length when known. Out: a [`Campaign`]: the effective spec (seed,
//! name and results folder filled in), the model's fault sites, and one
//! [`Point`] per sweep combination with its candidate layers, fault model,
//! bits and injection budget. Every error names the scenario key.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use super::spec::*;
use super::Scenario;
use crate::classify::detect::{Decoder, Detector};
use crate::classify::Task;
use crate::data::Subset;
use crate::error::Result;
use crate::faults::{
    adjacent_starts, count, Budget, Candidate, FaultModel, Models, NumFormat, PerInjection, Point,
    Recipe, Region, Scope, Sites, Stratum, Target, TensorSite,
};
use crate::graph::Graph;

/// Most faults one list may hold (rows).
pub const MAX_FAULTS: u64 = 1 << 32;
/// Most faults one injection may hold.
pub const MAX_PER_INJECTION: u64 = 1 << 20;
/// Most sweep points.
const MAX_POINTS: usize = 100_000;

/// A validated campaign, ready for fault generation.
#[derive(Debug, Clone)]
pub struct Campaign {
    /// The effective scenario: replaying it gives the same campaign.
    pub spec: ScenarioSpec,
    /// The scenario file the campaign was read from.
    pub scenario: PathBuf,
    /// The seed of the fault list.
    pub seed: u64,
    /// Samples in the data subset; faults name positions `0..samples`.
    pub samples: u64,
    /// Every fault site of the model.
    pub sites: Sites,
    /// The sweep points, in order.
    pub points: Vec<Point>,
    /// Ranger (clamp to the golden range) on these nodes.
    pub ranger: Option<RangeGuard>,
    /// Clipper (zero outside the golden range) on these nodes.
    pub clipper: Option<RangeGuard>,
    /// Nodes whose outputs are checked for NaN/Inf.
    pub monitor: Vec<usize>,
    /// The output that tells `benign` from `sde` (index into the graph's;
    /// set by [`Scenario::validate`], which has the graph).
    pub judged: usize,
    /// What the outputs mean (the scenario's `task:`; set with `judged`).
    pub task: Task,
    /// The hardened model to run the same faults on.
    pub hardened_model: Option<PathBuf>,
}

impl<'a> From<&'a Campaign> for Recipe<'a> {
    /// What the campaign's fault list is drawn from.
    fn from(c: &'a Campaign) -> Recipe<'a> {
        Recipe {
            seed: c.seed,
            samples: c.samples,
            points: &c.points,
            scenario: &c.scenario,
            model: &c.spec.model.path,
        }
    }
}

/// The generator's count of faults per injection; the probabilities of
/// the InjectTF2 mode are resolved per candidate into the point.
fn per_injection(p: &PerInference) -> PerInjection {
    match p {
        PerInference::Fixed(k) => PerInjection::Fixed(*k),
        PerInference::Uniform(lo, hi) => PerInjection::Uniform(*lo, *hi),
        PerInference::Poisson(m) => PerInjection::Poisson(*m),
        PerInference::Probability {
            per: ProbabilityPer::Element,
            ..
        } => PerInjection::Probability,
        PerInference::Probability {
            per: ProbabilityPer::Inference,
            ..
        } => PerInjection::InferenceProbability,
    }
}

/// A range-supervision mitigation on resolved nodes.
#[derive(Debug, Clone, PartialEq)]
pub struct RangeGuard {
    /// Nodes whose outputs are supervised.
    pub nodes: Vec<usize>,
    /// The golden range is widened by `margin` times its width.
    pub margin: f64,
}

/// The values of one sweep combination.
#[derive(Clone)]
struct Combo {
    target: TargetSel,
    layers: (String, LayerSelect),
    /// The fault model and its key (`fault.model`, `sweep.model[i]`).
    model: (String, ModelName),
    dtype: NumFormat,
    bits: (String, BitsSpec),
    per_inference: (String, PerInference),
    label: Vec<String>,
}

impl Scenario {
    /// Resolves the scenario against `graph`. `data_len` is the number of
    /// samples in the data set when known (needed for `subset: all`);
    /// `models` holds the custom fault models a `custom` name may give.
    /// `data.correct_only` is not applied here (it needs the fault-free
    /// run): the campaign's samples are the whole subset's, where
    /// [`crate::campaign::plan`] keeps only the correctly classified ones.
    pub fn validate(
        &self,
        graph: &Graph,
        data_len: Option<u64>,
        models: &Models,
    ) -> Result<Campaign> {
        self.check_version()?;
        let mut campaign = self.validate_sites(Sites::from_graph(graph)?, data_len, models)?;
        campaign.judged = self.judged(graph)?;
        campaign.task = self.task(graph, campaign.judged)?;
        Ok(campaign)
    }

    /// As [`Scenario::validate`], with the model's fault sites already
    /// computed ([`Sites::from_graph`] runs the model once on zeros): for
    /// callers that validate many scenarios against one model.
    pub fn validate_sites(
        &self,
        sites: Sites,
        data_len: Option<u64>,
        models: &Models,
    ) -> Result<Campaign> {
        self.resolve(sites, data_len, None, Some(models))
    }

    /// As [`Scenario::validate`], for a campaign's plan: `kept` is the
    /// number of samples `data.correct_only` kept of the subset (the fault
    /// list then names positions `0..kept`), and `models: None` (a campaign
    /// that is only read, `faultsweep report`) accepts any custom name.
    pub(crate) fn validate_kept(
        &self,
        graph: &Graph,
        data_len: Option<u64>,
        kept: Option<u64>,
        models: Option<&Models>,
    ) -> Result<Campaign> {
        self.check_version()?;
        let mut campaign = self.resolve(Sites::from_graph(graph)?, data_len, kept, models)?;
        campaign.judged = self.judged(graph)?;
        campaign.task = self.task(graph, campaign.judged)?;
        Ok(campaign)
    }

    /// Validation; `models: None` accepts any custom name.
    fn resolve(
        &self,
        sites: Sites,
        data_len: Option<u64>,
        kept: Option<u64>,
        models: Option<&Models>,
    ) -> Result<Campaign> {
        let spec = &self.spec;
        self.check_version()?;
        self.check_name()?;
        let samples = self.samples(data_len)?;
        let samples = kept.unwrap_or(samples);
        let points = self
            .combos()?
            .into_iter()
            .enumerate()
            .map(|(id, c)| self.point(id as u32, c, &sites, samples, models))
            .collect::<Result<Vec<_>>>()?;
        self.check_total(&points)?;
        let guard = |g: &Option<GuardSpec>, key: &str| -> Result<Option<RangeGuard>> {
            g.as_ref().map(|g| self.guard(g, &sites, key)).transpose()
        };
        let ranger = guard(&spec.mitigations.ranger, "mitigations.ranger")?;
        let clipper = guard(&spec.mitigations.clipper, "mitigations.clipper")?;
        let monitor = match spec.outputs.monitor.is_all() {
            true => vec![],
            false => self.select(&spec.outputs.monitor, &sites, "outputs.monitor")?,
        };
        if spec.outputs.top_k == 0 {
            return Err(self.error("outputs.top_k", "must be at least 1"));
        }
        let c = spec.outputs.confidence;
        if !(c > 0.0 && c < 1.0) {
            return Err(self.error(
                "outputs.confidence",
                format!("{c} is outside (0, 1); e.g. 0.95 or 0.99"),
            ));
        }
        if let Some(fit) = &spec.outputs.fit {
            let raw = fit.raw_per_bit;
            if !(raw.is_finite() && raw > 0.0) {
                return Err(self.error(
                    "outputs.fit.raw_per_bit",
                    format!("{raw} is not a positive FIT per bit"),
                ));
            }
            if let Some((t, _)) = fit.elements.iter().find(|(_, n)| **n == 0) {
                return Err(self.error(
                    &format!("outputs.fit.elements.{}", t.name()),
                    "must be at least 1",
                ));
            }
        }
        if let Some(h) = &spec.mitigations.hardened_model {
            if !h.exists() {
                return Err(self.error(
                    "mitigations.hardened_model",
                    format!("{} does not exist", h.display()),
                ));
            }
        }
        let seed = spec.seed.unwrap_or_else(fresh_seed);
        Ok(Campaign {
            spec: self.effective(seed),
            scenario: self.path.clone(),
            seed,
            samples,
            sites,
            points,
            ranger,
            clipper,
            monitor,
            judged: 0,
            task: Task::Classification,
            hardened_model: spec.mitigations.hardened_model.clone(),
        })
    }

    /// The index among the model's outputs of `outputs.judge` (0 if unset).
    pub(crate) fn judged(&self, graph: &Graph) -> Result<usize> {
        let Some(name) = &self.spec.outputs.judge else {
            return Ok(0);
        };
        let names: Vec<&str> = graph
            .outputs
            .iter()
            .map(|&id| graph.values[id].name.as_str())
            .collect();
        names.iter().position(|n| n == name).ok_or_else(|| {
            let msg = format!(
                "'{name}' is not an output of the model ({})",
                names.join(", ")
            );
            self.error("outputs.judge", msg)
        })
    }

    /// The scenario's `task:` with its settings, outputs resolved by name.
    pub(crate) fn task(&self, graph: &Graph, judged: usize) -> Result<Task> {
        let spec = &self.spec;
        let kind = spec.task;
        for (key, given, wanted) in [
            (
                "segmentation",
                spec.segmentation.is_some(),
                TaskKind::Segmentation,
            ),
            ("values", spec.values.is_some(), TaskKind::Values),
            ("detection", spec.detection.is_some(), TaskKind::Detection),
        ] {
            if given && kind != wanted {
                return Err(self.error(
                    key,
                    format!(
                        "settings of task {key}, but the scenario's task is {} (set `task: {key}`)",
                        kind.name()
                    ),
                ));
            }
        }
        if kind != TaskKind::Classification && spec.data.correct_only {
            return Err(self.error(
                "data.correct_only",
                format!(
                    "needs task classification (it keeps the samples whose top-1 class is their label); the task is {}",
                    kind.name()
                ),
            ));
        }
        let finite = |key: &str, v: f64| -> Result<()> {
            match v.is_finite() && v >= 0.0 {
                true => Ok(()),
                false => Err(self.error(key, format!("{v} is not a number at least 0"))),
            }
        };
        Ok(match kind {
            TaskKind::Classification => Task::Classification,
            TaskKind::Tokens => Task::Tokens { output: judged },
            TaskKind::Segmentation => {
                let s = spec.segmentation.clone().unwrap_or_default();
                finite("segmentation.threshold", s.threshold)?;
                if s.threshold >= 1.0 {
                    return Err(self.error(
                        "segmentation.threshold",
                        format!(
                            "{} is a fraction of the pixels below 1 (0: any pixel)",
                            s.threshold
                        ),
                    ));
                }
                let axis = s.class_axis.unwrap_or(1);
                if axis < 1 {
                    return Err(self.error(
                        "segmentation.class_axis",
                        format!("{axis}: the class axis is an axis after the batch axis 0"),
                    ));
                }
                Task::Segmentation {
                    output: judged,
                    axis: axis - 1,
                    threshold: s.threshold,
                }
            }
            TaskKind::Values => {
                let v = spec.values.clone().unwrap_or_default();
                finite("values.abs", v.abs)?;
                finite("values.rel", v.rel)?;
                Task::Values {
                    abs: v.abs,
                    rel: v.rel,
                }
            }
            TaskKind::Detection => {
                let Some(d) = &spec.detection else {
                    return Err(self.error(
                        "task",
                        "task detection needs a `detection:` block saying how boxes are read (see scenarios/README.md)",
                    ));
                };
                Task::Detection(self.detector(graph, d, judged)?)
            }
        })
    }

    fn detector(&self, graph: &Graph, d: &DetectionSpec, judged: usize) -> Result<Detector> {
        let output = |key: &str, name: &Option<String>| -> Result<usize> {
            let key = format!("detection.{key}");
            let Some(name) = name else {
                return Err(self.error(
                    &key,
                    format!(
                        "decoder {} needs `{key}`, an output's name",
                        decoder_name(d.decoder)
                    ),
                ));
            };
            output_index(graph, name).ok_or_else(|| {
                self.error(
                    &key,
                    format!(
                        "'{name}' is not an output of the model ({})",
                        output_names(graph)
                    ),
                )
            })
        };
        let unused = |key: &str, given: bool| -> Result<()> {
            match given {
                true => Err(self.error(
                    &format!("detection.{key}"),
                    format!("not read by decoder {}", decoder_name(d.decoder)),
                )),
                false => Ok(()),
            }
        };
        let decoder = match d.decoder {
            DecoderKind::Decoded => {
                unused("heatmap", d.heatmap.is_some())?;
                unused("wh", d.wh.is_some())?;
                unused("scale", d.scale.is_some())?;
                unused("offset", d.offset.is_some())?;
                let output = match &d.output {
                    Some(_) => output("output", &d.output)?,
                    None => judged,
                };
                Decoder::Decoded {
                    output,
                    columns: self.columns(d.columns.as_deref())?,
                }
            }
            DecoderKind::Centernet => {
                unused("output", d.output.is_some())?;
                unused("columns", d.columns.is_some())?;
                unused("scale", d.scale.is_some())?;
                unused("offset", d.offset.is_some())?;
                if d.top_k < 1 {
                    return Err(self.error("detection.top_k", "must be at least 1"));
                }
                Decoder::CenterNet {
                    heatmap: output("heatmap", &d.heatmap)?,
                    wh: output("wh", &d.wh)?,
                    channels_last: d.channels_last,
                    stride: d.stride,
                    top_k: d.top_k,
                }
            }
            DecoderKind::Centerface => {
                unused("output", d.output.is_some())?;
                unused("columns", d.columns.is_some())?;
                unused("wh", d.wh.is_some())?;
                unused("channels_last", d.channels_last)?;
                Decoder::CenterFace {
                    heatmap: output("heatmap", &d.heatmap)?,
                    scale: output("scale", &d.scale)?,
                    offset: output("offset", &d.offset)?,
                    stride: d.stride,
                }
            }
        };
        if !(d.stride.is_finite() && d.stride > 0.0) {
            return Err(self.error(
                "detection.stride",
                format!("{} is not a positive number", d.stride),
            ));
        }
        for (key, v) in [
            ("score", Some(d.score)),
            ("nms", d.nms),
            ("match_iou", Some(d.match_iou)),
        ] {
            if let Some(v) = v.filter(|v| !(v.is_finite() && (0.0..=1.0).contains(v))) {
                return Err(self.error(
                    &format!("detection.{key}"),
                    format!("{v} is outside [0, 1]"),
                ));
            }
        }
        if d.match_iou == 0.0 {
            return Err(self.error("detection.match_iou", "must be above 0 (0.5 is IVMOD's)"));
        }
        Ok(Detector {
            decoder,
            score: d.score,
            nms: d.nms,
            class_agnostic: d.class_agnostic,
            match_iou: d.match_iou,
        })
    }

    /// The positions of x1, y1, x2, y2, score and class among `columns`.
    fn columns(&self, columns: Option<&[String]>) -> Result<[usize; 6]> {
        const NAMES: [&str; 6] = ["x1", "y1", "x2", "y2", "score", "class"];
        let Some(columns) = columns else {
            return Ok([0, 1, 2, 3, 4, 5]);
        };
        if let Some((i, c)) = columns
            .iter()
            .enumerate()
            .find(|(_, c)| !NAMES.contains(&c.as_str()) && c.as_str() != "_")
        {
            return Err(self.error(
                &format!("detection.columns[{i}]"),
                format!(
                    "'{c}' is not one of x1, y1, x2, y2, score, class (or _ for a column not read)"
                ),
            ));
        }
        let mut at = [0; 6];
        for (k, name) in NAMES.iter().enumerate() {
            let found: Vec<usize> = (columns.iter().enumerate())
                .filter(|(_, c)| c == name)
                .map(|(i, _)| i)
                .collect();
            match found[..] {
                [i] => at[k] = i,
                [] => {
                    return Err(self.error("detection.columns", format!("names no column {name}")))
                }
                _ => {
                    return Err(
                        self.error("detection.columns", format!("names column {name} twice"))
                    )
                }
            }
        }
        Ok(at)
    }

    fn check_version(&self) -> Result<()> {
        match self.spec.version {
            1 => Ok(()),
            v => Err(self.error("version", format!("version {v} is not supported (1)"))),
        }
    }

    /// `name` becomes the folder `results/NAME`, so it must be one plain
    /// path component: nothing written outside `results/`, nothing hidden.
    fn check_name(&self) -> Result<()> {
        let Some(name) = &self.spec.name else {
            return Ok(());
        };
        let why = if name.is_empty() {
            "is empty"
        } else if name.contains(['/', '\\']) {
            "holds a path separator"
        } else if name.starts_with('.') {
            "starts with '.' (a hidden folder, or one outside results/)"
        } else if name.chars().any(char::is_control) {
            "holds a control character"
        } else {
            return Ok(());
        };
        let msg = format!(
            "{name:?} {why}; the name is the folder results/NAME: give one plain folder name"
        );
        Err(self.error("name", msg))
    }

    /// The spec with seed, name and results folder filled in.
    fn effective(&self, seed: u64) -> ScenarioSpec {
        let mut spec = self.spec.clone();
        spec.seed = Some(seed);
        let name = spec.name.clone().unwrap_or_else(|| {
            self.path
                .file_stem()
                .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
        });
        spec.outputs
            .dir
            .get_or_insert_with(|| PathBuf::from("results").join(&name));
        spec.name = Some(name);
        spec
    }

    /// Samples in the data subset.
    fn samples(&self, data_len: Option<u64>) -> Result<u64> {
        let key = "data.subset";
        let (n, end) = match self.spec.data.subset {
            Subset::All => {
                let n = data_len.ok_or_else(|| {
                    self.error(key, "`all` needs the data set's size, which could not be read; give `{first: N}`")
                })?;
                (n, n)
            }
            Subset::First(n) => (n as u64, n as u64),
            Subset::Range { start, end } if start < end => ((end - start) as u64, end as u64),
            Subset::Range { start, end } => {
                return Err(self.error(key, format!("range {start}..{end} is empty")))
            }
            Subset::Random { count, .. } => (count as u64, count as u64),
        };
        if let Some(len) = data_len {
            if end > len {
                return Err(self.error(
                    key,
                    format!("asks for {end} samples but the data set has {len}"),
                ));
            }
        }
        Ok(n)
    }

    /// The Cartesian product of the sweep keys (one combo when none).
    fn combos(&self) -> Result<Vec<Combo>> {
        let s = &self.spec;
        let w = &s.sweep;
        let base = Combo {
            target: s.targets.target,
            layers: ("targets.layers".into(), s.targets.layers.clone()),
            model: ("fault.model".into(), s.fault.model.clone()),
            dtype: s.fault.dtype,
            bits: ("fault.bits".into(), s.fault.bits.clone()),
            per_inference: ("fault.per_inference".into(), s.fault.per_inference.clone()),
            label: vec![],
        };
        let mut combos = vec![base];
        macro_rules! expand {
            ($field:ident, $key:literal, |$c:ident, $i:ident, $v:ident| $set:expr) => {
                if let Some(values) = &w.$field {
                    if values.is_empty() {
                        return Err(self.error(
                            concat!("sweep.", $key),
                            "empty list (leave the key out to not sweep it)",
                        ));
                    }
                    let mut next = Vec::new();
                    for c in &combos {
                        for ($i, $v) in values.iter().enumerate() {
                            let mut $c = c.clone();
                            $set;
                            next.push($c);
                        }
                    }
                    if next.len() > MAX_POINTS {
                        return Err(
                            self.error("sweep", format!("more than {MAX_POINTS} sweep points"))
                        );
                    }
                    combos = next;
                }
            };
        }
        expand!(target, "target", |c, _i, v| {
            c.target = *v;
            c.label.push(format!("target={}", target_name(*v)));
        });
        expand!(layers, "layers", |c, i, v| {
            c.layers = (format!("sweep.layers[{i}]"), v.clone());
            c.label.push(format!("layers={v}"));
        });
        expand!(model, "model", |c, i, v| {
            c.model = (format!("sweep.model[{i}]"), v.clone());
            c.label.push(format!("model={v}"));
        });
        expand!(dtype, "dtype", |c, _i, v| {
            c.dtype = *v;
            c.label.push(format!("dtype={v}"));
        });
        expand!(bits, "bits", |c, i, v| {
            c.bits = (format!("sweep.bits[{i}]"), v.clone());
            c.label.push(format!("bits={v}"));
        });
        expand!(per_inference, "per_inference", |c, i, v| {
            c.per_inference = (format!("sweep.per_inference[{i}]"), v.clone());
            c.label.push(format!("per_inference={v}"));
        });
        Ok(combos)
    }

    fn point(
        &self,
        id: u32,
        c: Combo,
        sites: &Sites,
        samples: u64,
        models: Option<&Models>,
    ) -> Result<Point> {
        let s = &self.spec;
        let candidates = self.candidates(&c, sites)?;
        let c = Combo {
            dtype: self.native_format(c.dtype, &candidates, sites)?,
            ..c
        };
        let model = self.fault_model(&c.model.0, &c.model.1, models)?;
        let bits = match model.uses_bits() {
            true => self.bits(&c.bits.0, &c.bits.1, c.dtype)?,
            false => vec![],
        };
        let simultaneous = s.fault.simultaneous;
        let adjacent = s.fault.adjacent;
        if model.uses_bits() && adjacent && adjacent_starts(&bits, simultaneous).is_empty() {
            return Err(self.error(
                "fault.adjacent",
                format!("no {simultaneous} adjacent bits among {bits:?}"),
            ));
        }
        if model.uses_bits() && (simultaneous == 0 || usize::from(simultaneous) > bits.len()) {
            return Err(self.error(
                "fault.simultaneous",
                format!(
                    "{simultaneous} bits at once, but {} bits to choose from",
                    bits.len()
                ),
            ));
        }
        let probabilities =
            self.per_inference(&c.per_inference.0, &c.per_inference.1, &candidates)?;
        let (scope, scope_batch) = self.scope(samples)?;
        let mut point = Point {
            id,
            label: if c.label.is_empty() {
                "all".into()
            } else {
                c.label.join(" ")
            },
            candidates,
            layer_choice: s.targets.layer_choice,
            model,
            dtype: c.dtype,
            bits,
            simultaneous,
            adjacent,
            per_injection: per_injection(&c.per_inference.1),
            probabilities,
            scope,
            scope_batch,
            budget: Budget::Injections(0),
        };
        point.budget = self.budget(&point, samples)?;
        Ok(point)
    }

    /// `dtype`, or for `native` the one native format of every candidate
    /// tensor (a campaign strikes words of one type).
    fn native_format(
        &self,
        dtype: NumFormat,
        cands: &[Candidate],
        sites: &Sites,
    ) -> Result<NumFormat> {
        if dtype != NumFormat::Native {
            return Ok(dtype);
        }
        let mut found: BTreeMap<NumFormat, String> = BTreeMap::new();
        for c in cands {
            let layer = &sites.layers[c.node];
            for r in &c.regions {
                let word = layer.tensor(c.target, &r.tensor).map(|t| t.word);
                let format = word.and_then(NumFormat::of_kind).ok_or_else(|| {
                    self.error(
                        "fault.dtype",
                        format!(
                            "tensor '{}' of layer '{}' has no native format",
                            r.tensor, c.layer
                        ),
                    )
                })?;
                found
                    .entry(format)
                    .or_insert_with(|| format!("'{}' {format}", c.layer));
            }
        }
        match found.len() {
            0 | 1 => Ok(found.into_keys().next().unwrap_or(NumFormat::Fp32)),
            _ => Err(self.error(
                "fault.dtype",
                format!(
                    "native formats differ among the selected tensors ({}): select layers of one type (targets.layers.ops) or sweep them",
                    found.into_values().collect::<Vec<_>>().join(", ")
                ),
            )),
        }
    }

    /// The fault model `name` (given at `key`); a custom one must be among
    /// `models` when they are known.
    fn fault_model(
        &self,
        key: &str,
        name: &ModelName,
        models: Option<&Models>,
    ) -> Result<FaultModel> {
        let f = &self.spec.fault;
        let model = match name {
            ModelName::BitFlip => FaultModel::BitFlip,
            ModelName::StuckAt0 => FaultModel::StuckAt0,
            ModelName::StuckAt1 => FaultModel::StuckAt1,
            ModelName::Zero => FaultModel::Zero,
            ModelName::Custom(n) if n.is_empty() => {
                return Err(self.error(key, "a custom model needs a name"))
            }
            ModelName::Custom(n) if models.is_some_and(|m| !m.has(n)) => {
                return Err(self.error(
                    key,
                    format!("custom fault model '{n}' is not registered: the command line has none; a campaign with a Python fault model runs and resumes from Python (faultsweep.resume(DIR, fault_models={{...}})), a library user registers it in faults::Models (campaign::run_with_models)"),
                ))
            }
            ModelName::Custom(n) => FaultModel::Custom(n.clone()),
            ModelName::Constant => FaultModel::Constant(
                f.value
                    .ok_or_else(|| self.error("fault.value", "`constant` needs `value`"))?,
            ),
            ModelName::RandomValue => {
                let [min, max] = f.range.ok_or_else(|| {
                    self.error("fault.range", "`random_value` needs `range: [min, max]`")
                })?;
                if !(min.is_finite() && max.is_finite() && min <= max) {
                    return Err(self.error(
                        "fault.range",
                        format!("[{min}, {max}] is not a finite range with min <= max"),
                    ));
                }
                FaultModel::RandomValue { min, max }
            }
        };
        let sweeps_model = self.spec.sweep.model.is_some();
        if f.value.is_some() && !matches!(model, FaultModel::Constant(_)) && !sweeps_model {
            return Err(self.error(
                "fault.value",
                format!("`value` is only used by `constant`, not `{name}`"),
            ));
        }
        if f.range.is_some() && !matches!(model, FaultModel::RandomValue { .. }) && !sweeps_model {
            return Err(self.error(
                "fault.range",
                format!("`range` is only used by `random_value`, not `{name}`"),
            ));
        }
        Ok(model)
    }

    /// The bit set of `spec` in `dtype`, ascending.
    fn bits(&self, key: &str, spec: &BitsSpec, dtype: NumFormat) -> Result<Vec<u8>> {
        let w = dtype.width();
        let bad = |b: u8| {
            self.error(
                key,
                format!("bit {b} does not exist in {dtype} (bits 0..={})", w - 1),
            )
        };
        let bits: Vec<u8> = match spec {
            BitsSpec::All => (0..w).collect(),
            BitsSpec::One(b) => vec![*b],
            BitsSpec::Range(lo, hi) if lo > hi => {
                return Err(self.error(key, format!("range [{lo}, {hi}] is empty (lo > hi)")))
            }
            BitsSpec::Range(lo, hi) => (*lo..=*hi).collect(),
            BitsSpec::List(l) if l.is_empty() => return Err(self.error(key, "empty bit list")),
            BitsSpec::List(l) => l.clone(),
        };
        if let Some(&b) = bits.iter().find(|&&b| b >= w) {
            return Err(bad(b));
        }
        let set: BTreeSet<u8> = bits.iter().copied().collect();
        if set.len() != bits.len() {
            return Err(self.error(key, "a bit is listed twice"));
        }
        Ok(set.into_iter().collect())
    }

    /// Faults-per-inference limits; per-candidate probabilities in
    /// probability mode.
    fn per_inference(&self, key: &str, p: &PerInference, cands: &[Candidate]) -> Result<Vec<f64>> {
        let max = MAX_PER_INJECTION;
        match p {
            PerInference::Fixed(k) if *k == 0 || u64::from(*k) > max => {
                Err(self.error(key, format!("{k} faults per inference (1..={max})")))
            }
            PerInference::Uniform(lo, hi) if *lo == 0 || lo > hi || u64::from(*hi) > max => {
                Err(self.error(
                    key,
                    format!("uniform [{lo}, {hi}] is not a range within 1..={max}"),
                ))
            }
            PerInference::Poisson(m) if !(*m > 0.0 && *m <= 100.0) => {
                Err(self.error(key, format!("poisson mean {m} is outside (0, 100]")))
            }
            PerInference::Probability { p, layers, per } => {
                for (name, q) in layers {
                    if !cands.iter().any(|c| &c.layer == name) {
                        return Err(self.error(
                            &format!("{key}.layers.{name}"),
                            format!("'{name}' is not a selected layer"),
                        ));
                    }
                    self.probability(&format!("{key}.layers.{name}"), *q)?;
                }
                self.probability(key, *p)?;
                let per_inference = *per == ProbabilityPer::Inference;
                if per_inference && cands.len() as u64 > max {
                    return Err(self.error(
                        &format!("{key}.per"),
                        format!(
                            "{} targeted layers, up to one fault each, is more than {max} faults per inference",
                            cands.len()
                        ),
                    ));
                }
                if per_inference && self.spec.counts.stratified.is_some() {
                    return Err(self.error(
                        "counts.stratified",
                        format!("`{key}` with `per: inference` draws which layers each inference hits, so it has no strata: give `counts.injections` (the inferences per sweep point)"),
                    ));
                }
                cands
                    .iter()
                    .map(|c| {
                        let q = layers.get(&c.layer).copied().unwrap_or(*p);
                        if !per_inference && q * c.elements() as f64 > max as f64 {
                            return Err(self.error(key, format!(
                                "p = {q} on layer '{}' ({} elements) expects more than {max} faults per inference",
                                c.layer, c.elements()
                            )));
                        }
                        Ok(q)
                    })
                    .collect()
            }
            _ => Ok(vec![]),
        }
    }

    fn probability(&self, key: &str, p: f64) -> Result<()> {
        if p > 0.0 && p <= 1.0 {
            Ok(())
        } else {
            Err(self.error(key, format!("probability {p} is outside (0, 1]")))
        }
    }

    fn scope(&self, samples: u64) -> Result<(Scope, u64)> {
        let key = "fault.scope";
        let (scope, batch) = match self.spec.fault.scope {
            ScopeSpec::Transient => (Scope::Transient, 1),
            ScopeSpec::Batch(0) => return Err(self.error(key, "a batch of 0 samples")),
            ScopeSpec::Batch(n) => (Scope::Batch, n),
            ScopeSpec::Epoch => (Scope::Epoch, 1),
            ScopeSpec::Campaign => (Scope::Campaign, 1),
        };
        if samples == 0 && matches!(scope, Scope::Transient | Scope::Batch) {
            return Err(self.error("data.subset", "the data subset holds no sample"));
        }
        Ok((scope, batch))
    }

    /// Candidate (layer, target) pairs of a combo, with their element boxes.
    fn candidates(&self, c: &Combo, sites: &Sites) -> Result<Vec<Candidate>> {
        let (key, sel) = &c.layers;
        let nodes = self.select(sel, sites, key)?;
        let targets: &[Target] = match c.target {
            TargetSel::Neuron => &[Target::Neuron],
            TargetSel::Weight => &[Target::Weight],
            TargetSel::Both => &[Target::Neuron, Target::Weight],
        };
        let bias = self.spec.targets.bias;
        let explicit: BTreeSet<usize> = sel
            .indices
            .iter()
            .copied()
            .chain(
                sel.names
                    .iter()
                    .filter_map(|n| sites.find(n).map(|l| l.node)),
            )
            .collect();
        let mut out = Vec::new();
        for &n in &nodes {
            let layer = &sites.layers[n];
            let mut any = false;
            for &t in targets {
                // An emulated format strikes float tensors only.
                let fits = |s: &&TensorSite| {
                    c.dtype == NumFormat::Native || crate::faults::check_format(c.dtype, s).is_ok()
                };
                let tensors: Vec<&TensorSite> =
                    layer.tensors(t, bias).into_iter().filter(fits).collect();
                if tensors.is_empty() {
                    continue;
                }
                any = true;
                let regions = self.regions(&layer.name, &tensors)?;
                out.push(Candidate::new(layer, t, regions));
            }
            if !any && explicit.contains(&n) {
                return Err(self.error(
                    key,
                    format!(
                        "layer '{}' ({}) has no {} sites in {}",
                        layer.name,
                        layer.op,
                        target_name(c.target),
                        c.dtype
                    ),
                ));
            }
        }
        if out.is_empty() {
            return Err(self.error(
                key,
                format!(
                    "selects no layer with {} sites in {}",
                    target_name(c.target),
                    c.dtype
                ),
            ));
        }
        Ok(out)
    }

    /// The eligible box of `targets.element` in each tensor; an element that
    /// fits none of a layer's tensors is an error.
    fn regions(&self, layer: &str, tensors: &[&TensorSite]) -> Result<Vec<Region>> {
        let el = &self.spec.targets.element;
        let regions: Vec<Region> = tensors
            .iter()
            .filter_map(|t| element_region(el, t))
            .filter(|r| r.elements() > 0)
            .collect();
        if regions.is_empty() {
            let shapes: Vec<String> = tensors
                .iter()
                .map(|t| format!("{} [{}]", t.name, crate::faults::join(&t.shape)))
                .collect();
            return Err(self.error(
                "targets.element",
                format!(
                    "{} is outside every tensor of layer '{layer}': {}",
                    describe_element(el),
                    shapes.join(", ")
                ),
            ));
        }
        Ok(regions)
    }

    /// Node indices selected by `sel` (all nodes when it names none).
    fn select(&self, sel: &LayerSelect, sites: &Sites, key: &str) -> Result<Vec<usize>> {
        let n = sites.layers.len();
        let mut set = BTreeSet::new();
        if sel.is_all() {
            set.extend(0..n);
        }
        for (i, op) in sel.ops.iter().enumerate() {
            let hits: Vec<usize> = sites
                .layers
                .iter()
                .filter(|l| l.op.eq_ignore_ascii_case(op))
                .map(|l| l.node)
                .collect();
            if hits.is_empty() {
                let ops: BTreeSet<&str> = sites.layers.iter().map(|l| l.op.as_str()).collect();
                let ops: Vec<&str> = ops.into_iter().collect();
                return Err(self.error(
                    &format!("{key}.ops[{i}]"),
                    format!(
                        "no node has op '{op}' (ops in the model: {})",
                        ops.join(", ")
                    ),
                ));
            }
            set.extend(hits);
        }
        for (i, name) in sel.names.iter().enumerate() {
            set.insert(self.node_named(sites, name, &format!("{key}.names[{i}]"))?);
        }
        for (i, &ix) in sel.indices.iter().enumerate() {
            if ix >= n {
                return Err(self.error(
                    &format!("{key}.indices[{i}]"),
                    format!(
                        "node {ix} does not exist (nodes 0..={})",
                        n.saturating_sub(1)
                    ),
                ));
            }
            set.insert(ix);
        }
        for (i, &[a, b]) in sel.ranges.iter().enumerate() {
            if a > b || b >= n {
                return Err(self.error(
                    &format!("{key}.ranges[{i}]"),
                    format!(
                        "[{a}, {b}] is not a range within nodes 0..={}",
                        n.saturating_sub(1)
                    ),
                ));
            }
            set.extend(a..=b);
        }
        for (i, name) in sel.exclude.iter().enumerate() {
            set.remove(&self.node_named(sites, name, &format!("{key}.exclude[{i}]"))?);
        }
        Ok(set.into_iter().collect())
    }

    fn node_named(&self, sites: &Sites, name: &str, key: &str) -> Result<usize> {
        sites.find(name).map(|l| l.node).ok_or_else(|| {
            let names: Vec<&str> = sites
                .layers
                .iter()
                .take(12)
                .map(|l| l.name.as_str())
                .collect();
            let more = if sites.layers.len() > 12 { ", ..." } else { "" };
            self.error(
                key,
                format!(
                    "no node is named '{name}' (nodes: {}{more}; see `faultsweep inspect`)",
                    names.join(", ")
                ),
            )
        })
    }

    fn guard(&self, g: &GuardSpec, sites: &Sites, key: &str) -> Result<RangeGuard> {
        if !(g.margin >= 0.0 && g.margin.is_finite()) {
            return Err(self.error(
                &format!("{key}.margin"),
                format!("{} is not a finite margin >= 0", g.margin),
            ));
        }
        Ok(RangeGuard {
            nodes: self.select(&g.layers, sites, &format!("{key}.layers"))?,
            margin: g.margin,
        })
    }

    /// Injections per point: explicit, or Leveugle per stratum.
    fn budget(&self, p: &Point, samples: u64) -> Result<Budget> {
        let c = &self.spec.counts;
        match (&c.injections, &c.stratified) {
            (Some(0), None) => Err(self.error("counts.injections", "0 injections")),
            (Some(n), None) => Ok(Budget::Injections(*n)),
            (None, Some(st)) => self.strata(p, st, samples).map(Budget::Strata),
            _ => Err(self.error("counts", "give exactly one of `injections` or `stratified`")),
        }
    }

    fn strata(&self, p: &Point, st: &StratifiedSpec, samples: u64) -> Result<Vec<Stratum>> {
        let key = "counts.stratified";
        for (k, v) in [
            ("margin", st.margin),
            ("confidence", st.confidence),
            ("p", st.p),
        ] {
            if !(v > 0.0 && v < 1.0) {
                return Err(self.error(&format!("{key}.{k}"), format!("{v} is outside (0, 1)")));
            }
        }
        let per_bit = st.per == Strata::LayerBit;
        if per_bit && (!p.model.uses_bits() || p.simultaneous != 1) {
            return Err(self.error(
                &format!("{key}.per"),
                "`layer_bit` needs a bit model with `simultaneous: 1`",
            ));
        }
        let time = match p.scope {
            Scope::Transient => samples,
            Scope::Batch => samples.div_ceil(p.scope_batch),
            Scope::Epoch | Scope::Campaign => 1,
        };
        let bit_sets = match (p.model.uses_bits(), p.adjacent) {
            (true, true) => adjacent_starts(&p.bits, p.simultaneous).len() as u128,
            (true, false) => binomial(p.bits.len() as u64, u64::from(p.simultaneous)),
            (false, _) => 1,
        };
        let overflow = || self.error(key, "the fault population overflows");
        let mut out = Vec::new();
        for (i, c) in p.candidates.iter().enumerate() {
            let base = u128::from(c.elements())
                .checked_mul(u128::from(time))
                .ok_or_else(overflow)?;
            let strata: Vec<(Option<u8>, u128)> = match per_bit {
                true => p.bits.iter().map(|&b| (Some(b), base)).collect(),
                false => vec![(None, base.checked_mul(bit_sets).ok_or_else(overflow)?)],
            };
            for (bit, population) in strata {
                let size = count::leveugle(population, st.margin, st.confidence, st.p);
                out.push(Stratum {
                    candidate: i,
                    bit,
                    size,
                });
            }
        }
        Ok(out)
    }

    /// The whole list must stay below [`MAX_FAULTS`] rows.
    fn check_total(&self, points: &[Point]) -> Result<()> {
        let key = if self.spec.counts.injections.is_some() {
            "counts.injections"
        } else {
            "counts.stratified"
        };
        let mut total: u64 = 0;
        for p in points {
            let per = match p.per_injection {
                PerInjection::Fixed(k) => u64::from(k),
                PerInjection::Uniform(_, hi) => u64::from(hi),
                PerInjection::Poisson(m) => m.ceil() as u64,
                PerInjection::Probability => {
                    let most = p
                        .candidates
                        .iter()
                        .zip(&p.probabilities)
                        .map(|(c, q)| q * c.elements() as f64);
                    most.fold(1.0, f64::max).ceil() as u64
                }
                PerInjection::InferenceProbability => p.candidates.len() as u64,
            };
            total = p
                .budget
                .injections()
                .checked_mul(per)
                .and_then(|n| total.checked_add(n))
                .filter(|&n| n <= MAX_FAULTS)
                .ok_or_else(|| self.error(key, format!(
                    "the fault list would exceed {MAX_FAULTS} faults ({} sweep points); lower the counts or narrow the sweep",
                    points.len()
                )))?;
        }
        Ok(())
    }
}

/// The box of element selection `el` in tensor `t`, if it fits.
fn element_region(el: &ElementSel, t: &TensorSite) -> Option<Region> {
    let whole = Region::whole(t);
    let (start, end) = match el {
        ElementSel::Uniform => return Some(whole),
        // A coordinate at u64::MAX has no end inside any tensor.
        ElementSel::Index(ix) => (
            ix.clone(),
            ix.iter().map(|i| i.checked_add(1)).collect::<Option<_>>()?,
        ),
        ElementSel::Channel(c) => {
            let mut start = whole.start.clone();
            let mut end = whole.end.clone();
            *start.first_mut()? = *c;
            *end.first_mut()? = c.checked_add(1)?;
            (start, end)
        }
        ElementSel::Region(r) => (r.start.clone(), r.end.clone()),
    };
    let fits = start.len() == t.shape.len()
        && start
            .iter()
            .zip(&end)
            .zip(&t.shape)
            .all(|((s, e), d)| s < e && e <= d);
    fits.then_some(Region {
        start,
        end,
        ..whole
    })
}

fn describe_element(el: &ElementSel) -> String {
    match el {
        ElementSel::Uniform => "uniform".into(),
        ElementSel::Index(ix) => format!("element [{}]", crate::faults::join(ix)),
        ElementSel::Channel(c) => format!("channel {c}"),
        ElementSel::Region(r) => format!(
            "region [{}]..[{}]",
            crate::faults::join(&r.start),
            crate::faults::join(&r.end)
        ),
    }
}

fn target_name(t: TargetSel) -> &'static str {
    match t {
        TargetSel::Neuron => "neuron",
        TargetSel::Weight => "weight",
        TargetSel::Both => "neuron or weight",
    }
}

/// n choose k, saturating.
fn binomial(n: u64, k: u64) -> u128 {
    (0..k.min(n)).fold(1u128, |acc, i| {
        acc.saturating_mul(u128::from(n - i)) / u128::from(i + 1)
    })
}

/// A seed for a scenario that gives none (written to the effective scenario).
fn fresh_seed() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ u64::from(std::process::id()).rotate_left(32);
    crate::faults::rng::splitmix64(&mut state)
}

fn decoder_name(d: DecoderKind) -> &'static str {
    match d {
        DecoderKind::Decoded => "decoded",
        DecoderKind::Centernet => "centernet",
        DecoderKind::Centerface => "centerface",
    }
}

fn output_index(graph: &Graph, name: &str) -> Option<usize> {
    (graph.outputs.iter()).position(|&id| graph.values[id].name == name)
}

fn output_names(graph: &Graph) -> String {
    let names: Vec<&str> = (graph.outputs.iter())
        .map(|&id| graph.values[id].name.as_str())
        .collect();
    names.join(", ")
}
