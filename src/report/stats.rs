//! The statistics behind every summary: outcome counts per group and 95%
//! Wilson intervals clustered by injection. In: each injection's counts in a
//! group (its rows: every fault and every sample of its scope). Out: rates,
//! intervals and the effective sample size behind each interval.
//!
//! An injection is the fault list's independent draw; its rows share their
//! faults, so they are not independent trials (a permanent fault that flips
//! the class of half the data set makes half its rows SDE). The interval is
//! Wilson's at the effective sample size n / design effect (Kish), with the
//! design effect estimated from how the injections' own rates spread, as
//! survey statistics treat cluster samples. Invariants: with one row per
//! injection it is the plain Wilson interval of the counts; the effective
//! size lies between the number of injections and n, and is the number of
//! injections when no row or every row has the outcome (the spread then
//! says nothing).

use crate::classify::Outcome;

/// The standard normal quantile of 97.5%.
const Z95: f64 = 1.959_963_984_540_054;

/// The outcomes in the order of the per-outcome sums.
const OUTCOMES: [Outcome; 4] = [Outcome::Masked, Outcome::Benign, Outcome::Sde, Outcome::Due];

/// The 95% Wilson score interval of a proportion `p` seen on `n` trials
/// (`n` may be an effective, fractional size).
pub fn wilson(p: f64, n: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z2 = Z95 * Z95;
    let denom = 1.0 + z2 / n;
    let centre = p + z2 / (2.0 * n);
    let half = Z95 * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    // At 0 and 1 the bound is exact, not a rounding error away.
    let low = if p <= 0.0 {
        0.0
    } else {
        (centre - half) / denom
    };
    let high = if p >= 1.0 {
        1.0
    } else {
        (centre + half) / denom
    };
    (low.max(0.0), high.min(1.0))
}

/// Outcome counts of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Rows in the group.
    pub n: u64,
    /// Rows whose output equals the golden one bit for bit.
    pub masked: u64,
    /// Rows whose output changed but not its class.
    pub benign: u64,
    /// Silent data errors: the class changed.
    pub sde: u64,
    /// Detected unrecoverable errors: NaN or Inf in the output (or a failure).
    pub due: u64,
}

impl Counts {
    /// Counts one more row with outcome `o`.
    pub fn add(&mut self, o: Outcome) {
        self.n += 1;
        *self.of_mut(o) += 1;
    }

    /// The count of outcome `o`.
    pub fn of(&self, o: Outcome) -> u64 {
        match o {
            Outcome::Masked => self.masked,
            Outcome::Benign => self.benign,
            Outcome::Sde => self.sde,
            Outcome::Due => self.due,
        }
    }

    fn of_mut(&mut self, o: Outcome) -> &mut u64 {
        match o {
            Outcome::Masked => &mut self.masked,
            Outcome::Benign => &mut self.benign,
            Outcome::Sde => &mut self.sde,
            Outcome::Due => &mut self.due,
        }
    }
}

/// One outcome's rate in a group, with its 95% interval and the effective
/// sample size the interval was computed at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// The point estimate.
    pub rate: f64,
    /// Lower end of the 95% interval.
    pub low: f64,
    /// Upper end of the 95% interval.
    pub high: f64,
    /// The effective sample size behind the interval.
    pub n_eff: f64,
}

/// A group's counts and the sums over its injections that the clustered
/// interval needs. Integer sums, so the result does not depend on the
/// order the injections are added in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Group {
    /// Outcome counts over the group's rows.
    pub counts: Counts,
    /// Injections with rows in the group.
    pub injections: u64,
    /// Sum over injections of n_i^2 (n_i: the injection's rows here).
    sum_nn: u128,
    /// Per outcome (in [`OUTCOMES`] order): sums of k_i^2 and k_i n_i.
    sum_kk: [u128; 4],
    sum_kn: [u128; 4],
}

impl Group {
    /// Adds one injection's rows in the group.
    pub fn add_injection(&mut self, c: &Counts) {
        if c.n == 0 {
            return;
        }
        let n = u128::from(c.n);
        self.injections += 1;
        self.sum_nn += n * n;
        for (i, o) in OUTCOMES.into_iter().enumerate() {
            let k = u128::from(c.of(o));
            self.sum_kk[i] += k * k;
            self.sum_kn[i] += k * n;
        }
        let t = &mut self.counts;
        t.n += c.n;
        for o in OUTCOMES {
            *t.of_mut(o) += c.of(o);
        }
    }

