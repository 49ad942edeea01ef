//! What a model's outputs mean (the scenario's `task:`), and a faulty row's
//! measures against its golden row for each task. In: the model's outputs
//! (batched on axis 0), a faulty row and its golden row. Out: a
//! [`TaskVerdict`]: whether the row is a silent data error for the task and
//! the measures the results rows show. `masked` (every output bitwise
//! golden) and `due` (NaN or Inf in an output) are decided before a task is
//! asked; a task only tells `benign` from `sde`.
//!
//! - `segmentation`: the class of each pixel is the argmax over the class
//!   axis; `sde` when the fraction of pixels whose class changed exceeds the
//!   threshold (default 0: any pixel); measures: that fraction and the mean
//!   IoU of the faulty classes against golden.
//! - `tokens`: `[N, positions, vocabulary]` logits; `sde` when the top-1
//!   token of any position changed; measures: the positions changed.
//! - `values`: `sde` when some element of some output moves beyond
//!   `abs + rel * |golden|`; measures: the largest absolute and relative
//!   moves.
//! - `detection`: boxes decoded from the outputs ([`super::detect`]), kept
//!   above a score, greedy NMS, then matched against the golden boxes;
//!   `sde` on any false positive or false negative (IVMOD).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use super::detect::{self, Detector};

/// A resolved task: what the outputs mean and how a row is judged.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Task {
    /// `[N, classes]` by top-1, other shapes element-wise (the default).
    #[default]
    Classification,
    /// Per-pixel classes of output `output` (class axis `axis` of a row).
    Segmentation {
        /// Index of the output among the graph's.
        output: usize,
        /// The class axis within one row (0 for `[N, C, H, W]`).
        axis: i64,
        /// `sde` when the fraction of changed pixels exceeds this.
        threshold: f64,
    },
    /// Per-position top-1 of `[N, positions, vocabulary]` logits.
    Tokens {
        /// Index of the output among the graph's.
        output: usize,
    },
    /// Every float output element against a tolerance.
    Values {
        /// Absolute tolerance.
        abs: f64,
        /// Relative tolerance (of the golden value's magnitude).
        rel: f64,
    },
    /// Boxes, decoded and matched against golden.
    Detection(Detector),
}

impl Task {
    /// The task's name as the scenario writes it.
    pub fn name(&self) -> &'static str {
        match self {
            Task::Classification => "classification",
            Task::Segmentation { .. } => "segmentation",
            Task::Tokens { .. } => "tokens",
            Task::Values { .. } => "values",
            Task::Detection(_) => "detection",
        }
    }

    /// What an SDE is under this task, in a few words.
    pub fn sde_meaning(&self) -> &'static str {
        match self {
            Task::Classification => {
                "SDE: the top-1 class changed (any element, for outputs that rank no classes)"
            }
            Task::Segmentation { .. } => "SDE: pixels changed class beyond the threshold",
            Task::Tokens { .. } => "SDE: some position's top-1 token changed",
            Task::Values { .. } => "SDE: an output moved beyond the tolerance",
            Task::Detection(_) => "SDE (IVMOD): a box added or lost against golden",
        }
    }

    /// Whether a row's top-1 class means something: classification ranks
    /// the classes of one output; the other tasks judge by their measures.
    pub fn ranks_classes(&self) -> bool {
        matches!(self, Task::Classification)
    }

    /// The extra columns of `injections.csv` this task writes.
    pub fn columns(&self) -> &'static [&'static str] {
        match self {
            Task::Classification => &[],
            Task::Segmentation { .. } => &SEGMENTATION_COLUMNS,
            Task::Tokens { .. } => &TOKENS_COLUMNS,
            Task::Values { .. } => &VALUES_COLUMNS,
            Task::Detection(_) => &DETECTION_COLUMNS,
        }
    }

    /// The verdict on row `row` of `outputs` against row `golden`; `None`
    /// for classification (judged by [`super::OutputDiff`] itself).
    ///
    /// # Shapes
    /// Every output is batched on axis 0; `row` and `golden` index it.
    pub fn judge(
        &self,
        outputs: &[Tensor],
        row: i64,
        golden: i64,
    ) -> Result<Option<TaskVerdict>, String> {
        let err = |e: tch::TchError| e.to_string();
        let pair = |i: usize| -> Result<(Tensor, Tensor), String> {
            let t = outputs
                .get(i)
                .ok_or_else(|| format!("the model has no output {i}"))?;
            Ok((t.f_get(row).map_err(err)?, t.f_get(golden).map_err(err)?))
        };
        Ok(Some(match self {
            Task::Classification => return Ok(None),
            Task::Segmentation {
                output,
                axis,
                threshold,
            } => {
                let (f, g) = pair(*output)?;
                let m = segmentation(&f, &g, *axis).map_err(err)?;
                TaskVerdict {
                    sde: m.changed > *threshold,
                    measures: Measures::Segmentation(m),
                }
            }
            Task::Tokens { output } => {
                let (f, g) = pair(*output)?;
                let m = tokens(&f, &g).map_err(err)?;
                TaskVerdict {
                    sde: m.changed > 0,
                    measures: Measures::Tokens(m),
                }
            }
            Task::Values { abs, rel } => {
                let mut m = ValueMeasures::default();
                let mut sde = false;
                for (i, t) in outputs.iter().enumerate() {
                    if !crate::graph::is_float(t.kind()) {
                        continue;
                    }
                    let (f, g) = pair(i)?;
                    let (a, r, beyond) = values(&f, &g, *abs, *rel).map_err(err)?;
                    m.max_abs = m.max_abs.max(a);
                    m.max_rel = m.max_rel.max(r);
                    sde |= beyond;
                }
                TaskVerdict {
                    sde,
                    measures: Measures::Values(m),
                }
            }
            Task::Detection(d) => {
                let faulty = d.decode(outputs, row)?;
                let golden = d.decode(outputs, golden)?;
                let m = detect::compare(&golden, &faulty, d.match_iou);
                TaskVerdict {
                    sde: m.false_positives + m.false_negatives > 0,
                    measures: Measures::Detection(m),
                }
            }
        }))
    }
}

