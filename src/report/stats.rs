//! The statistics behind every summary: outcome counts per group and Wilson
//! intervals (95% unless `outputs.confidence` says otherwise) clustered by
//! injection. In: each injection's counts in a group (its rows: every fault
//! and every sample of its scope). Out: rates, intervals and the effective
//! sample size behind each interval.
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

/// The standard normal quantile of 97.5%: the z of a 95% interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// The confidence level of every interval (`outputs.confidence`) and the
/// normal quantile it needs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Confidence {
    /// The level, in (0, 1).
    pub level: f64,
    /// The two-sided standard normal quantile of the level.
    pub z: f64,
}

impl Confidence {
    /// The level `level` (95% is [`Z95`] exactly).
    pub fn new(level: f64) -> Confidence {
        let z = if level == 0.95 {
            Z95
        } else {
            crate::faults::count::z_two_sided(level)
        };
        Confidence { level, z }
    }

    /// The level as people write it: `95%`, `99.9%`.
    pub fn percent(&self) -> String {
        let p = format!("{:.4}", 100.0 * self.level);
        format!("{}%", p.trim_end_matches('0').trim_end_matches('.'))
    }
}

impl Default for Confidence {
    fn default() -> Confidence {
        Confidence::new(0.95)
    }
}

/// What a rate counts: a row's outcome, or an SDE whose golden class also
/// left the faulty top k (PyTorchFI's "top-1 not in top-5").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The output is bitwise golden.
    Masked,
    /// The output changed, its class did not.
    Benign,
    /// Silent data error: the class changed.
    Sde,
    /// NaN or Inf in an output.
    Due,
    /// An SDE whose golden class is not among the faulty top k either.
    SdeTopK,
}

impl From<Outcome> for Event {
    fn from(o: Outcome) -> Event {
        match o {
            Outcome::Masked => Event::Masked,
            Outcome::Benign => Event::Benign,
            Outcome::Sde => Event::Sde,
            Outcome::Due => Event::Due,
        }
    }
}

/// The events in the order of the per-event sums.
const EVENTS: [Event; 5] = [
    Event::Masked,
    Event::Benign,
    Event::Sde,
    Event::Due,
    Event::SdeTopK,
];

/// The Wilson score interval of a proportion `p` seen on `n` trials (`n`
/// may be an effective, fractional size), `z` the normal quantile of the
/// confidence level ([`Z95`] for 95%).
pub fn wilson(p: f64, n: f64, z: f64) -> (f64, f64) {
    if n <= 0.0 {
        return (0.0, 1.0);
    }
    let z2 = z * z;
    let denom = 1.0 + z2 / n;
    let centre = p + z2 / (2.0 * n);
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
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
    /// SDE rows whose golden class is not among the faulty top k either.
    pub sde_top_k: u64,
}

impl Counts {
    /// Counts one more row with outcome `o`; `top_k_hit`: the golden class
    /// is among the faulty top k.
    pub fn add(&mut self, o: Outcome, top_k_hit: bool) {
        self.n += 1;
        *self.of_mut(o.into()) += 1;
        if o == Outcome::Sde && !top_k_hit {
            self.sde_top_k += 1;
        }
    }

    /// The count of event `e`.
    pub fn of(&self, e: impl Into<Event>) -> u64 {
        match e.into() {
            Event::Masked => self.masked,
            Event::Benign => self.benign,
            Event::Sde => self.sde,
            Event::Due => self.due,
            Event::SdeTopK => self.sde_top_k,
        }
    }

    fn of_mut(&mut self, e: Event) -> &mut u64 {
        match e {
            Event::Masked => &mut self.masked,
            Event::Benign => &mut self.benign,
            Event::Sde => &mut self.sde,
            Event::Due => &mut self.due,
            Event::SdeTopK => &mut self.sde_top_k,
        }
    }
}

