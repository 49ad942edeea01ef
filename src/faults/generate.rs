//! Seeded fault generation (pipeline step 4). In: a [`Recipe`] (a validated
//! [`Campaign`](crate::scenario::Campaign) converts into one). Out: its
//! [`FaultList`]. Each sweep point draws from its own
//! stream of the seed ([`Stream`]), points and strata in order, so
//! the list depends on the recipe (scenario, model and seed) only.
//!
//! Per injection, in this order: the samples (from the scope), the number of
//! faults (from `per_inference`), then per fault the layer (by size or
//! uniform; one layer per injection in probability mode), the element
//! (uniform in the eligible boxes), the bits (`simultaneous` distinct bits of
//! the point's set) and a random word. With the probability per inference,
//! each candidate in order draws whether it is hit, then its element; an
//! inference no candidate is hit in yields no fault and no injection id.

use super::rng::Stream;
use super::{
    Budget, Candidate, Fault, FaultList, LayerChoice, Meta, PerInjection, Point, PointInfo, Recipe,
    Samples, Scope, StratumInfo,
};

/// The fault list of a recipe (or of a campaign: `generate(&campaign)`).
pub fn generate<'a>(recipe: impl Into<Recipe<'a>>) -> FaultList {
    let recipe = recipe.into();
    FaultList {
        meta: meta(recipe),
        faults: stream(recipe).collect(),
    }
}

/// The recipe's faults one at a time, as [`generate`] lists them, so a
/// list of millions is written or run without being held.
pub fn stream<'a>(recipe: impl Into<Recipe<'a>>) -> impl Iterator<Item = Fault> + 'a {
    let recipe = recipe.into();
    let mut tasks = Vec::new();
    for (point, p) in recipe.points.iter().enumerate() {
        match &p.budget {
            Budget::Injections(n) => tasks.push((point, FREE, *n)),
            Budget::Strata(strata) => tasks.extend(strata.iter().map(|s| {
                let fixed = Fixed {
                    candidate: Some(s.candidate),
                    bit: s.bit,
                };
                (point, fixed, s.size.n)
            })),
        }
    }
    let mut g = Generator {
        recipe,
        tasks: tasks.into_iter(),
        task: None,
        fault_id: 0,
        injection: 0,
    };
    std::iter::from_fn(move || g.next_injection()).flatten()
}

/// What the list is generated from.
pub fn meta<'a>(recipe: impl Into<Recipe<'a>>) -> Meta {
    let c = recipe.into();
    let strata = c
        .points
        .iter()
        .flat_map(|p| {
            let strata = match &p.budget {
                Budget::Strata(s) => s.as_slice(),
                Budget::Injections(_) => &[],
            };
            strata.iter().map(move |s| StratumInfo {
                sweep: p.id,
                layer: p.candidates[s.candidate].layer.clone(),
                target: p.candidates[s.candidate].target,
                bit: s.bit,
                size: s.size,
            })
        })
        .collect();
    Meta {
        seed: Some(c.seed),
        scenario: Some(c.scenario.display().to_string()),
        model: Some(c.model.display().to_string()),
        samples: Some(c.samples),
        points: c
            .points
            .iter()
            .map(|p| PointInfo {
                id: p.id,
                label: p.label.clone(),
            })
            .collect(),
        strata,
    }
}

struct Generator<'a> {
    recipe: Recipe<'a>,
    /// (point, constraints, injections) still to draw, in order.
    tasks: std::vec::IntoIter<(usize, Fixed, u64)>,
    /// The task being drawn: its point's stream and layer weights.
    task: Option<Task>,
    fault_id: u64,
    injection: u64,
}

struct Task {
    point: usize,
    fixed: Fixed,
    left: u64,
    rng: Stream,
    cum: Vec<u64>,
}

/// Constraints of one stratum on its injections.
#[derive(Clone, Copy)]
struct Fixed {
    candidate: Option<usize>,
    bit: Option<u8>,
}

const FREE: Fixed = Fixed {
    candidate: None,
    bit: None,
};

