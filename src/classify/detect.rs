//! Detection: boxes from a model's outputs, greedy NMS, and matching of a
//! faulty row's boxes against its golden row's (IVMOD, PyTorchALFI's
//! image-wise vulnerability: an image is an SDE when any box is added or
//! lost). In: the outputs of a batch and a row. Out: [`Detection`]s and the
//! [`DetectionMeasures`] of one row against golden.
//!
//! Decoders:
//! - [`Decoder::Decoded`]: the graph decodes its boxes itself (`[N, K, 6]`
//!   or any `[N, K, F]` whose columns the scenario names);
//! - [`Decoder::CenterNet`]: a class heatmap and left/top/right/bottom
//!   distances; a peak is a cell equal to the largest of its 3x3
//!   neighbourhood; the `top_k` best peaks; box = (s x - l, s y - t,
//!   s x + r, s y + b) with s the stride;
//! - [`Decoder::CenterFace`]: a one-class heatmap, log sizes and offsets;
//!   every cell above the score threshold; size = exp(scale) s, centre =
//!   (cell + offset + 0.5) s, clipped to the input.
//!
//! Then boxes at or below the score threshold are dropped and greedy NMS
//! runs per class (highest score first; a box whose IoU with a kept box of
//! its class is above the NMS IoU is dropped).

use serde::{Deserialize, Serialize};
use tch::{Kind, Tensor};

use crate::kernels::views::floats;

/// One box: corners in input pixels, score, class.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Left.
    pub x1: f32,
    /// Top.
    pub y1: f32,
    /// Right.
    pub x2: f32,
    /// Bottom.
    pub y2: f32,
    /// Confidence.
    pub score: f32,
    /// Class index.
    pub class: i64,
}

impl Detection {
    fn area(&self) -> f32 {
        (self.x2 - self.x1).max(0.0) * (self.y2 - self.y1).max(0.0)
    }

    /// Intersection over union of two boxes (0 when both are empty).
    pub fn iou(&self, other: &Detection) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        match union > 0.0 {
            true => inter / union,
            false => 0.0,
        }
    }
}

/// How boxes are read from the outputs (indices into the graph's outputs).
#[derive(Debug, Clone, PartialEq)]
pub enum Decoder {
    /// The graph's own boxes: a `[N, K, F]` output whose columns hold x1,
    /// y1, x2, y2, score and class at the given positions.
    Decoded {
        /// The output.
        output: usize,
        /// Column of x1, y1, x2, y2, score, class.
        columns: [usize; 6],
    },
    /// CenterNet heads.
    CenterNet {
        /// Class heatmap (sigmoid scores), `[N, C, H, W]` or `[N, H, W, C]`.
        heatmap: usize,
        /// Left, top, right, bottom distances in input pixels.
        wh: usize,
        /// Channels last (`[N, H, W, C]`).
        channels_last: bool,
        /// Input pixels per heatmap cell.
        stride: f32,
        /// Peaks kept.
        top_k: i64,
    },
    /// CenterFace heads (`[N, C, H, W]`).
    CenterFace {
        /// One-class heatmap.
        heatmap: usize,
        /// Log height and width (in strides).
        scale: usize,
        /// Offsets of the centre in y and x (in cells).
        offset: usize,
        /// Input pixels per heatmap cell.
        stride: f32,
    },
}

/// A resolved detection task.
#[derive(Debug, Clone, PartialEq)]
pub struct Detector {
    /// How boxes are read.
    pub decoder: Decoder,
    /// Boxes with a score at or below this are dropped.
    pub score: f32,
    /// Greedy NMS IoU (per class); `None`: no NMS.
    pub nms: Option<f32>,
    /// NMS suppresses overlapping boxes of any class, not only of the
    /// kept box's own.
    pub class_agnostic: bool,
    /// A faulty box matches a golden one of its class at this IoU or more.
    pub match_iou: f32,
}

