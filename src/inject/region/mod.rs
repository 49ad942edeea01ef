//! Regional rows: a faulty row held as the box of positions where it
//! differs from its golden row, recomputed over that box alone.
//!
//! A single neuron fault changes one position of one activation, and each
//! convolution after it widens the difference only by its kernel's reach,
//! so for many layers the faulty row differs from golden in a small window
//! of a large activation, where most of the compute lies. A regional row
//! keeps, for each live value where it differs, a box (a range per spatial
//! axis) and its values there. A Conv or an element-wise node is recomputed
//! over the box its output can differ in, reading the golden row around it
//! (the halo). A box that comes out equal to golden disappears, and a row
//! with no box left is masked. The row joins the batch as a full row (its
//! golden row with the boxes written in) when a box would cover more than
//! [`MAX_SHARE`] of its value, or at a node of any other kind (which ops
//! run over a box is declared with the op: [`OnABox`]). A global pool runs
//! on the whole row with the boxes written in; when its output is the
//! golden row's bit for bit (a squeeze-and-excitation block's mean that a
//! small change leaves alone), the row goes on past the block as boxes.
//!
//! A box is computed with the same kernels as the full tensor over the same
//! inputs, and a Conv box kernel is trusted only once it has reproduced the
//! golden row's values bit for bit on those shapes: the first boxes of new
//! shapes compute the golden row's box in the same call, which is compared
//! with the golden row once the node has run, and the rows are recomputed
//! over the whole value if it differs (`trust`). So a box holds
//! the full row's values; `--verify` checks that the outcomes agree with
//! the plain full pass.
//!
//! Layout: the rows and element-wise boxes here, box geometry in
//! `geometry`, the convolution over a box in `conv`, and the check that
//! makes a box kernel trusted in `trust`.

mod conv;
mod geometry;
mod trust;

pub(super) use conv::{conv_boxes, ConvBox, KernelCheck};
pub(super) use trust::{verify_kernel, Kernels};

use std::collections::{BTreeMap, HashMap};

use tch::Tensor;

use super::blocks::{copy_region, equal_region, intersect, positions, Block, Span};
use super::rows::{cpu_bytes, cpu_bytes_mut, nonfinite_bytes};
use super::{corrupt_flat, BoxKernels, FaultSite, Injection, SiteValues};
use crate::error::Result;
use crate::graph::ops::{convolve_as, ConvShape};
use crate::graph::{Env, Graph, Node, OnABox, ValueId};
use crate::kernels::boxes::{Depthwise, Inside};
use conv::conv_inputs;
use geometry::{narrow_to, row_block, share, whole, window};

/// A regional row joins the batch rather than compute a box covering more
/// than this share of a value's positions (a batch row is cheaper then).
const MAX_SHARE: f64 = 0.25;

/// One row's values over a box of positions.
pub(super) struct Delta {
    span: Span,
    /// Shape `[1, C, span lengths...]`.
    values: Tensor,
}

impl Delta {
    fn new(span: Span, values: Tensor) -> Self {
        // Contiguous, so that it can be compared and copied in place.
        let values = values.contiguous();
        Delta { span, values }
    }
}

/// A faulty row running as boxes beside its golden row.
pub(super) struct RegionalRow {
    pub job: usize,
    pub sample: usize,
    /// The live values where the row differs from golden.
    pub deltas: BTreeMap<ValueId, Delta>,
    /// The outputs of the node about to run, computed before it runs (while
    /// its inputs are live).
    pending: Vec<(ValueId, Delta)>,
}

/// What a node does to a regional row.
pub(super) enum Step {
    /// Its outputs, computed over boxes (none when they equal golden).
    Boxes(Vec<(ValueId, Delta)>),
    /// A Conv's output over a box, to compute with the other rows' boxes of
    /// the same size ([`conv_boxes`]).
    Conv(ConvBox),
    /// The row must join the batch before the node runs.
    Join,
}

/// Whether `inj` can run as a regional row: a single neuron fault.
pub(super) fn eligible(inj: &Injection) -> bool {
    matches!(inj.faults.as_slice(), [f] if matches!(f.site, FaultSite::Neuron { .. }))
}

impl RegionalRow {
    pub fn new(job: usize, sample: usize) -> Self {
        RegionalRow {
            job,
            sample,
            deltas: BTreeMap::new(),
            pending: Vec::new(),
        }
    }

    /// Sets the outputs of the node about to run.
    pub fn set_pending(&mut self, outputs: Vec<(ValueId, Delta)>) {
        self.pending = outputs;
    }

