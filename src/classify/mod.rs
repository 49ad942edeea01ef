//! Step 6, classify: an injection's outcome from its faulty outputs and the
//! golden outputs of the same sample, as the plain full forward pass sees
//! them: `masked` when every output is bitwise golden, `due` when one holds
//! NaN or Inf, else `benign` or `sde` by the judged output (the scenario's
//! `outputs.judge`, the first by default). A judged output of one row per
//! sample (`[N, classes]`) is judged by its top-1 class; any other shape
//! element-wise (any change is `sde`). Other tasks (the scenario's `task:`,
//! [`Task`]) tell `benign` from `sde` by their own measures ([`task`],
//! [`detect`]); `masked` and `due` stay as above for every task. NaN or Inf
//! inside the network never decides an outcome: it is recorded beside it.

pub mod detect;
pub mod task;

use serde::{Deserialize, Serialize};
use tch::Tensor;

pub use task::{Measures, Task, TaskVerdict};

/// How an injection ended, compared with the golden run.
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
    /// The outcome's name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Masked => "masked",
            Outcome::Benign => "benign",
            Outcome::Sde => "sde",
            Outcome::Due => "due",
        }
    }
}

/// How a faulty row's outputs differ from its golden row's.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutputDiff {
    /// Per graph output, whether the row's differs bitwise from golden.
    pub changed: Vec<bool>,
    /// Some output of the row holds NaN or Inf.
    pub nonfinite: bool,
    /// The index of the judged output among the graph's outputs.
    pub judged: usize,
    /// The judged output has one row per sample (`[N, classes]`).
    pub top_class: bool,
    /// The task's verdict (none for classification, for a row with NaN or
    /// Inf, or one whose outputs are all golden).
    pub task: Option<TaskVerdict>,
    /// The task could not read the outputs (recorded as a `due`).
    pub task_error: Option<String>,
}

impl OutputDiff {
    /// Row `row` of every output in `outputs` (batched on axis 0) against
    /// row `golden`; `judged` indexes `outputs`; `task` judges the rows that
    /// changed and are finite.
    pub fn of(outputs: &[Tensor], row: i64, golden: i64, judged: usize, task: &Task) -> Self {
        let mut diff = OutputDiff {
            judged,
            top_class: outputs.get(judged).is_some_and(|t| t.dim() == 2),
            ..Default::default()
        };
        for t in outputs {
            let (faulty, clean) = (t.get(row), t.get(golden));
            diff.changed.push(!faulty.equal(&clean));
            let float = crate::graph::is_float(faulty.kind());
            diff.nonfinite |= float && faulty.isfinite().all().int64_value(&[]) == 0;
        }
        if !diff.nonfinite && diff.changed.contains(&true) {
            match task.judge(outputs, row, golden) {
                Ok(v) => diff.task = v,
                Err(e) => diff.task_error = Some(format!("{} task: {e}", task.name())),
            }
        }
        diff
    }

    /// The outcome, given the judged output's golden and faulty rows.
    pub fn outcome(&self, golden: &Tensor, faulty: &Tensor) -> Outcome {
        if self.nonfinite || self.task_error.is_some() {
            Outcome::Due
        } else if !self.changed.contains(&true) {
            Outcome::Masked
        } else if let Some(v) = &self.task {
            match v.sde {
                true => Outcome::Sde,
                false => Outcome::Benign,
            }
        } else if self.top_class {
            match top1(faulty) == top1(golden) {
                true => Outcome::Benign,
                false => Outcome::Sde,
            }
        } else if self.changed.get(self.judged) == Some(&true) {
            Outcome::Sde
        } else {
            Outcome::Benign
        }
    }
}

/// The index of the largest value of a flattened output row (the top-1 class).
pub fn top1(row: &Tensor) -> i64 {
    row.argmax(0, false).int64_value(&[])
}

/// Whether `class` is among the `k` best of `row`.
pub fn in_top(row: &Tensor, class: i64, k: i64) -> bool {
    let k = k.min(row.numel() as i64);
    let (_, idx) = row.topk(k, 0, true, true);
    Vec::<i64>::try_from(idx).is_ok_and(|v| v.contains(&class))
}