impl Detector {
    /// The boxes of row `row` of `outputs`, thresholded and after NMS,
    /// best score first.
    pub fn decode(&self, outputs: &[Tensor], row: i64) -> Result<Vec<Detection>, String> {
        let get = |i: usize| -> Result<Tensor, String> {
            let t = outputs
                .get(i)
                .ok_or_else(|| format!("the model has no output {i}"))?;
            t.f_get(row)
                .and_then(|t| t.f_to_kind(Kind::Float))
                .map_err(|e| e.to_string())
        };
        let raw = match &self.decoder {
            Decoder::Decoded { output, columns } => decoded(&get(*output)?, columns)?,
            Decoder::CenterNet {
                heatmap,
                wh,
                channels_last,
                stride,
                top_k,
            } => centernet(
                &get(*heatmap)?,
                &get(*wh)?,
                *channels_last,
                *stride,
                *top_k,
                self.score,
            )?,
            Decoder::CenterFace {
                heatmap,
                scale,
                offset,
                stride,
            } => centerface(
                &get(*heatmap)?,
                &get(*scale)?,
                &get(*offset)?,
                *stride,
                self.score,
            )
            .map_err(|e| e.to_string())?,
        };
        let kept: Vec<Detection> = raw.into_iter().filter(|d| d.score > self.score).collect();
        Ok(match self.nms {
            Some(iou) => nms(kept, iou, self.class_agnostic),
            None => sorted(kept),
        })
    }
}

impl Detector {
    /// The classes the model tells boxes apart by, when its outputs say:
    /// a CenterNet heatmap's channels, CenterFace's one; `None` for boxes
    /// the graph decodes.
    pub fn classes(&self, outputs: &[Tensor]) -> Option<usize> {
        match &self.decoder {
            Decoder::Decoded { .. } => None,
            Decoder::CenterFace { .. } => Some(1),
            Decoder::CenterNet {
                heatmap,
                channels_last,
                ..
            } => {
                let size = outputs.get(*heatmap)?.size();
                let axis = if *channels_last {
                    size.len().checked_sub(1)?
                } else {
                    1
                };
                size.get(axis).map(|&c| c as usize)
            }
        }
    }
}

/// Best score first (ties: the earlier box first).
fn sorted(mut boxes: Vec<Detection>) -> Vec<Detection> {
    boxes.sort_by(|a, b| b.score.total_cmp(&a.score));
    boxes
}

/// Greedy non-maximum suppression: highest score first, a box overlapping
/// a kept box of its class (of any class when `class_agnostic`) by more
/// than `iou` is dropped.
pub fn nms(boxes: Vec<Detection>, iou: f32, class_agnostic: bool) -> Vec<Detection> {
    let mut kept: Vec<Detection> = Vec::new();
    for b in sorted(boxes) {
        let suppresses = |k: &Detection| (class_agnostic || k.class == b.class) && k.iou(&b) > iou;
        if !kept.iter().any(suppresses) {
            kept.push(b);
        }
    }
    kept
}

/// Rows of a `[K, F]` tensor as boxes.
fn decoded(t: &Tensor, columns: &[usize; 6]) -> Result<Vec<Detection>, String> {
    let size = t.size();
    let f = *size.last().unwrap_or(&0) as usize;
    if let Some(c) = columns.iter().find(|&&c| c >= f) {
        return Err(format!(
            "the detections output has {f} values per box (shape {size:?} per sample), column {c} does not exist"
        ));
    }
    let v = Vec::<f32>::try_from(t.reshape([-1])).map_err(|e| e.to_string())?;
    Ok(v.chunks_exact(f.max(1))
        .map(|r| Detection {
            x1: r[columns[0]],
            y1: r[columns[1]],
            x2: r[columns[2]],
            y2: r[columns[3]],
            score: r[columns[4]],
            class: r[columns[5]] as i64,
        })
        .collect())
}

