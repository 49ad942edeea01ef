//! The fault generator's input (pipeline step 4): what a fault list is drawn
//! from. In: built by the scenario from a validated campaign
//! ([`Campaign`](crate::scenario::Campaign) converts into a [`Recipe`]).
//! Out: consumed by [`generate`](super::generate) and
//! [`stream`](super::stream). These types are resolved (candidate layers,
//! bits, counts), never the YAML as written: the generator knows nothing of
//! the scenario format.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Candidate, FaultModel, NumFormat, SampleSize, Scope};

/// Everything a fault list depends on: the list is a function of this alone.
#[derive(Debug, Clone, Copy)]
pub struct Recipe<'a> {
    /// The campaign seed; each point draws from its own stream of it.
    pub seed: u64,
    /// Samples in the data subset; faults name positions `0..samples`.
    pub samples: u64,
    /// The sweep points, drawn in order.
    pub points: &'a [Point],
    /// Recorded in the list's [`Meta`](super::Meta) only.
    pub scenario: &'a Path,
    /// Recorded in the list's [`Meta`](super::Meta) only.
    pub model: &'a Path,
}

/// One sweep combination, resolved.
#[derive(Debug, Clone)]
pub struct Point {
    /// The point's id (`sweep` in the fault list).
    pub id: u32,
    /// The swept keys and their values (`bits=30 dtype=fp16`).
    pub label: String,
    /// The layers faults may strike.
    pub candidates: Vec<Candidate>,
    /// How a fault picks its layer.
    pub layer_choice: LayerChoice,
    /// What a fault does to a value.
    pub model: FaultModel,
    /// The number format faults are injected in.
    pub dtype: NumFormat,
    /// Bits a bit model draws from (empty for value models), ascending.
    pub bits: Vec<u8>,
    /// Distinct bits per fault.
    pub simultaneous: u8,
    /// The simultaneous bits are adjacent ones.
    pub adjacent: bool,
    /// Faults per injection.
    pub per_injection: PerInjection,
    /// Probability per candidate ([`PerInjection::Probability`] and
    /// [`PerInjection::InferenceProbability`]), else empty.
    pub probabilities: Vec<f64>,
    /// How long a fault lasts.
    pub scope: Scope,
    /// Samples per permanent batch (`scope: {batch: N}`), else 1.
    pub scope_batch: u64,
    /// How many injections the point gets.
    pub budget: Budget,
}

/// How many injections a point gets.
#[derive(Debug, Clone, PartialEq)]
pub enum Budget {
    /// This many injections, layers drawn by [`Point::layer_choice`].
    Injections(u64),
    /// Leveugle's stratified sample: each stratum its own count.
    Strata(Vec<Stratum>),
}

/// One Leveugle stratum: a candidate layer and, per layer and bit, a bit.
#[derive(Debug, Clone, PartialEq)]
pub struct Stratum {
    /// Index into [`Point::candidates`].
    pub candidate: usize,
    /// The bit every fault of the stratum flips (per-bit strata).
    pub bit: Option<u8>,
    /// The stratum's sample size.
    pub size: SampleSize,
}

impl Point {
    /// The inferences the point draws when it uses InjectTF2's
    /// per-inference probability ([`PerInjection::InferenceProbability`],
    /// scenario `per_inference: {probability: p, per: inference}`): its
    /// budget's injections, faulted and clean. Only the faulted ones are in
    /// the fault list (a clean inference takes no injection id), so a rate
    /// per inference divides by this, not by the list's injections. `None`
    /// for every other count, where each inference drawn is an injection of
    /// the list.
    pub fn inferences(&self) -> Option<u64> {
        (self.per_injection == PerInjection::InferenceProbability).then(|| self.budget.injections())
    }
}

impl Budget {
    /// Injections over the whole budget.
    pub fn injections(&self) -> u64 {
        match self {
            Budget::Injections(n) => *n,
            Budget::Strata(s) => s.iter().map(|s| s.size.n).sum(),
        }
    }
}

/// How many faults one injection holds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PerInjection {
    /// Exactly this many.
    Fixed(u32),
    /// Uniform in `lo..=hi`.
    Uniform(u32, u32),
    /// Poisson with this mean, at least one.
    Poisson(f64),
    /// Each eligible element of one chosen layer with that layer's
    /// probability ([`Point::probabilities`]), at least one.
    Probability,
    /// InjectTF2's own semantics: each candidate layer, independently, with
    /// its probability ([`Point::probabilities`]), one uniformly random
    /// element of it. An inference no layer is hit in runs clean: it has no
    /// fault and no injection id ([`Point::inferences`] counts it).
    InferenceProbability,
}

/// How a fault picks its layer among the selected ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerChoice {
    /// Each layer with probability proportional to its eligible elements
    /// (PyTorchALFI's weighted choice; every element equally likely).
    #[default]
    BySize,
    /// Each layer equally likely (PyTorchFI's random layer).
    Uniform,
}