    /// Applies the row's fault to the output of `node` (just run; golden row
    /// `golden` of `env`), as a one-position box. `None` when the output has
    /// no spatial axes or the index lies outside it: the row then joins the
    /// batch, where the fault is applied (or reported) as for any row.
    pub fn inject(
        &mut self,
        graph: &Graph,
        node: &Node,
        env: &Env,
        golden: usize,
        inj: &Injection,
    ) -> Result<Option<SiteValues>> {
        let fault = &inj.faults[0];
        let FaultSite::Neuron { index } = fault.site else {
            return Ok(None);
        };
        let out = node.outputs[0];
        let Some(t) = env.get(graph, out) else {
            return Ok(None);
        };
        let size = t.size();
        if size.len() < 3 || !(0..size[1..].iter().product()).contains(&index) {
            return Ok(None);
        }
        let mut span = Span::new();
        let mut rest = index;
        for &len in size[2..].iter().rev() {
            span.push((rest % len, rest % len + 1));
            rest /= len;
        }
        span.reverse();
        let fail = |e: String| graph.op_error(node, e);
        let Some(values) = window(t, golden, &span, None).map_err(|e| fail(e.to_string()))? else {
            return Ok(None);
        };
        // Contiguous [1, C, 1...]: the flat index of channel `rest` is `rest`.
        let site = corrupt_flat(&values, rest, &fault.corrupt).map_err(fail)?;
        let values = guard(graph, node, values)?;
        self.pending = vec![(out, Delta::new(span, values))];
        Ok(Some(site))
    }

    /// After `node` ran: takes in its outputs, compared with golden row
    /// `golden`, and frees the boxes of values read for the last time.
    /// Returns whether a new box holds NaN or Inf.
    pub fn settle(
        &mut self,
        graph: &Graph,
        node: &Node,
        env: &mut Env,
        golden: usize,
        scan: bool,
    ) -> Result<bool> {
        let mut nonfinite = false;
        for (id, delta) in std::mem::take(&mut self.pending) {
            let Some(t) = env.get_mut(id) else { continue };
            let same = match (row_block(t, golden), cpu_bytes(&delta.values)) {
                (Some((bytes, span)), Some(values)) => {
                    let golden = Block { bytes, span: &span };
                    let boxed = Block {
                        bytes: values,
                        span: &delta.span,
                    };
                    let elt = t.kind().elt_size_in_bytes();
                    equal_region(t.size()[1], elt, &golden, &boxed, &delta.span)
                }
                // Not comparable in place: kept as differing, which only
                // costs the work of a row that might have been dropped.
                _ => false,
            };
            if same {
                self.deltas.remove(&id);
            } else {
                nonfinite |= scan
                    && cpu_bytes(&delta.values)
                        .is_some_and(|b| nonfinite_bytes(delta.values.kind(), b));
                self.deltas.insert(id, delta);
            }
        }
        for id in node.inputs.iter().flatten() {
            if graph.values[*id].last_use == node.index {
                self.deltas.remove(id);
            }
        }
        Ok(nonfinite)
    }

    /// What `node` (about to run, its inputs in `env`) does to the row.
    pub fn step(
        &self,
        graph: &Graph,
        node: &Node,
        env: &Env,
        golden: usize,
        kernels: &Kernels,
    ) -> Result<Step> {
        let touched = node
            .inputs
            .iter()
            .flatten()
            .any(|id| self.deltas.contains_key(id));
        if !touched {
            return Ok(Step::Boxes(Vec::new()));
        }
        let is_output = node.outputs.iter().any(|o| graph.outputs.contains(o));
        if is_output || node.index + 1 == graph.nodes.len() || node.outputs.len() != 1 {
            return Ok(Step::Join);
        }
        let delta = match node.op.traits().on_a_box {
            OnABox::Convolution => self.conv(graph, node, env, kernels)?,
            OnABox::Elementwise => self.elementwise(graph, node, env, golden)?,
            OnABox::WholeRow => self.whole_row(graph, node, env, golden)?,
            OnABox::Join => return Ok(Step::Join),
        };
        Ok(match delta {
            Outcome::Golden => Step::Boxes(Vec::new()),
            Outcome::Box(d) => Step::Boxes(vec![(node.outputs[0], d)]),
            Outcome::Conv(c) => Step::Conv(c),
            Outcome::Join => Step::Join,
        })
    }

