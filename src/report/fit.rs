//! From rates to failure rates: the FIT (failures in 10^9 device hours)
//! that the bits a model holds contribute, derated by the campaign's SDE
//! and DUE rates, as hardware reliability engineers derate a raw soft-error
//! rate by hand. For a target (weights or activations) held in a number
//! format, bit position b of its E elements contributes
//!
//! ```text
//! FIT_b = raw_per_bit x E x rate_b
//! ```
//!
//! with `rate_b` the SDE (or DUE) rate of single-bit flips of bit b there
//! (its interval scales alike); the total adds the injected bits, and its
//! interval adds the bits' interval ends (conservative). Bits that were not
//! injected contribute nothing to the total: the table lists the bits it
//! covers. The per-bit rate stands for every element when faults pick
//! elements uniformly (`layer_choice: by_size`, the default).

use std::collections::BTreeMap;

use super::stats::{Event, Group};
use crate::faults::{NumFormat, Target};

/// The FIT inputs: a raw fault rate per bit and the elements each target
/// holds.
#[derive(Debug, Clone, PartialEq)]
pub struct FitInputs {
    /// Raw FIT per bit (e.g. 1e-4 for 100 FIT per Mbit).
    pub raw_per_bit: f64,
    /// Elements held per target (the targeted layers' eligible elements
    /// unless the scenario gives them).
    pub elements: BTreeMap<Target, u64>,
}

/// Single-bit flip rates per target and format, by bit.
pub type BitRates = BTreeMap<(Target, NumFormat), BTreeMap<u8, Group>>;

/// One row of the FIT table: a bit, or the total of the injected bits.
#[derive(Debug, Clone, PartialEq)]
pub struct FitRow {
    /// Weights or activations.
    pub target: Target,
    /// The number format the elements are held in.
    pub format: NumFormat,
    /// The bit, or `None` for the total.
    pub bit: Option<u8>,
    /// Bits held: elements (one bit b each), or elements x injected bits.
    pub bits_held: u64,
    /// Rows behind the rates.
    pub n: u64,
    /// Per event (SDE, DUE): the FIT and its interval.
    pub fit: [(f64, f64, f64); 2],
}

/// The events a FIT is given for, in column order.
pub const EVENTS: [Event; 2] = [Event::Sde, Event::Due];

/// The FIT table: per target and format, each injected bit then the total.
pub fn table(rates: &BitRates, inputs: &FitInputs, z: f64) -> Vec<FitRow> {
    let mut rows = Vec::new();
    for (&(target, format), bits) in rates {
        let elements = inputs.elements.get(&target).copied().unwrap_or(0);
        let scale = inputs.raw_per_bit * elements as f64;
        let mut total = FitRow {
            target,
            format,
            bit: None,
            bits_held: elements * bits.len() as u64,
            n: 0,
            fit: [(0.0, 0.0, 0.0); 2],
        };
        for (&bit, group) in bits {
            let fit = EVENTS.map(|e| {
                let r = group.rate(e, z);
                (scale * r.rate, scale * r.low, scale * r.high)
            });
            for (t, f) in total.fit.iter_mut().zip(fit) {
                *t = (t.0 + f.0, t.1 + f.1, t.2 + f.2);
            }
            total.n += group.counts.n;
            rows.push(FitRow {
                target,
                format,
                bit: Some(bit),
                bits_held: elements,
                n: group.counts.n,
                fit,
            });
        }
        rows.push(total);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Outcome;
    use crate::report::stats::{wilson, Counts, Z95};

    #[test]
    fn a_bits_fit_is_the_raw_rate_times_its_elements_times_its_rate() {
        let mut rates = BitRates::default();
        let bits = rates.entry((Target::Weight, NumFormat::Fp32)).or_default();
        for (bit, sde, n) in [(30u8, 40, 100), (3, 0, 100)] {
            let g = bits.entry(bit).or_default();
            for i in 0..n {
                let mut c = Counts::default();
                c.add(
                    if i < sde {
                        Outcome::Sde
                    } else {
                        Outcome::Masked
                    },
                    true,
                );
                g.add_injection(&c);
            }
        }
        let inputs = FitInputs {
            raw_per_bit: 1e-4,
            elements: [(Target::Weight, 1_000_000)].into(),
        };
        let rows = table(&rates, &inputs, Z95);
        assert_eq!(rows.len(), 3);
        let (bit3, bit30, total) = (&rows[0], &rows[1], &rows[2]);
        assert_eq!((bit3.bit, bit30.bit, total.bit), (Some(3), Some(30), None));
        // 1e-4 FIT/bit x 1e6 elements x 40% = 40 FIT.
        assert!((bit30.fit[0].0 - 40.0).abs() < 1e-9);
        let (low, high) = wilson(0.4, 100.0, Z95);
        assert!((bit30.fit[0].1 - 100.0 * low).abs() < 1e-9);
        assert!((bit30.fit[0].2 - 100.0 * high).abs() < 1e-9);
        assert_eq!(bit3.fit[0].0, 0.0);
        assert!((total.fit[0].0 - 40.0).abs() < 1e-9);
        assert_eq!(total.bits_held, 2_000_000);
        assert!((total.fit[0].2 - bit30.fit[0].2 - bit3.fit[0].2).abs() < 1e-9);
    }
}