/// CenterNet peaks and boxes of one row: the cells above `score` that are
/// the largest of their 3x3 neighbourhood (a NaN neighbour is larger), best
/// first (ties: the earlier cell in `[C, H, W]` order), at most `top_k`.
/// A scan over the heatmap rather than a max-pool and a top-k over every
/// cell: this runs twice per faulty row.
///
/// # Shapes
/// `heat`: `[C, H, W]` (`[H, W, C]` with `channels_last`); `wh`: `[4, H, W]`
/// (`[H, W, 4]`).
fn centernet(
    heat: &Tensor,
    wh: &Tensor,
    channels_last: bool,
    stride: f32,
    top_k: i64,
    score: f32,
) -> Result<Vec<Detection>, String> {
    let shape = |t: &Tensor, what: &str, c: Option<i64>| -> Result<[usize; 3], String> {
        let size = t.size();
        let [a, b, d] = size[..] else {
            return Err(format!(
                "a CenterNet {what} row is [C, H, W] or [H, W, C], not {size:?}"
            ));
        };
        let (ch, h, w) = if channels_last { (d, a, b) } else { (a, b, d) };
        if c.is_some_and(|c| c != ch) {
            return Err(format!(
                "a CenterNet {what} row has 4 channels, not {size:?}"
            ));
        }
        Ok([ch as usize, h as usize, w as usize])
    };
    let [classes, h, w] = shape(heat, "heatmap", None)?;
    if shape(wh, "wh", Some(4))?[1..] != [h, w] {
        return Err(format!(
            "the CenterNet wh row {:?} does not match the heatmap row {:?}",
            wh.size(),
            heat.size()
        ));
    }
    let (heat, wh) = (contiguous_floats(heat)?, contiguous_floats(wh)?);
    let values = |t| floats(t).ok_or("a CenterNet head is not float32 on the CPU");
    let (heat_v, wh_v) = (values(&heat)?, values(&wh)?);
    // Element index of (channel, y, x) in a tensor of `c` channels.
    let at = |c: usize, ch: usize, y: usize, x: usize| match channels_last {
        true => (y * w + x) * c + ch,
        false => (ch * h + y) * w + x,
    };
    let mut peaks = Vec::new();
    for ch in 0..classes {
        for y in 0..h {
            for x in 0..w {
                let v = heat_v[at(classes, ch, y, x)];
                if v.is_nan() || v <= score {
                    continue;
                }
                let peak = (y.saturating_sub(1)..(y + 2).min(h)).all(|ny| {
                    (x.saturating_sub(1)..(x + 2).min(w))
                        .all(|nx| heat_v[at(classes, ch, ny, nx)] <= v)
                });
                if peak {
                    peaks.push((v, ch, y, x));
                }
            }
        }
    }
    // Stable: cells of equal score stay in [C, H, W] order.
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    peaks.truncate(top_k.max(0) as usize);
    Ok(peaks
        .into_iter()
        .map(|(score, ch, y, x)| {
            let d = |k: usize| wh_v[at(4, k, y, x)];
            let (fx, fy) = (x as f32, y as f32);
            Detection {
                x1: stride * fx - d(0),
                y1: stride * fy - d(1),
                x2: stride * fx + d(2),
                y2: stride * fy + d(3),
                score,
                class: ch as i64,
            }
        })
        .collect())
}

/// A float32 contiguous copy (or the tensor itself) to read as a slice.
fn contiguous_floats(t: &Tensor) -> Result<Tensor, String> {
    t.f_to_kind(Kind::Float)
        .and_then(|t| t.f_contiguous())
        .map_err(|e| e.to_string())
}