/// The segmentation columns of `injections.csv`.
pub const SEGMENTATION_COLUMNS: [&str; 2] = ["pixels_changed", "miou"];
/// The tokens column of `injections.csv`.
pub const TOKENS_COLUMNS: [&str; 1] = ["positions_changed"];
/// The values columns of `injections.csv`.
pub const VALUES_COLUMNS: [&str; 2] = ["max_abs_change", "max_rel_change"];
/// The detection columns of `injections.csv`.
pub const DETECTION_COLUMNS: [&str; 5] = [
    "false_positives",
    "false_negatives",
    "matched",
    "max_iou_shift",
    "max_score_shift",
];

/// A task's judgement of one faulty row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskVerdict {
    /// The row is a silent data error for the task.
    pub sde: bool,
    /// What the task measured.
    pub measures: Measures,
}

/// A task's measures of one faulty row against golden.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Measures {
    /// See [`SegmentationMeasures`].
    Segmentation(SegmentationMeasures),
    /// See [`TokenMeasures`].
    Tokens(TokenMeasures),
    /// See [`ValueMeasures`].
    Values(ValueMeasures),
    /// See [`detect::DetectionMeasures`].
    Detection(detect::DetectionMeasures),
}

impl Measures {
    /// The counts among the measures (boxes, positions): what two runs of
    /// one injection must agree on even where rounding moves the fractions.
    pub fn counts(&self) -> Vec<u64> {
        match self {
            Measures::Segmentation(_) | Measures::Values(_) => vec![],
            Measures::Tokens(m) => vec![m.changed],
            Measures::Detection(m) => vec![
                u64::from(m.false_positives),
                u64::from(m.false_negatives),
                u64::from(m.matched),
            ],
        }
    }

    /// The row's cells, in the order of [`Task::columns`] (fractions and
    /// moves as float32, as the Parquet rows hold them).
    pub fn cells(&self) -> Vec<String> {
        let f = |v: f64| format!("{:e}", v as f32);
        match self {
            Measures::Segmentation(m) => vec![f(m.changed), f(m.miou)],
            Measures::Tokens(m) => vec![m.changed.to_string()],
            Measures::Values(m) => vec![f(m.max_abs), f(m.max_rel)],
            Measures::Detection(m) => vec![
                m.false_positives.to_string(),
                m.false_negatives.to_string(),
                m.matched.to_string(),
                format!("{:e}", m.max_iou_shift),
                format!("{:e}", m.max_score_shift),
            ],
        }
    }
}

/// Pixels whose class changed, and the mean IoU against golden.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SegmentationMeasures {
    /// Fraction of the pixels whose class changed.
    pub changed: f64,
    /// Mean over the classes present in either map of their IoU.
    pub miou: f64,
}

/// Positions whose top-1 token changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TokenMeasures {
    /// Positions whose top-1 changed.
    pub changed: u64,
}

/// The largest moves of any output element.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ValueMeasures {
    /// Largest `|faulty - golden|`.
    pub max_abs: f64,
    /// Largest `|faulty - golden| / |golden|` (infinite when golden is 0).
    pub max_rel: f64,
}