    /// The rate of outcome `o` with its clustered Wilson interval.
    pub fn rate(&self, o: Outcome) -> Rate {
        let n_eff = self.effective_n(o);
        let rate = match self.counts.n {
            0 => 0.0,
            n => self.counts.of(o) as f64 / n as f64,
        };
        let (low, high) = wilson(rate, n_eff);
        Rate {
            rate,
            low,
            high,
            n_eff,
        }
    }

    /// Kish's n / design effect, with the variance of the ratio estimator
    /// over injections (`c/(c-1) sum (k_i - p n_i)^2 / n^2`) against that of
    /// n independent trials (`p (1 - p) / (n - 1)`), kept in
    /// [injections, n].
    fn effective_n(&self, o: Outcome) -> f64 {
        let (n, c) = (self.counts.n, self.injections);
        let k = self.counts.of(o);
        if self.sum_nn == u128::from(n) {
            // One row per injection: independent trials.
            return n as f64;
        }
        if k == 0 || k == n || c < 2 {
            return c as f64;
        }
        let i = OUTCOMES
            .iter()
            .position(|x| *x == o)
            .expect("every outcome");
        let (nf, cf, p) = (n as f64, c as f64, k as f64 / n as f64);
        let spread =
            self.sum_kk[i] as f64 - 2.0 * p * self.sum_kn[i] as f64 + p * p * self.sum_nn as f64;
        if spread <= 0.0 {
            return nf;
        }
        let clustered = cf / (cf - 1.0) * spread / (nf * nf);
        let independent = p * (1.0 - p) / (nf - 1.0);
        (nf * independent / clustered).clamp(cf, nf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(n: u64, sde: u64) -> Counts {
        Counts {
            n,
            sde,
            masked: n - sde,
            ..Counts::default()
        }
    }

    fn group(injections: &[(u64, u64)]) -> Group {
        let mut g = Group::default();
        for &(n, sde) in injections {
            g.add_injection(&counts(n, sde));
        }
        g
    }

    #[test]
    fn one_row_per_injection_gives_the_plain_wilson_interval() {
        let mut g = group(&[(1, 1); 3]);
        for _ in 0..997 {
            g.add_injection(&counts(1, 0));
        }
        let r = g.rate(Outcome::Sde);
        assert_eq!(r.n_eff, 1000.0);
        assert_eq!((r.low, r.high), wilson(0.003, 1000.0));
        // The textbook value for 3 of 1000.
        assert!((r.low - 0.001021).abs() < 1e-6 && (r.high - 0.008783).abs() < 1e-6);
        assert_eq!(g.rate(Outcome::Due).n_eff, 1000.0);
    }

    #[test]
    fn a_permanent_fault_campaign_is_as_sure_as_its_faults_allow() {
        // 200 faults on 100 samples each; 49 of the 54 SDE rows come from
        // one fault (as in scenarios/fashion_weights.yml).
        let mut faults = vec![(100, 49), (100, 2), (100, 1), (100, 1), (100, 1)];
        faults.resize(200, (100, 0));
        let g = group(&faults);
        let sde = g.rate(Outcome::Sde);
        assert_eq!(g.counts.n, 20_000);
        assert_eq!(g.injections, 200);
        assert!((sde.rate - 0.0027).abs() < 1e-12);
        // Over rows the interval would be [0.21%, 0.35%]; one fault decides
        // most of the count, so it is far wider.
        let rows = wilson(0.0027, 20_000.0);
        assert!(sde.high > 3.0 * rows.1 && sde.low < 0.5 * rows.0, "{sde:?}");
        assert!(sde.n_eff > 200.0 && sde.n_eff < 1000.0, "{sde:?}");
        // No DUE at all: as sure as 200 faults without one, not 20,000 rows.
        let due = g.rate(Outcome::Due);
        assert_eq!(due.n_eff, 200.0);
        assert_eq!((due.low, due.high), wilson(0.0, 200.0));
    }

    #[test]
    fn faults_that_act_alike_on_every_sample_count_as_many_trials() {
        // Every fault flips the same share of its samples: the rows spread
        // as independent trials would, or less.
        let g = group(&[(10, 5); 40]);
        assert_eq!(g.rate(Outcome::Sde).n_eff, 400.0);
        // Each fault all or nothing: one trial per fault.
        let g = group(&[(10, 10), (10, 0), (10, 10), (10, 0)]);
        assert!((g.rate(Outcome::Sde).n_eff - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_order_of_the_injections_does_not_matter() {
        let faults = [(3, 1), (5, 0), (1, 1), (7, 4), (2, 2)];
        let mut reversed = faults;
        reversed.reverse();
        assert_eq!(group(&faults), group(&reversed));
    }
}
