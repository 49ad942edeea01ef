//! How many faults (pipeline step 4): the statistical sample size of
//! Leveugle et al., "Statistical fault injection: quantified error and
//! confidence", DATE 2009. In: a stratum's fault population N, error margin
//! e, confidence c and estimated proportion p. Out: the sample size
//!
//! ```text
//! n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))
//! ```
//!
//! with t the standard normal quantile at 1 - (1 - c) / 2, rounded up, and
//! the margin that n actually achieves,
//! `e' = t sqrt(p (1 - p) (N - n) / (n (N - 1)))` (<= e).

use serde::{Deserialize, Serialize};

/// A chosen sample size with what it guarantees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SampleSize {
    /// Faults the sample is drawn from.
    pub population: u128,
    /// The sample size.
    pub n: u64,
    /// The error margin n achieves (at most the one asked for).
    pub margin: f64,
    /// The confidence the margin holds at.
    pub confidence: f64,
    /// The assumed failure probability.
    pub p: f64,
}

/// Leveugle's sample size for `population` faults. `margin` in (0, 1),
/// `confidence` in (0, 1), `p` in (0, 1).
pub fn leveugle(population: u128, margin: f64, confidence: f64, p: f64) -> SampleSize {
    let t = z_two_sided(confidence);
    let pq = p * (1.0 - p);
    let big_n = population as f64;
    let raw = big_n / (1.0 + margin * margin * (big_n - 1.0) / (t * t * pq));
    // Guard against 369.9999999 from rounding before taking the ceiling.
    let n = libm::ceil(raw - 1e-9).max(0.0);
    let n = (n.min(big_n) as u64).min(u64::try_from(population).unwrap_or(u64::MAX));
    SampleSize {
        population,
        n,
        margin: achieved_margin(population, n, t, pq),
        confidence,
        p,
    }
}

fn achieved_margin(population: u128, n: u64, t: f64, pq: f64) -> f64 {
    if n == 0 || population <= 1 || u128::from(n) >= population {
        return 0.0;
    }
    let (big_n, n) = (population as f64, n as f64);
    t * libm::sqrt(pq * (big_n - n) / (n * (big_n - 1.0)))
}

/// The two-sided standard normal critical value for `confidence`
/// (1.959964 for 0.95).
pub fn z_two_sided(confidence: f64) -> f64 {
    normal_quantile(1.0 - (1.0 - confidence) / 2.0)
}

/// The standard normal quantile (inverse CDF), Acklam's rational
/// approximation (relative error below 1.2e-9), for `q` in (0, 1).
pub fn normal_quantile(q: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] = [
        7.784_695_709_041_462e-3,
        3.224_671_290_700_398e-1,
        2.445_134_137_142_996,
        3.754_408_661_907_416,
    ];
    const LOW: f64 = 0.02425;
    let tail = |r: f64| {
        (((((C[0] * r + C[1]) * r + C[2]) * r + C[3]) * r + C[4]) * r + C[5])
            / ((((D[0] * r + D[1]) * r + D[2]) * r + D[3]) * r + 1.0)
    };
    if q < LOW {
        tail(libm::sqrt(-2.0 * libm::log(q)))
    } else if q > 1.0 - LOW {
        -tail(libm::sqrt(-2.0 * libm::log(1.0 - q)))
    } else {
        let r = (q - 0.5) * (q - 0.5);
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * (q - 0.5)
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}