impl Generator<'_> {
    /// The faults of the next injection (`None` after the last).
    fn next_injection(&mut self) -> Option<Vec<Fault>> {
        while self.task.as_ref().is_none_or(|t| t.left == 0) {
            let (point, fixed, left) = self.tasks.next()?;
            let p = &self.recipe.points[point];
            // Each point draws from its own stream, kept across its strata.
            let task = match self.task.take() {
                Some(t) if t.point == point => Task { fixed, left, ..t },
                _ => Task {
                    point,
                    fixed,
                    left,
                    rng: Stream::new(self.recipe.seed, u64::from(p.id)),
                    cum: cumulative(p),
                },
            };
            self.task = Some(task);
        }
        let mut task = self.task.take().expect("a task with injections left");
        task.left -= 1;
        let p = &self.recipe.points[task.point];
        let faults = self.injection(p, &task.cum, task.fixed, &mut task.rng);
        self.task = Some(task);
        Some(faults)
    }

    fn injection(&mut self, p: &Point, cum: &[u64], fixed: Fixed, rng: &mut Stream) -> Vec<Fault> {
        let sample = self.samples(p, rng);
        let pick = |rng: &mut Stream| fixed.candidate.unwrap_or_else(|| rng.weighted(cum));
        let sites: Vec<(usize, u64)> = match p.per_injection {
            PerInjection::InferenceProbability => {
                let hits = (0..p.candidates.len()).filter_map(|c| {
                    let hit = rng.unit() < p.probabilities[c];
                    hit.then(|| (c, rng.below(p.candidates[c].elements())))
                });
                let sites: Vec<(usize, u64)> = hits.collect();
                if sites.is_empty() {
                    // A clean inference: nothing to run, no id taken.
                    return vec![];
                }
                sites
            }
            PerInjection::Probability => {
                let c = pick(rng);
                let n = p.candidates[c].elements();
                rng.bernoulli_positions(n, p.probabilities[c])
                    .into_iter()
                    .map(|e| (c, e))
                    .collect()
            }
            per => {
                let k = match per {
                    PerInjection::Fixed(k) => u64::from(k),
                    PerInjection::Uniform(lo, hi) => {
                        u64::from(lo) + rng.below(u64::from(hi - lo) + 1)
                    }
                    _ => rng.poisson_nonzero(poisson_mean(per)),
                };
                (0..k)
                    .map(|_| {
                        let c = pick(rng);
                        (c, rng.below(p.candidates[c].elements()))
                    })
                    .collect()
            }
        };
        let mut faults = Vec::with_capacity(sites.len());
        for (c, element) in sites {
            let bits = self.bits(p, fixed, rng);
            faults.push(self.fault(p, &p.candidates[c], element, bits, sample, rng.word()));
            self.fault_id += 1;
        }
        self.injection += 1;
        faults
    }

    fn samples(&self, p: &Point, rng: &mut Stream) -> Samples {
        let n = self.recipe.samples;
        match p.scope {
            Scope::Transient => Samples::One(rng.below(n)),
            Scope::Batch => {
                let start = rng.below(n.div_ceil(p.scope_batch)) * p.scope_batch;
                Samples::Range {
                    start,
                    end: (start + p.scope_batch).min(n),
                }
            }
            Scope::Epoch | Scope::Campaign => Samples::All,
        }
    }

    fn bits(&self, p: &Point, fixed: Fixed, rng: &mut Stream) -> Vec<u8> {
        if !p.model.uses_bits() {
            return vec![];
        }
        if let Some(b) = fixed.bit {
            return vec![b];
        }
        let mut bits = match p.adjacent {
            true => {
                let start = rng.choose(&super::adjacent_starts(&p.bits, p.simultaneous), 1)[0];
                (start..start + p.simultaneous).collect()
            }
            false => rng.choose(&p.bits, usize::from(p.simultaneous)),
        };
        bits.sort_unstable_by(|a, b| b.cmp(a));
        bits
    }

    fn fault(
        &self,
        p: &Point,
        c: &Candidate,
        element: u64,
        bits: Vec<u8>,
        sample: Samples,
        draw: u64,
    ) -> Fault {
        let (tensor, coord) = c.element(element);
        Fault {
            fault_id: self.fault_id,
            injection: self.injection,
            sample,
            target: c.target,
            node: c.node as u32,
            layer: c.layer.clone(),
            tensor: tensor.to_string(),
            coord,
            model: p.model.clone(),
            dtype: p.dtype,
            bits,
            scope: p.scope,
            sweep: p.id,
            draw,
        }
    }
}

fn poisson_mean(p: PerInjection) -> f64 {
    match p {
        PerInjection::Poisson(m) => m,
        _ => 1.0,
    }
}

/// Cumulative layer weights: element counts (by size) or ones (uniform).
fn cumulative(p: &Point) -> Vec<u64> {
    p.candidates
        .iter()
        .scan(0u64, |acc, c| {
            let w = match p.layer_choice {
                LayerChoice::BySize => c.elements(),
                LayerChoice::Uniform => 1,
            };
            *acc = acc.saturating_add(w);
            Some(*acc)
        })
        .collect()
}
