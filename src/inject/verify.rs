//! Agreement between two runs of the same injection (the engine and the
//! plain full forward pass).
//!
//! libtorch picks kernels by batch size, so two runs that lay out their
//! batches differently compute the same rows with different rounding: their
//! fault-free outputs already differ in the last bits. A fault whose effect
//! on the output is of that size can be `masked` in one layout and `benign`
//! in the other (or flip a top-1 tie). Outcomes must agree exactly, or differ
//! only by such a rounding-level effect, measured in the same run.

use tch::Tensor;

use super::InjectionResult;
use crate::classify::{top1, Outcome};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agreement {
    /// Same outcome.
    Exact,
    /// Different outcomes, but the faulty output is within rounding noise of
    /// the boundary between them.
    WithinRounding,
    Differs,
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

/// Rounding noise between the two runs: how far their fault-free outputs of
/// the sample lie apart, and at least a few units in the last place of the
/// largest output.
fn noise(a: &InjectionResult, b: &InjectionResult) -> f64 {
    let scale = a.golden.abs().max().double_value(&[]);
    max_abs_diff(&a.golden, &b.golden).max(scale * f64::from(f32::EPSILON) * 8.0)
}

/// How far a run's outcome lies from the masked/benign and benign/sde
/// boundaries: (max |faulty - golden|, margin of the faulty top-1 over the
/// golden class in the faulty output).
fn distances(r: &InjectionResult) -> Option<(f64, f64)> {
    let out = r.output.as_ref()?;
    let golden_class = top1(&r.golden);
    let margin = out.max().double_value(&[]) - out.double_value(&[golden_class]);
    Some((max_abs_diff(out, &r.golden), margin))
}

pub fn agreement(a: &InjectionResult, b: &InjectionResult) -> Agreement {
    use Outcome::*;
    let (oa, ob) = (a.outcome(), b.outcome());
    if oa == ob {
        return Agreement::Exact;
    }
    let tol = noise(a, b);
    // The run that is not masked (dropped rows have no output) must have
    // moved its output by no more than the noise, or its new top-1 must beat
    // the golden class by no more than the noise.
    let near = |r: &InjectionResult, boundary: Outcome| match (boundary, distances(r)) {
        (Masked, Some((diff, _))) => diff <= tol,
        (Benign, Some((_, margin))) => margin <= tol,
        _ => false,
    };
    let ok = match (oa, ob) {
        (Masked, Benign) => near(b, Masked),
        (Benign, Masked) => near(a, Masked),
        (Benign, Sde) => near(b, Benign),
        (Sde, Benign) => near(a, Benign),
        _ => false,
    };
    if ok {
        Agreement::WithinRounding
    } else {
        Agreement::Differs
    }
}
