//! Accuracy under faults, as InjectTF2 reports it: per injection, the share
//! of its runs whose faulty top-1 is the ground-truth label (accuracy) and
//! the share whose faulty top-1 is the golden one (agreement); then their
//! mean, standard deviation, minimum and maximum over injections. A
//! permanent fault's injection runs on many samples, so its accuracy is a
//! real accuracy; a transient fault's runs on one sample, so its accuracy is
//! 0 or 1 and the mean is the share of correct runs. The fault-free model's
//! accuracy on the same runs is the reference.
//!
//! Invariant: the statistics do not depend on the order the injections are
//! counted in (a histogram of exact per-injection counts, read in order).

use std::collections::BTreeMap;

/// Per-injection shares of one kind (accuracy or agreement), kept exactly
/// as a histogram of (runs, hits) pairs.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Spread {
    histogram: BTreeMap<(u64, u64), u64>,
}

/// The distribution of a [`Spread`] over injections.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpreadStats {
    /// Injections with runs counted.
    pub injections: u64,
    /// Runs over all injections.
    pub runs: u64,
    /// Runs with a hit (correct, or agreeing) over all injections.
    pub hits: u64,
    /// Mean of the per-injection shares.
    pub mean: f64,
    /// Their standard deviation (population: divided by the number of
    /// injections, as numpy's default).
    pub std: f64,
    /// The lowest per-injection share.
    pub min: f64,
    /// The highest per-injection share.
    pub max: f64,
}

impl Spread {
    /// One injection: `hits` of its `runs` (nothing when it has no runs,
    /// e.g. no labelled sample).
    pub fn add(&mut self, runs: u64, hits: u64) {
        if runs > 0 {
            *self.histogram.entry((runs, hits)).or_default() += 1;
        }
    }

    /// Mean, standard deviation, minimum and maximum over injections
    /// (`None` without any).
    pub fn stats(&self) -> Option<SpreadStats> {
        let share = |(runs, hits): (u64, u64)| hits as f64 / runs as f64;
        let injections: u64 = self.histogram.values().sum();
        if injections == 0 {
            return None;
        }
        let weighted = |f: &dyn Fn(f64) -> f64| -> f64 {
            self.histogram
                .iter()
                .map(|(&k, &count)| count as f64 * f(share(k)))
                .sum::<f64>()
                / injections as f64
        };
        let mean = weighted(&|s| s);
        let std = weighted(&|s| (s - mean) * (s - mean)).sqrt();
        let shares = || self.histogram.keys().map(|&k| share(k));
        Some(SpreadStats {
            injections,
            runs: self.histogram.iter().map(|(k, c)| k.0 * c).sum(),
            hits: self.histogram.iter().map(|(k, c)| k.1 * c).sum(),
            mean,
            std,
            min: shares().fold(f64::INFINITY, f64::min),
            max: shares().fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// One model's accuracy and agreement under faults.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ModelAccuracy {
    /// Faulty top-1 equals the label (labelled runs only; a DUE run's
    /// output holds NaN or Inf and is never correct).
    pub accuracy: Spread,
    /// Faulty top-1 equals the golden top-1 (the run is masked or benign).
    pub agreement: Spread,
}

/// One injection's runs as [`ModelAccuracy`] counts them.
#[derive(Debug, Default, Clone, Copy)]
pub struct RunsOf {
    /// Runs on labelled samples.
    pub labelled: u64,
    /// Of those, runs whose faulty top-1 is the label.
    pub correct: u64,
    /// All runs.
    pub runs: u64,
    /// Runs whose faulty top-1 is the golden one.
    pub agree: u64,
}

impl ModelAccuracy {
    /// Adds one injection's runs.
    pub fn add_injection(&mut self, r: &RunsOf) {
        self.accuracy.add(r.labelled, r.correct);
        self.agreement.add(r.runs, r.agree);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_statistics_are_those_of_the_per_injection_shares() {
        let mut s = Spread::default();
        for (runs, hits) in [(4, 3), (4, 1), (2, 2), (4, 3)] {
            s.add(runs, hits);
        }
        s.add(0, 0);
        let st = s.stats().unwrap();
        // Shares 0.75, 0.25, 1.0, 0.75: mean 0.6875, population variance
        // (0.0625^2 * 2 + 0.4375^2 + 0.3125^2) / 4.
        assert_eq!(st.injections, 4);
        assert_eq!((st.runs, st.hits), (14, 9));
        assert!((st.mean - 0.6875).abs() < 1e-15);
        let var: f64 = (2.0 * 0.0625f64.powi(2) + 0.4375f64.powi(2) + 0.3125f64.powi(2)) / 4.0;
        assert!((st.std - var.sqrt()).abs() < 1e-15);
        assert_eq!((st.min, st.max), (0.25, 1.0));
        assert_eq!(Spread::default().stats(), None);
    }
}
