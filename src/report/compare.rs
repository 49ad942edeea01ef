//! Paired comparisons: the plain model against a hardened one (Ranger,
//! Clipper, a hardened model file) on the same runs, so that "the
//! mitigation helps" is a statistical statement. In: each injection's runs
//! on both models. Out: both rates, their difference with its interval
//! (Newcombe's hybrid score interval for paired proportions, built on the
//! two clustered Wilson intervals), and McNemar's test of the discordant
//! runs (exact with one row per injection, clustered as Durkalski's
//! otherwise).

use super::stats::{Counts, Event, Group, Rate};
use crate::classify::Outcome;

/// The events compared, in column order.
pub const COMPARED: [Event; 2] = [Event::Sde, Event::Due];

/// One injection's runs on both models: their counts, and per compared
/// event the rows where both, only the plain or only the hardened model
/// had it.
#[derive(Debug, Default, Clone)]
pub struct PairCounts {
    plain: Counts,
    hardened: Counts,
    /// Per [`COMPARED`] event: [both, plain only, hardened only].
    table: [[u64; 3]; 2],
}

impl PairCounts {
    /// Counts one row: its outcome and top-k hit on each model.
    pub fn add(&mut self, plain: (Outcome, bool), hardened: (Outcome, bool)) {
        self.plain.add(plain.0, plain.1);
        self.hardened.add(hardened.0, hardened.1);
        for (i, e) in COMPARED.into_iter().enumerate() {
            let (p, h) = (Event::from(plain.0) == e, Event::from(hardened.0) == e);
            match (p, h) {
                (true, true) => self.table[i][0] += 1,
                (true, false) => self.table[i][1] += 1,
                (false, true) => self.table[i][2] += 1,
                (false, false) => {}
            }
        }
    }
}

/// A group's runs on both models, summed over its injections.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Paired {
    /// The plain model's counts.
    pub plain: Group,
    /// The hardened model's counts, on the same rows.
    pub hardened: Group,
    /// Per [`COMPARED`] event: [both, plain only, hardened only].
    table: [[u64; 3]; 2],
    /// Per [`COMPARED`] event: the sum over injections of (b_i - c_i)^2,
    /// b_i and c_i its plain-only and hardened-only rows.
    sum_dd: [u128; 2],
}

/// The comparison of one event's rate on the two models.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Difference {
    /// The plain model's rate.
    pub plain: Rate,
    /// The hardened model's rate.
    pub hardened: Rate,
    /// The hardened rate minus the plain one (negative: the mitigation
    /// removes that many of the rows), with its interval.
    pub diff: f64,
    /// Lower end of the difference's interval.
    pub low: f64,
    /// Upper end of the difference's interval.
    pub high: f64,
    /// Rows with the event on the plain model only.
    pub plain_only: u64,
    /// Rows with the event on the hardened model only.
    pub hardened_only: u64,
    /// McNemar's two-sided p-value for "both models have the same rate".
    pub p_value: f64,
    /// `exact` (binomial, one row per injection) or `clustered`
    /// (Durkalski's, rows of an injection share their fault).
    pub test: &'static str,
}

impl Paired {
    /// Adds one injection's rows.
    pub fn add_injection(&mut self, c: &PairCounts) {
        self.plain.add_injection(&c.plain);
        self.hardened.add_injection(&c.hardened);
        for i in 0..COMPARED.len() {
            for j in 0..3 {
                self.table[i][j] += c.table[i][j];
            }
            let d = i128::from(c.table[i][1]) - i128::from(c.table[i][2]);
            self.sum_dd[i] += (d * d) as u128;
        }
    }

    /// The comparison of event `e` (one of [`COMPARED`]) at normal
    /// quantile `z`.
    pub fn difference(&self, e: Event, z: f64) -> Difference {
        let i = COMPARED
            .iter()
            .position(|x| *x == e)
            .expect("a compared event");
        let [both, b, c] = self.table[i];
        let n = self.plain.counts.n;
        let (plain, hardened) = (self.plain.rate(e, z), self.hardened.rate(e, z));
        let phi = phi(both, b, c, n - both - b - c);
        // Newcombe (1998), method 10, for hardened - plain.
        let (p1, l1, u1) = (plain.rate, plain.low, plain.high);
        let (p2, l2, u2) = (hardened.rate, hardened.low, hardened.high);
        let diff = p2 - p1;
        let below = ((p2 - l2).powi(2) - 2.0 * phi * (p2 - l2) * (u1 - p1) + (u1 - p1).powi(2))
            .max(0.0)
            .sqrt();
        let above = ((u2 - p2).powi(2) - 2.0 * phi * (u2 - p2) * (p1 - l1) + (p1 - l1).powi(2))
            .max(0.0)
            .sqrt();
        let exact = self.plain.one_row_per_injection();
        let p_value = if exact {
            mcnemar_exact(b, c)
        } else {
            mcnemar_clustered(b, c, self.sum_dd[i])
        };
        Difference {
            plain,
            hardened,
            diff,
            low: (diff - below).max(-1.0),
            high: (diff + above).min(1.0),
            plain_only: b,
            hardened_only: c,
            p_value,
            test: if exact { "exact" } else { "clustered" },
        }
    }
}