/// CenterFace boxes of one row (cells above `threshold`).
///
/// # Shapes
/// `heat`: `[1, H, W]`; `scale`, `offset`: `[2, H, W]`.
fn centerface(
    heat: &Tensor,
    scale: &Tensor,
    offset: &Tensor,
    stride: f32,
    threshold: f32,
) -> Result<Vec<Detection>, tch::TchError> {
    let size = heat.size();
    let (h, w) = match size[..] {
        [_, h, w] => (h, w),
        _ => {
            return Err(tch::TchError::Shape(format!(
                "a CenterFace heatmap row is [1, H, W], not {size:?}"
            )))
        }
    };
    let heat = Vec::<f32>::try_from(heat.f_contiguous()?.f_reshape([-1])?)?;
    let scale = Vec::<f32>::try_from(scale.f_contiguous()?.f_reshape([-1])?)?;
    let offset = Vec::<f32>::try_from(offset.f_contiguous()?.f_reshape([-1])?)?;
    let plane = (h * w) as usize;
    let (max_x, max_y) = (w as f32 * stride, h as f32 * stride);
    let at = |v: &[f32], k: usize, cell: usize| v.get(k * plane + cell).copied().unwrap_or(0.0);
    Ok((0..plane)
        .filter(|&cell| heat[cell] > threshold)
        .map(|cell| {
            let (y, x) = ((cell / w as usize) as f32, (cell % w as usize) as f32);
            let (sh, sw) = (
                at(&scale, 0, cell).exp() * stride,
                at(&scale, 1, cell).exp() * stride,
            );
            let (oy, ox) = (at(&offset, 0, cell), at(&offset, 1, cell));
            let x1 = ((x + ox + 0.5) * stride - sw / 2.0).clamp(0.0, max_x);
            let y1 = ((y + oy + 0.5) * stride - sh / 2.0).clamp(0.0, max_y);
            Detection {
                x1,
                y1,
                x2: (x1 + sw).min(max_x),
                y2: (y1 + sh).min(max_y),
                score: heat[cell],
                class: 0,
            }
        })
        .collect())
}

/// A faulty row's boxes against its golden row's.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct DetectionMeasures {
    /// Faulty boxes that match no golden box.
    pub false_positives: u32,
    /// Golden boxes that no faulty box matches.
    pub false_negatives: u32,
    /// Matched pairs.
    pub matched: u32,
    /// Largest `1 - IoU` of a matched pair.
    pub max_iou_shift: f32,
    /// Largest score change of a matched pair.
    pub max_score_shift: f32,
}