    /// An element-wise node over the union of its inputs' boxes. Inputs
    /// without a box may hold one value per channel (a squeeze-and-excite
    /// scale), read whole; all others share the boxed inputs' positions.
    fn elementwise(&self, graph: &Graph, node: &Node, env: &Env, golden: usize) -> Result<Outcome> {
        let boxed: Vec<(&Tensor, &Delta)> = (node.inputs.iter().flatten())
            .filter_map(|id| Some((env.get(graph, *id)?, self.deltas.get(id)?)))
            .collect();
        let Some(&(first, first_delta)) = boxed.first() else {
            return Ok(Outcome::Join);
        };
        let shape = first.size();
        let spatial = shape.len().saturating_sub(2);
        let mut span = first_delta.span.clone();
        for (t, d) in &boxed[1..] {
            if t.size() != shape {
                return Ok(Outcome::Join);
            }
            for (s, b) in span.iter_mut().zip(&d.span) {
                *s = (s.0.min(b.0), s.1.max(b.1));
            }
        }
        if share(&span, &shape[2..]) > MAX_SHARE {
            return Ok(Outcome::Join);
        }
        let fail = |e: String| graph.op_error(node, e);
        let mut windows = Vec::new();
        for id in &node.inputs {
            let Some(id) = id else {
                windows.push(None);
                continue;
            };
            let Some(t) = env.get(graph, *id) else {
                return Ok(Outcome::Join);
            };
            let size = t.size();
            let rows_alike = size.len() == shape.len() && size[0] == shape[0];
            let window = if !graph.is_computed(*id) {
                // Constants must be the same at every position (broadcast
                // over the spatial axes), so that the box sees the values
                // the full tensor does.
                let per_position =
                    size.len() > shape.len() || size.iter().rev().take(spatial).any(|&d| d != 1);
                if per_position {
                    return Ok(Outcome::Join);
                }
                t.shallow_clone()
            } else if rows_alike && size[2..] == shape[2..] {
                let delta = self.deltas.get(id);
                match window(t, golden, &span, delta).map_err(|e| fail(e.to_string()))? {
                    Some(w) => w,
                    None => return Ok(Outcome::Join),
                }
            } else if rows_alike
                && size[2..].iter().all(|&d| d == 1)
                && !self.deltas.contains_key(id)
            {
                t.f_narrow(0, golden as i64, 1)
                    .map_err(|e| fail(e.to_string()))?
            } else {
                return Ok(Outcome::Join);
            };
            windows.push(Some(window));
        }
        let ins: Vec<Option<&Tensor>> = windows.iter().map(Option::as_ref).collect();
        let y = graph.apply(node, &ins)?.remove(0);
        let lens: Vec<i64> = span.iter().map(|(a, b)| b - a).collect();
        if y.dim() != shape.len() || y.size()[0] != 1 || y.size()[2..] != lens {
            return Ok(Outcome::Join);
        }
        let values = guard(graph, node, y)?;
        Ok(Outcome::Box(Delta::new(span, values)))
    }

    /// A node that sums up the whole row, run on the row with its boxes
    /// written in; its output, a box covering the whole value, is dropped
    /// once it compares equal to the golden row's (`settle`).
    fn whole_row(&self, graph: &Graph, node: &Node, env: &Env, golden: usize) -> Result<Outcome> {
        let fail = |e: tch::TchError| graph.op_error(node, e.to_string());
        let mut ins = Vec::new();
        for id in &node.inputs {
            let Some(id) = id else {
                ins.push(None);
                continue;
            };
            let Some(t) = env.get(graph, *id) else {
                return Ok(Outcome::Join);
            };
            let row = match (graph.is_computed(*id), self.deltas.get(id)) {
                (false, _) => t.shallow_clone(),
                (true, None) => t.f_narrow(0, golden as i64, 1).map_err(fail)?,
                (true, Some(d)) => match window(t, golden, &whole(t), Some(d)).map_err(fail)? {
                    Some(w) => w,
                    None => return Ok(Outcome::Join),
                },
            };
            ins.push(Some(row));
        }
        let y = graph
            .apply(node, &ins.iter().map(Option::as_ref).collect::<Vec<_>>())?
            .remove(0);
        if y.dim() < 2 || y.size()[0] != 1 {
            return Ok(Outcome::Join);
        }
        let values = guard(graph, node, y)?;
        Ok(Outcome::Box(Delta::new(whole(&values), values)))
    }
}

/// A node's effect on one row's output.
enum Outcome {
    Golden,
    Box(Delta),
    Conv(ConvBox),
    Join,
}

/// Writes the row's boxes into row `at` of the batch values in `env`.
pub(super) fn write_in(
    row: &RegionalRow,
    env: &mut Env,
    at: usize,
) -> std::result::Result<(), tch::TchError> {
    for (&id, delta) in &row.deltas {
        if let Some(t) = env.get_mut(id) {
            narrow_to(&t.f_narrow(0, at as i64, 1)?, &delta.span)?.f_copy_(&delta.values)?;
        }
    }
    Ok(())
}

/// `node`'s guard, if any, applied to a box of its output.
fn guard(graph: &Graph, node: &Node, t: Tensor) -> Result<Tensor> {
    match graph.guards.get(&node.index) {
        Some(g) => g.apply(&t).map_err(|e| graph.op_error(node, e.to_string())),
        None => Ok(t),
    }
}