/// The phi coefficient of the paired 2x2 table (0 when a margin is empty).
fn phi(both: u64, plain_only: u64, hardened_only: u64, neither: u64) -> f64 {
    let [a, b, c, d] = [both, plain_only, hardened_only, neither].map(|x| x as f64);
    let margins = (a + b) * (c + d) * (a + c) * (b + d);
    if margins <= 0.0 {
        return 0.0;
    }
    ((a * d - b * c) / margins.sqrt()).clamp(-1.0, 1.0)
}

/// McNemar's exact test: twice the binomial(b + c, 1/2) tail at
/// min(b, c), at most 1.
pub fn mcnemar_exact(b: u64, c: u64) -> f64 {
    let m = b + c;
    let k = b.min(c);
    if 2 * k >= m {
        return 1.0;
    }
    let mf = m as f64;
    let ln_term = |i: u64| {
        let i = i as f64;
        libm::lgamma(mf + 1.0)
            - libm::lgamma(i + 1.0)
            - libm::lgamma(mf - i + 1.0)
            - mf * std::f64::consts::LN_2
    };
    // Terms grow with i up to m/2: sum from the largest down until the
    // rest cannot matter.
    let top = ln_term(k);
    let mut sum = 0.0;
    for i in (0..=k).rev() {
        let t = (ln_term(i) - top).exp();
        sum += t;
        if t < sum * 1e-17 {
            break;
        }
    }
    (2.0 * sum * top.exp()).min(1.0)
}

/// Durkalski et al. (2003)'s McNemar test for clustered pairs:
/// (b - c)^2 / sum_i (b_i - c_i)^2 against chi-square with one degree of
/// freedom. With one row per injection it is McNemar's chi-square.
pub fn mcnemar_clustered(b: u64, c: u64, sum_dd: u128) -> f64 {
    if b == c || sum_dd == 0 {
        return 1.0;
    }
    let d = b as f64 - c as f64;
    let chi2 = d * d / sum_dd as f64;
    libm::erfc((chi2 / 2.0).sqrt())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::stats::Z95;

    #[test]
    fn the_exact_test_is_the_binomial_tail() {
        // 1 against 9 discordant rows: 2 * (1 + 10) / 1024.
        assert!((mcnemar_exact(1, 9) - 22.0 / 1024.0).abs() < 1e-15);
        assert!((mcnemar_exact(9, 1) - 22.0 / 1024.0).abs() < 1e-15);
        assert_eq!(mcnemar_exact(5, 5), 1.0);
        assert_eq!(mcnemar_exact(0, 0), 1.0);
        // 0 against 20: 2 / 2^20.
        assert!((mcnemar_exact(0, 20) - 2.0 / 1_048_576.0).abs() < 1e-18);
        // Large counts stay finite and agree with the normal tail.
        let p = mcnemar_exact(4_800, 5_200);
        assert!(p > 0.0 && p < 0.0001, "{p}");
    }

    #[test]
    fn the_clustered_test_is_mcnemars_chi_square_for_single_rows() {
        // b = 10, c = 2, one row each: chi2 = 64 / 12, p = 0.0209.
        let p = mcnemar_clustered(10, 2, 12);
        assert!((p - 0.020_921).abs() < 1e-5, "{p}");
    }

    #[test]
    fn the_difference_of_paired_rates_has_newcombes_interval() {
        // 100 runs: both SDE 5, plain only 10, hardened only 2, 83 neither.
        let mut p = Paired::default();
        let runs = [
            ((Outcome::Sde, false), (Outcome::Sde, false), 5),
            ((Outcome::Sde, true), (Outcome::Benign, true), 10),
            ((Outcome::Masked, true), (Outcome::Sde, true), 2),
            ((Outcome::Masked, true), (Outcome::Masked, true), 83),
        ];
        for (plain, hardened, k) in runs {
            for _ in 0..k {
                let mut c = PairCounts::default();
                c.add(plain, hardened);
                p.add_injection(&c);
            }
        }
        let d = p.difference(Event::Sde, Z95);
        assert_eq!((d.plain_only, d.hardened_only), (10, 2));
        assert!((d.diff - (-0.08)).abs() < 1e-12);
        // Newcombe's method 10 by hand: Wilson 15/100 [0.0930, 0.2329],
        // 7/100 [0.0343, 0.1375], phi = 0.4336.
        assert!((d.low - (-0.154_645)).abs() < 1e-6, "{d:?}");
        assert!((d.high - (-0.013_177)).abs() < 1e-6, "{d:?}");
        assert_eq!(d.test, "exact");
        assert!((d.p_value - mcnemar_exact(10, 2)).abs() < 1e-15);
    }
}