/// Segmentation measures of one row.
///
/// # Shapes
/// `faulty`, `golden`: one row, classes on `axis` (`[C, H, W]` with 0).
pub fn segmentation(
    faulty: &Tensor,
    golden: &Tensor,
    axis: i64,
) -> Result<SegmentationMeasures, tch::TchError> {
    let classes = golden
        .size()
        .get(axis as usize)
        .copied()
        .unwrap_or(1)
        .max(1);
    let f = faulty.f_argmax(axis, false)?.f_flatten(0, -1)?;
    let g = golden.f_argmax(axis, false)?.f_flatten(0, -1)?;
    let pixels = g.numel().max(1) as f64;
    let changed = f.f_ne_tensor(&g)?.f_sum(Kind::Int64)?.int64_value(&[]) as f64 / pixels;
    // The confusion matrix golden x faulty.
    let cells = g.f_mul_scalar(classes)?.f_add(&f)?;
    let counts = cells.f_bincount::<Tensor>(None, classes * classes)?;
    let counts = counts.f_view([classes, classes])?.f_to_kind(Kind::Int64)?;
    let both = counts.f_diagonal(0, 0, 1)?;
    let union = counts
        .f_sum_dim_intlist(0, false, Kind::Int64)?
        .f_add(&counts.f_sum_dim_intlist(1, false, Kind::Int64)?)?
        .f_sub(&both)?;
    let both = Vec::<i64>::try_from(both)?;
    let union = Vec::<i64>::try_from(union)?;
    let ious: Vec<f64> = both
        .iter()
        .zip(&union)
        .filter(|(_, &u)| u > 0)
        .map(|(&b, &u)| b as f64 / u as f64)
        .collect();
    let miou = match ious.is_empty() {
        true => 1.0,
        false => ious.iter().sum::<f64>() / ious.len() as f64,
    };
    Ok(SegmentationMeasures { changed, miou })
}

/// Token measures of one row.
///
/// # Shapes
/// `faulty`, `golden`: `[positions, vocabulary]` (any leading axes are
/// positions too).
pub fn tokens(faulty: &Tensor, golden: &Tensor) -> Result<TokenMeasures, tch::TchError> {
    let f = faulty.f_argmax(-1, false)?;
    let g = golden.f_argmax(-1, false)?;
    let changed = f.f_ne_tensor(&g)?.f_sum(Kind::Int64)?.int64_value(&[]);
    Ok(TokenMeasures {
        changed: changed as u64,
    })
}

/// The largest absolute and relative moves of one row, and whether some
/// element moved beyond `abs + rel * |golden|`.
pub fn values(
    faulty: &Tensor,
    golden: &Tensor,
    abs: f64,
    rel: f64,
) -> Result<(f64, f64, bool), tch::TchError> {
    let (f, g) = (
        faulty.f_to_kind(Kind::Double)?,
        golden.f_to_kind(Kind::Double)?,
    );
    let d = f.f_sub(&g)?.f_abs()?;
    if d.numel() == 0 {
        return Ok((0.0, 0.0, false));
    }
    let ga = g.f_abs()?;
    let max_abs = d.f_max()?.double_value(&[]);
    // 0 / 0 is no move; x / 0 stays infinite.
    let max_rel = d.f_div(&ga)?.f_nan_to_num(0.0, Some(f64::INFINITY), None)?;
    let max_rel = max_rel.f_max()?.double_value(&[]);
    let limit = ga.f_mul_scalar(rel)?.f_add_scalar(abs)?;
    let beyond = d.f_gt_tensor(&limit)?.f_any()?.int64_value(&[]) != 0;
    Ok((max_abs, max_rel, beyond))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segmentation_counts_changed_pixels_and_the_mean_iou_of_the_classes() {
        // Two classes over four pixels: golden 0 0 1 1, faulty 0 1 1 1.
        let g = Tensor::from_slice(&[1.0f32, 1.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0]).view([2, 1, 4]);
        let f = Tensor::from_slice(&[1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 1.0]).view([2, 1, 4]);
        let m = segmentation(&f, &g, 0).unwrap();
        assert_eq!(m.changed, 0.25);
        // Class 0: 1 / 2; class 1: 2 / 3.
        assert!((m.miou - (0.5 + 2.0 / 3.0) / 2.0).abs() < 1e-12);
        assert_eq!(segmentation(&g, &g, 0).unwrap().miou, 1.0);
    }

    #[test]
    fn values_are_beyond_the_tolerance_when_abs_plus_rel_of_golden_is_exceeded() {
        let g = Tensor::from_slice(&[1.0f32, 100.0]);
        let f = Tensor::from_slice(&[1.05f32, 104.0]);
        let (a, r, beyond) = values(&f, &g, 0.1, 0.05).unwrap();
        assert!((a - 4.0).abs() < 1e-4 && (r - 0.05).abs() < 1e-6);
        assert!(!beyond);
        assert!(values(&f, &g, 0.01, 0.01).unwrap().2);
    }
}