/// Greedy matching: pairs of the same class with IoU at least `min_iou`,
/// highest IoU first, each box in one pair at most.
pub fn matches(golden: &[Detection], faulty: &[Detection], min_iou: f32) -> Vec<(usize, usize)> {
    let mut pairs: Vec<(f32, usize, usize)> = Vec::new();
    for (i, g) in golden.iter().enumerate() {
        for (j, f) in faulty.iter().enumerate() {
            let iou = g.iou(f);
            if g.class == f.class && iou >= min_iou {
                pairs.push((iou, i, j));
            }
        }
    }
    pairs.sort_by(|a, b| b.0.total_cmp(&a.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let (mut g_used, mut f_used) = (vec![false; golden.len()], vec![false; faulty.len()]);
    let mut out = Vec::new();
    for (_, i, j) in pairs {
        if !g_used[i] && !f_used[j] {
            (g_used[i], f_used[j]) = (true, true);
            out.push((i, j));
        }
    }
    out
}

/// The measures of `faulty` against `golden`.
pub fn compare(golden: &[Detection], faulty: &[Detection], min_iou: f32) -> DetectionMeasures {
    let pairs = matches(golden, faulty, min_iou);
    let mut m = DetectionMeasures {
        matched: pairs.len() as u32,
        false_positives: (faulty.len() - pairs.len()) as u32,
        false_negatives: (golden.len() - pairs.len()) as u32,
        ..Default::default()
    };
    for (i, j) in pairs {
        let (g, f) = (&golden[i], &faulty[j]);
        m.max_iou_shift = m.max_iou_shift.max(1.0 - g.iou(f));
        m.max_score_shift = m.max_score_shift.max((g.score - f.score).abs());
    }
    m
}

/// COCO-style AP at IoU 0.5 of the boxes `found` against the ground truth
/// `truth`, both per image (`found[i]` are image `i`'s predictions), pooled
/// over the images per class: a class's predictions by score (best first;
/// ties in image order) each match the unmatched truth box of their image
/// and class they overlap most, if by IoU 0.5 or more (a true positive,
/// else a false positive); precision made monotone and read at the 101
/// recall points 0, 0.01, .., 1; the mean over the classes with truth
/// boxes. `None` without truth boxes (COCO leaves such classes out).
pub fn ap50<T: AsRef<[Detection]>, F: AsRef<[Detection]>>(truth: &[T], found: &[F]) -> Option<f64> {
    let mut classes: Vec<i64> = (truth.iter())
        .flat_map(|t| t.as_ref().iter().map(|g| g.class))
        .collect();
    classes.sort_unstable();
    classes.dedup();
    if classes.is_empty() {
        return None;
    }
    let sum: f64 = classes.iter().map(|&c| class_ap50(truth, found, c)).sum();
    Some(sum / classes.len() as f64)
}

/// [`ap50`] of class `c` (which has truth boxes).
fn class_ap50<T: AsRef<[Detection]>, F: AsRef<[Detection]>>(
    truth: &[T],
    found: &[F],
    c: i64,
) -> f64 {
    let of_class = |boxes: &[Detection]| -> Vec<Detection> {
        boxes.iter().filter(|b| b.class == c).copied().collect()
    };
    let truth: Vec<Vec<Detection>> = truth.iter().map(|t| of_class(t.as_ref())).collect();
    let total: usize = truth.iter().map(Vec::len).sum();
    let mut ranked: Vec<(usize, Detection)> = (found.iter().enumerate())
        .flat_map(|(i, f)| of_class(f.as_ref()).into_iter().map(move |b| (i, b)))
        .collect();
    ranked.sort_by(|a, b| b.1.score.total_cmp(&a.1.score));
    let mut used: Vec<Vec<bool>> = truth.iter().map(|t| vec![false; t.len()]).collect();
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut curve: Vec<(f64, f64)> = Vec::new();
    for (image, f) in ranked {
        let boxes = truth.get(image).map_or(&[][..], Vec::as_slice);
        let best = (0..boxes.len())
            .filter(|&i| !used[image][i])
            .map(|i| (i, boxes[i].iou(&f)))
            .filter(|&(_, iou)| iou >= 0.5)
            .max_by(|a, b| a.1.total_cmp(&b.1));
        match best {
            Some((i, _)) => {
                used[image][i] = true;
                tp += 1;
            }
            None => fp += 1,
        }
        curve.push((tp as f64 / total as f64, tp as f64 / (tp + fp) as f64));
    }
    // Monotone precision from the right.
    for i in (0..curve.len().saturating_sub(1)).rev() {
        curve[i].1 = curve[i].1.max(curve[i + 1].1);
    }
    let points: f64 = (0..=100)
        .map(|k| {
            let r = f64::from(k) / 100.0;
            (curve.iter())
                .find(|(recall, _)| *recall >= r - 1e-12)
                .map_or(0.0, |(_, p)| *p)
        })
        .sum();
    points / 101.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(x1: f32, y1: f32, x2: f32, y2: f32, score: f32, class: i64) -> Detection {
        Detection {
            x1,
            y1,
            x2,
            y2,
            score,
            class,
        }
    }

    #[test]
    fn nms_keeps_the_best_of_overlapping_boxes_of_a_class_or_of_any_class() {
        let boxes = vec![
            b(0.0, 0.0, 10.0, 10.0, 0.8, 1),
            b(1.0, 1.0, 11.0, 11.0, 0.9, 1),
            b(1.0, 1.0, 11.0, 11.0, 0.7, 2),
            b(50.0, 50.0, 60.0, 60.0, 0.5, 1),
        ];
        let scores = |kept: Vec<Detection>| kept.iter().map(|d| d.score).collect::<Vec<f32>>();
        assert_eq!(scores(nms(boxes.clone(), 0.5, false)), vec![0.9, 0.7, 0.5]);
        // Across classes, the class-2 box under the best one goes too.
        assert_eq!(scores(nms(boxes, 0.5, true)), vec![0.9, 0.5]);
    }

    #[test]
    fn matching_counts_lost_and_added_boxes() {
        let golden = vec![
            b(0.0, 0.0, 10.0, 10.0, 0.9, 1),
            b(20.0, 20.0, 30.0, 30.0, 0.8, 2),
        ];
        let faulty = vec![
            b(0.0, 0.0, 10.0, 9.0, 0.85, 1),
            b(20.0, 20.0, 30.0, 30.0, 0.8, 3),
        ];
        let m = compare(&golden, &faulty, 0.5);
        assert_eq!((m.matched, m.false_positives, m.false_negatives), (1, 1, 1));
        assert!((m.max_iou_shift - 0.1).abs() < 1e-6);
        assert!((m.max_score_shift - 0.05).abs() < 1e-6);
    }

    /// A 10 x 10 box at `x1`.
    fn square(x1: f32, score: f32, class: i64) -> Detection {
        Detection {
            x1,
            y1: 0.0,
            x2: x1 + 10.0,
            y2: 10.0,
            score,
            class,
        }
    }

    #[test]
    fn ap50_is_one_for_the_golden_boxes_and_drops_with_lost_and_added_ones() {
        let golden = vec![
            square(0.0, 0.9, 1),
            square(20.0, 0.8, 1),
            square(40.0, 0.7, 2),
        ];
        let ap50 = |truth: &[Detection], found: &[Detection]| ap50(&[truth], &[found]);
        assert_eq!(ap50(&golden, &golden), Some(1.0));
        assert_eq!(ap50(&[], &golden), None);
        // Class 1 loses a box (recall 0.5: 51 of 101 points), class 2 keeps its own.
        let lost = vec![square(0.0, 0.9, 1), square(40.0, 0.7, 2)];
        let ap = ap50(&golden, &lost).unwrap();
        assert!((ap - (51.0 / 101.0 + 1.0) / 2.0).abs() < 1e-12, "{ap}");
        // A better-scored false positive halves class 2's precision.
        let added = vec![
            square(0.0, 0.9, 1),
            square(20.0, 0.8, 1),
            square(70.0, 0.95, 2),
            square(40.0, 0.7, 2),
        ];
        let ap = ap50(&golden, &added).unwrap();
        assert!((ap - (1.0 + 0.5) / 2.0).abs() < 1e-12, "{ap}");
    }

    /// Two images of one class, a box each: pooled, a false positive on one
    /// image costs the other's true positive its precision.
    #[test]
    fn ap50_pools_the_images_per_class() {
        let truth = vec![vec![square(0.0, 1.0, 0)], vec![square(0.0, 1.0, 0)]];
        assert_eq!(ap50(&truth, &truth), Some(1.0));
        // Image 1's box missed, a stray box there instead: recall 0.5 at
        // precision 1, then precision 0.5.
        let missed = vec![vec![square(0.0, 0.9, 0)], vec![square(50.0, 0.8, 0)]];
        let ap = ap50(&truth, &missed).unwrap();
        assert!((ap - 51.0 / 101.0).abs() < 1e-12, "{ap}");
        // A better-scored false positive on image 0: precision 2/3 at
        // recall 1, monotone back to recall 0.
        let stray = vec![
            vec![square(50.0, 0.95, 0), square(0.0, 0.9, 0)],
            vec![square(0.0, 0.8, 0)],
        ];
        let ap = ap50(&truth, &stray).unwrap();
        assert!((ap - 2.0 / 3.0).abs() < 1e-12, "{ap}");
        // A box matches the truth of its own image only.
        let swapped = vec![vec![], vec![square(0.0, 0.9, 0), square(0.0, 0.8, 0)]];
        let ap = ap50(&truth, &swapped).unwrap();
        assert!((ap - 51.0 / 101.0).abs() < 1e-12, "{ap}");
        // A class without truth is left out of the mean.
        let other = vec![
            vec![square(0.0, 0.9, 0), square(80.0, 0.9, 5)],
            vec![square(0.0, 0.8, 0)],
        ];
        assert_eq!(ap50(&truth, &other), Some(1.0));
    }
}