/// Whether a new box of `node`'s output may hold NaN or Inf, so it is worth
/// scanning (as the batch rows are).
pub(super) fn may_turn_nonfinite(node: &Node, fault_node: usize, already: bool) -> bool {
    !node.op.keeps_finite() || already || fault_node == node.index
}

#[cfg(test)]
mod tests {
    use super::conv::depthwise;
    use super::geometry::{conv_reach, widen, MIN_POINTWISE};
    use super::*;

    fn widened(span: &[(i64, i64)], lens: &[i64]) -> Span {
        let mut span = span.to_vec();
        widen(&mut span, lens);
        span
    }

    /// 1x1 boxes grow to MIN_POINTWISE positions inside the value: along
    /// the row toward its end, then back from it, then over more rows.
    #[test]
    fn pointwise_boxes_widen_inside_the_value() {
        assert_eq!(MIN_POINTWISE, 16);
        assert_eq!(widened(&[(3, 4), (5, 6)], &[56, 56]), [(3, 4), (5, 21)]);
        assert_eq!(widened(&[(3, 4), (50, 52)], &[56, 56]), [(3, 4), (40, 56)]);
        assert_eq!(widened(&[(3, 5), (5, 9)], &[56, 56]), [(3, 5), (5, 13)]);
        assert_eq!(widened(&[(6, 7), (6, 7)], &[7, 7]), [(4, 7), (0, 7)]);
        assert_eq!(widened(&[(0, 2), (0, 2)], &[2, 2]), [(0, 2), (0, 2)]);
        assert_eq!(widened(&[(0, 4), (0, 5)], &[8, 8]), [(0, 4), (0, 5)]);
        assert_eq!(widened(&[(2, 3)], &[100]), [(2, 18)]);
    }

    fn shape(stride: i64, extent: i64, pad: i64) -> ConvShape {
        ConvShape {
            strides: vec![stride; 2],
            dilations: vec![1; 2],
            pads: vec![(pad, pad); 2],
            extent: vec![extent; 2],
            group: 1,
        }
    }

    #[test]
    fn a_strided_padded_conv_reaches_the_outputs_whose_windows_meet_the_box() {
        // 3x3, stride 2, pad 1 on 8x8: output o reads inputs 2o-1..2o+1.
        let (out, reach, lens) =
            conv_reach(&shape(2, 3, 1), &[8, 8], &vec![(0, 1), (7, 8)]).unwrap();
        assert_eq!(out, vec![(0, 1), (3, 4)]);
        assert_eq!(reach, vec![(-1, 2), (5, 8)], "into the padding at the top");
        assert_eq!(lens, vec![4, 4]);
        let (out, reach, _) = conv_reach(&shape(2, 3, 1), &[8, 8], &vec![(2, 5), (4, 5)]).unwrap();
        assert_eq!(out, vec![(1, 3), (2, 3)]);
        assert_eq!(reach, vec![(1, 6), (3, 6)]);
    }

    #[test]
    fn a_stride_can_skip_the_box() {
        // 1x1, stride 2: odd positions are never read.
        assert!(conv_reach(&shape(2, 1, 0), &[8, 8], &vec![(1, 2), (3, 4)]).is_none());
        let (out, _, _) = conv_reach(&shape(2, 1, 0), &[8, 8], &vec![(1, 3), (3, 5)]).unwrap();
        assert_eq!(out, vec![(1, 2), (2, 3)]);
    }

    #[test]
    fn depthwise_boxes_at_the_edges_are_the_full_convolutions_values() {
        if !crate::kernels::boxes::available() {
            return; // libtorch's kernel computes the boxes
        }
        let opts = (tch::Kind::Float, tch::Device::Cpu);
        let (x, w, b) = (
            Tensor::randn([2, 16, 9, 9], opts),
            Tensor::randn([16, 1, 3, 3], opts),
            Tensor::randn([16], opts),
        );
        for stride in [1, 2] {
            let shape = ConvShape {
                group: 16,
                ..shape(stride, 3, 1)
            };
            let full = x.convolution(&w, Some(&b), [stride; 2], [1; 2], [1; 2], false, [0; 2], 16);
            // A box in the top right corner of row 1, and one inside row 0.
            for (row, input_box) in [(1, vec![(0, 2), (6, 9)]), (0, vec![(3, 5), (4, 6)])] {
                let (out, reach, _) = conv_reach(&shape, &[9, 9], &input_box).unwrap();
                let stacked = window(&x, row, &reach, None).unwrap().unwrap();
                let y = depthwise(&shape, &x, &w, Some(&b), &stacked, &[&reach])
                    .expect("a float32 depthwise conv runs in Rust");
                let want = narrow_to(&full.narrow(0, row as i64, 1), &out).unwrap();
                assert!(y.equal(&want), "stride {stride}, box {input_box:?}");
            }
        }
    }
}