/// One event's rate in a group, with its interval and the effective
/// sample size the interval was computed at.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// The point estimate.
    pub rate: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
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
    /// Per event (in [`EVENTS`] order): sums of k_i^2 and k_i n_i.
    sum_kk: [u128; 5],
    sum_kn: [u128; 5],
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
        for (i, e) in EVENTS.into_iter().enumerate() {
            let k = u128::from(c.of(e));
            self.sum_kk[i] += k * k;
            self.sum_kn[i] += k * n;
        }
        let t = &mut self.counts;
        t.n += c.n;
        for e in EVENTS {
            *t.of_mut(e) += c.of(e);
        }
    }

    /// Adds `k` injections of one masked row each (clean inferences).
    pub fn add_masked_injections(&mut self, k: u64) {
        let k128 = u128::from(k);
        let i = EVENTS
            .iter()
            .position(|e| *e == Event::Masked)
            .expect("masked");
        self.injections += k;
        self.sum_nn += k128;
        self.sum_kk[i] += k128;
        self.sum_kn[i] += k128;
        self.counts.n += k;
        self.counts.masked += k;
    }

    /// Adds every injection of `other` (whose injections are not in `self`).
    pub fn merge(&mut self, other: &Group) {
        self.injections += other.injections;
        self.sum_nn += other.sum_nn;
        for i in 0..EVENTS.len() {
            self.sum_kk[i] += other.sum_kk[i];
            self.sum_kn[i] += other.sum_kn[i];
        }
        self.counts.n += other.counts.n;
        for e in EVENTS {
            *self.counts.of_mut(e) += other.counts.of(e);
        }
    }

    /// The rate of event `e` with its clustered Wilson interval at normal
    /// quantile `z`.
    pub fn rate(&self, e: impl Into<Event>, z: f64) -> Rate {
        let e = e.into();
        let n_eff = self.effective_n(e);
        let rate = match self.counts.n {
            0 => 0.0,
            n => self.counts.of(e) as f64 / n as f64,
        };
        let (low, high) = wilson(rate, n_eff, z);
        Rate {
            rate,
            low,
            high,
            n_eff,
        }
    }

    /// Whether every injection has one row here (its rows are then
    /// independent trials).
    pub fn one_row_per_injection(&self) -> bool {
        self.sum_nn == u128::from(self.counts.n)
    }

    /// Kish's n / design effect, with the variance of the ratio estimator
    /// over injections (`c/(c-1) sum (k_i - p n_i)^2 / n^2`) against that of
    /// n independent trials (`p (1 - p) / (n - 1)`), kept in
    /// [injections, n].
    fn effective_n(&self, e: Event) -> f64 {
        let (n, c) = (self.counts.n, self.injections);
        let k = self.counts.of(e);
        if self.one_row_per_injection() {
            // One row per injection: independent trials.
            return n as f64;
        }
        if k == 0 || k == n || c < 2 {
            return c as f64;
        }
        let i = EVENTS.iter().position(|x| *x == e).expect("every event");
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
        let r = g.rate(Outcome::Sde, Z95);
        assert_eq!(r.n_eff, 1000.0);
        assert_eq!((r.low, r.high), wilson(0.003, 1000.0, Z95));
        // The textbook value for 3 of 1000.
        assert!((r.low - 0.001021).abs() < 1e-6 && (r.high - 0.008783).abs() < 1e-6);
        assert_eq!(g.rate(Outcome::Due, Z95).n_eff, 1000.0);
    }

    #[test]
    fn a_permanent_fault_campaign_is_as_sure_as_its_faults_allow() {
        // 200 faults on 100 samples each; 49 of the 54 SDE rows come from
        // one fault (as in scenarios/fashion_weights.yml).
        let mut faults = vec![(100, 49), (100, 2), (100, 1), (100, 1), (100, 1)];
        faults.resize(200, (100, 0));
        let g = group(&faults);
        let sde = g.rate(Outcome::Sde, Z95);
        assert_eq!(g.counts.n, 20_000);
        assert_eq!(g.injections, 200);
        assert!((sde.rate - 0.0027).abs() < 1e-12);
        // Over rows the interval would be [0.21%, 0.35%]; one fault decides
        // most of the count, so it is far wider.
        let rows = wilson(0.0027, 20_000.0, Z95);
        assert!(sde.high > 3.0 * rows.1 && sde.low < 0.5 * rows.0, "{sde:?}");
        assert!(sde.n_eff > 200.0 && sde.n_eff < 1000.0, "{sde:?}");
        // No DUE at all: as sure as 200 faults without one, not 20,000 rows.
        let due = g.rate(Outcome::Due, Z95);
        assert_eq!(due.n_eff, 200.0);
        assert_eq!((due.low, due.high), wilson(0.0, 200.0, Z95));
    }

    #[test]
    fn faults_that_act_alike_on_every_sample_count_as_many_trials() {
        // Every fault flips the same share of its samples: the rows spread
        // as independent trials would, or less.
        let g = group(&[(10, 5); 40]);
        assert_eq!(g.rate(Outcome::Sde, Z95).n_eff, 400.0);
        // Each fault all or nothing: one trial per fault.
        let g = group(&[(10, 10), (10, 0), (10, 10), (10, 0)]);
        assert!((g.rate(Outcome::Sde, Z95).n_eff - 4.0).abs() < 1e-9);
    }

    #[test]
    fn the_order_of_the_injections_does_not_matter() {
        let faults = [(3, 1), (5, 0), (1, 1), (7, 4), (2, 2)];
        let mut reversed = faults;
        reversed.reverse();
        assert_eq!(group(&faults), group(&reversed));
    }
}
