//! Step 6, classify: an injection's outcome from its faulty output and the
//! golden output of the same sample computed in the same batch.

use serde::{Deserialize, Serialize};
use tch::Tensor;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The output is bitwise identical to golden.
    Masked,
    /// The output differs, the top-1 class does not.
    Benign,
    /// Silent data error: the top-1 class differs.
    Sde,
    /// Detected unrecoverable error: NaN or Inf in the output (or a failure).
    Due,
}

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Masked => "masked",
            Outcome::Benign => "benign",
            Outcome::Sde => "sde",
            Outcome::Due => "due",
        }
    }
}

/// Outcome of a faulty output row against the golden row (both 1-D).
pub fn classify(golden: &Tensor, faulty: &Tensor) -> Outcome {
    if faulty.isfinite().all().int64_value(&[]) == 0 {
        Outcome::Due
    } else if faulty.equal(golden) {
        Outcome::Masked
    } else if top1(faulty) == top1(golden) {
        Outcome::Benign
    } else {
        Outcome::Sde
    }
}

pub fn top1(row: &Tensor) -> i64 {
    row.argmax(0, false).int64_value(&[])
}

/// Whether `class` is among the `k` best of `row`.
pub fn in_top(row: &Tensor, class: i64, k: i64) -> bool {
    let k = k.min(row.numel() as i64);
    let (_, idx) = row.topk(k, 0, true, true);
    Vec::<i64>::try_from(idx).is_ok_and(|v| v.contains(&class))
}
