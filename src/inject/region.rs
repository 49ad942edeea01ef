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
//! run over a box is declared with the op: [`OnABox`]).
//!
//! A box is computed with the same kernels as the full tensor over the same
//! inputs, and a Conv box kernel is trusted only once it has reproduced the
//! golden row's values bit for bit on those shapes: the first boxes of new
//! shapes compute the golden row's box in the same call, which is compared
//! with the golden row once the node has run, and the rows are recomputed
//! over the whole value if it differs ([`verify_kernel`]). So a box holds
//! the full row's values; `--verify` checks that the outcomes agree with
//! the plain full pass.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};

use tch::Tensor;

use super::blocks::{copy_region, equal_region, intersect, positions, Block, Span};
use super::depthwise::{Depthwise, Inside};
use super::rows::{cpu_bytes, cpu_bytes_mut, nonfinite_bytes};
use super::{corrupt_flat, FaultSite, Injection, SiteValues};
use crate::error::Result;
use crate::graph::ops::{convolve_as, ConvShape};
use crate::graph::{Env, Graph, Node, OnABox, ValueId};

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
            OnABox::Join => return Ok(Step::Join),
        };
        Ok(match delta {
            Outcome::Golden => Step::Boxes(Vec::new()),
            Outcome::Box(d) => Step::Boxes(vec![(node.outputs[0], d)]),
            Outcome::Conv(c) => Step::Conv(c),
            Outcome::Join => Step::Join,
        })
    }

    /// A Conv over the outputs its input's box reaches.
    fn conv(&self, graph: &Graph, node: &Node, env: &Env, kernels: &Kernels) -> Result<Outcome> {
        let Some((x_id, w, _)) = conv_inputs(graph, node) else {
            return Ok(Outcome::Join);
        };
        let (Some(delta), Some(x)) = (self.deltas.get(&x_id), env.get(graph, x_id)) else {
            return Ok(Outcome::Join);
        };
        if cpu_bytes(x).is_none() {
            return Ok(Outcome::Join);
        }
        let fail = |e: String| graph.op_error(node, e);
        let shape = ConvShape::of(node, x, w).map_err(|e| fail(e.0))?;
        // Only depthwise and 1x1 convolutions compute each output as the same
        // sum in a box as in the full tensor; dense kernels block their sums
        // by the tensor's size, so a box would differ in the last bits.
        let depthwise = shape.group == x.size()[1] && w.size()[1] == 1;
        let pointwise = shape.group == 1
            && shape
                .extent
                .iter()
                .chain(&shape.strides)
                .chain(&shape.dilations)
                .all(|&k| k == 1)
            && shape.pads.iter().all(|&p| p == (0, 0));
        if !(depthwise || pointwise) {
            return Ok(Outcome::Join);
        }
        let lens = &x.size()[2..];
        let Some((mut out_span, mut reach, out_lens)) = conv_reach(&shape, lens, &delta.span)
        else {
            return Ok(Outcome::Golden);
        };
        if pointwise {
            // Float32 outputs are chains whose bits do not depend on the
            // positions computed beside them; libtorch's may.
            if x.kind() != tch::Kind::Float {
                widen(&mut out_span, &out_lens);
            }
            reach.clone_from(&out_span);
        }
        if out_span.iter().any(|&(a, _)| a < 0) || share(&out_span, &out_lens) > MAX_SHARE {
            return Ok(Outcome::Join);
        }
        let key = box_key(x, w, &shape, &reach, &out_span);
        let unverified = match kernels.known(&key) {
            Some(false) => return Ok(Outcome::Join),
            Some(true) => None,
            None => Some(key),
        };
        Ok(Outcome::Conv(ConvBox {
            out_span,
            reach,
            unverified,
        }))
    }

    /// An element-wise node over the union of its inputs' boxes.
    fn elementwise(&self, graph: &Graph, node: &Node, env: &Env, golden: usize) -> Result<Outcome> {
        let mut shape: Option<Vec<i64>> = None;
        let mut span: Option<Span> = None;
        for id in node.inputs.iter().flatten() {
            let Some(t) = env.get(graph, *id) else {
                return Ok(Outcome::Join);
            };
            if graph.is_computed(*id) && shape.get_or_insert_with(|| t.size()) != &t.size() {
                return Ok(Outcome::Join);
            }
            if let Some(d) = self.deltas.get(id) {
                span = Some(match span {
                    None => d.span.clone(),
                    Some(s) => s
                        .iter()
                        .zip(&d.span)
                        .map(|(a, b)| (a.0.min(b.0), a.1.max(b.1)))
                        .collect(),
                });
            }
        }
        let (Some(shape), Some(span)) = (shape, span) else {
            return Ok(Outcome::Join);
        };
        let spatial = shape.len().saturating_sub(2);
        // Constants must be the same at every position (broadcast over the
        // spatial axes), so that the box sees the values the full tensor does.
        let per_position = node.inputs.iter().flatten().any(|&id| {
            graph.constant(id).is_some_and(|c| {
                let size = c.size();
                size.len() > shape.len() || size.iter().rev().take(spatial).any(|&d| d != 1)
            })
        });
        if per_position || share(&span, &shape[2..]) > MAX_SHARE {
            return Ok(Outcome::Join);
        }
        let fail = |e: String| graph.op_error(node, e);
        let mut windows = Vec::new();
        for id in &node.inputs {
            windows.push(match id {
                Some(id) if graph.is_computed(*id) => {
                    let t = env.get(graph, *id).expect("checked above");
                    let delta = self.deltas.get(id);
                    match window(t, golden, &span, delta).map_err(|e| fail(e.to_string()))? {
                        Some(w) => Some(w),
                        None => return Ok(Outcome::Join),
                    }
                }
                Some(id) => Some(env.get(graph, *id).expect("checked above").shallow_clone()),
                None => None,
            });
        }
        let ins: Vec<Option<&Tensor>> = windows.iter().map(Option::as_ref).collect();
        let y = graph.apply(node, &ins)?.remove(0);
        let mut want = vec![1, shape[1]];
        want.extend(span.iter().map(|(a, b)| b - a));
        if y.size() != want {
            return Ok(Outcome::Join);
        }
        let values = guard(graph, node, y)?;
        Ok(Outcome::Box(Delta::new(span, values)))
    }
}

/// A node's effect on one row's output.
enum Outcome {
    Golden,
    Box(Delta),
    Conv(ConvBox),
    Join,
}

/// Positions a 1x1 box of other kinds than float32 (computed by libtorch as
/// a matrix product) covers at least. A product over fewer positions runs
/// other code, which sums in another order: a matrix-vector product for one
/// position, MKL's small-matrix kernel below 12. Float32 boxes are chains
/// (`graph/ops/chain.rs`) that sum alike over any number of positions, so
/// they are not widened. The kernel check still guards whatever other CPUs
/// do.
const MIN_POINTWISE: i64 = 16;

/// Widens a 1x1 box to [`MIN_POINTWISE`] positions, or as many as the value
/// (of spatial lengths `lens`) has: from the last axis back, toward the end
/// first. The added positions' outputs are golden.
fn widen(span: &mut Span, lens: &[i64]) {
    for axis in (0..span.len()).rev() {
        let (a, b) = span[axis];
        let others = positions(span) / (b - a);
        let want = ((MIN_POINTWISE + others - 1) / others).min(lens[axis]);
        let end = (a + want).max(b).min(lens[axis]);
        span[axis] = ((end - want).min(a), end);
        if positions(span) >= MIN_POINTWISE {
            return;
        }
    }
}

/// The outputs of a Conv of geometry `shape`, on an input of spatial
/// lengths `lens`, that read some position of `span`, the input positions
/// those outputs read (reaching into the padding at the edges), and the
/// output's lengths; `None` when no output reads `span` (a stride skips it).
fn conv_reach(shape: &ConvShape, lens: &[i64], span: &Span) -> Option<(Span, Span, Vec<i64>)> {
    let (mut out_span, mut reach, mut out_lens) = (Span::new(), Span::new(), Vec::new());
    for (i, &(begin, end)) in span.iter().enumerate() {
        let (s, e, (pad, pad_end)) = (shape.strides[i], shape.extent[i], shape.pads[i]);
        let out_len = (lens[i] + pad + pad_end - e) / s + 1;
        // Outputs o whose window [o*s - pad, o*s - pad + e) meets the span.
        let first = begin + pad - e + 1;
        let lo = first.div_euclid(s) + i64::from(first.rem_euclid(s) != 0);
        let (lo, hi) = (lo.max(0), ((end - 1 + pad).div_euclid(s) + 1).min(out_len));
        if lo >= hi {
            return None;
        }
        out_span.push((lo, hi));
        reach.push((lo * s - pad, (hi - 1) * s - pad + e));
        out_lens.push(out_len);
    }
    Some((out_span, reach, out_lens))
}

/// A Conv box of one row: its output over `out_span`, computed from its
/// input over `reach` (zero beyond the input's edges).
pub(super) struct ConvBox {
    out_span: Span,
    reach: Span,
    /// The box's kernel key ([`box_key`]) while it is not yet known to be
    /// exact: the call then computes the golden box too, to check.
    unverified: Option<Vec<i64>>,
}

impl ConvBox {
    /// The window's lengths: boxes of equal lengths are computed together.
    pub fn lens(&self) -> Vec<i64> {
        self.reach.iter().map(|(a, b)| b - a).collect()
    }
}

/// A Conv box kernel on trial: the golden row's box, computed in the same
/// call as the rows' boxes, to compare with the golden row's output once the
/// node has run ([`verify_kernel`]).
pub(super) struct KernelCheck {
    key: Vec<i64>,
    pub sample: usize,
    out_span: Span,
    golden_box: Tensor,
    /// The node's input (the batch value), to recompute the rows over the
    /// whole value should the check fail.
    x: Tensor,
    /// The regional rows whose boxes used the kernel, each with its own
    /// golden row in `x` (rows of several samples may share a kernel).
    jobs: Vec<(usize, usize)>,
}

/// The Conv boxes of regional rows at `node` (each with its golden row; all
/// of the same lengths), in one call on their windows stacked along the
/// batch axis: a small box costs little more than the call, which the rows
/// then share. The golden box of each kernel not yet known to be exact
/// joins the call, and comes back as a check.
pub(super) fn conv_boxes(
    graph: &Graph,
    node: &Node,
    env: &Env,
    rows: &[(&RegionalRow, usize, ConvBox)],
) -> Result<(Vec<Delta>, Vec<KernelCheck>)> {
    let fail = |e: String| graph.op_error(node, e);
    let (x_id, w, b) = conv_inputs(graph, node).expect("checked by step");
    let x = env.get(graph, x_id).expect("checked by step");
    // The rows' windows, then one golden window per kernel on trial.
    let mut windows: Vec<(usize, &Span, Option<&Delta>)> = Vec::new();
    let mut golden_windows = Vec::new();
    let mut checks: Vec<KernelCheck> = Vec::new();
    for (row, golden, conv) in rows {
        windows.push((*golden, &conv.reach, row.deltas.get(&x_id)));
        let Some(key) = &conv.unverified else {
            continue;
        };
        match checks.iter_mut().find(|c| &c.key == key) {
            Some(check) => check.jobs.push((row.job, *golden)),
            None => {
                golden_windows.push((*golden, &conv.reach, None));
                checks.push(KernelCheck {
                    key: key.clone(),
                    sample: row.sample,
                    out_span: conv.out_span.clone(),
                    golden_box: Tensor::new(),
                    x: x.shallow_clone(),
                    jobs: vec![(row.job, *golden)],
                });
            }
        }
    }
    windows.extend(golden_windows);
    let mut dims = vec![windows.len() as i64, x.size()[1]];
    dims.extend(rows[0].2.lens());
    let stacked = Tensor::f_zeros(dims.as_slice(), (x.kind(), x.device()));
    let mut stacked = stacked.map_err(|e| fail(e.to_string()))?;
    let dst = cpu_bytes_mut(&mut stacked).expect("a new CPU tensor is contiguous");
    let each = (dst.len() / windows.len()).max(1);
    let reaches: Vec<&Span> = windows.iter().map(|w| w.1).collect();
    for ((golden, reach, delta), dst) in windows.into_iter().zip(dst.chunks_mut(each)) {
        fill_window(x, golden, reach, delta, dst);
    }
    let shape = ConvShape::of(node, x, w).map_err(|e| fail(e.0))?;
    let y = match depthwise(&shape, x, w, b, &stacked, &reaches) {
        Some(y) => y,
        None => convolve_as(&unpadded(shape), &stacked, w, b).map_err(|e| fail(e.0))?,
    };
    let y = guard(graph, node, y)?;
    let box_of = |i: usize| y.f_narrow(0, i as i64, 1).map_err(|e| fail(e.to_string()));
    let mut out = Vec::with_capacity(rows.len());
    for (i, (_, _, conv)) in rows.iter().enumerate() {
        out.push(Delta::new(conv.out_span.clone(), box_of(i)?));
    }
    for (i, check) in checks.iter_mut().enumerate() {
        check.golden_box = box_of(rows.len() + i)?;
    }
    Ok((out, checks))
}

/// A depthwise 2-D convolution of `shape` over the windows `stacked`, read
/// from `x` over `reaches`, by the Rust kernel, if it suits.
fn depthwise(
    shape: &ConvShape,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    stacked: &Tensor,
    reaches: &[&Span],
) -> Option<Tensor> {
    let lens = x.size();
    let pair = |v: &[i64]| -> Option<[usize; 2]> {
        match v {
            &[a, b] => Some([usize::try_from(a).ok()?, usize::try_from(b).ok()?]),
            _ => None,
        }
    };
    if lens.len() != 4 || shape.group != lens[1] {
        return None;
    }
    // Per axis, the window positions within the input (not padding).
    let inside = |reach: &Span| -> Option<Inside> {
        let ranges: Vec<(usize, usize)> = reach
            .iter()
            .zip(&lens[2..])
            .map(|(&(a, b), &len)| ((-a).max(0) as usize, (b.min(len) - a) as usize))
            .collect();
        ranges.try_into().ok()
    };
    let inside: Vec<Inside> = reaches.iter().map(|r| inside(r)).collect::<Option<_>>()?;
    Depthwise {
        weight: w,
        bias: b,
        strides: pair(&shape.strides)?,
        dilations: pair(&shape.dilations)?,
    }
    .convolve(stacked, &inside)
}

/// After `node` (a Conv) ran: whether the box kernel of `check` reproduced
/// the golden row's output (its row `golden` in `env`) bit for bit, which
/// holds for every later box of the batch with its key ([`Kernels`]). If
/// not, the rows that used it are recomputed over the whole value, as the
/// batch rows are, and join the batch at the next node.
pub(super) fn verify_kernel(
    graph: &Graph,
    node: &Node,
    env: &Env,
    golden: usize,
    check: KernelCheck,
    regional: &mut [RegionalRow],
    kernels: &mut Kernels,
) -> Result<()> {
    let fail = |e: String| graph.op_error(node, e);
    let out = env.get(graph, node.outputs[0]);
    let exact = match out {
        Some(t) => {
            let row = t.f_narrow(0, golden as i64, 1);
            let row = row.and_then(|r| narrow_to(&r, &check.out_span));
            row.map_err(|e| fail(e.to_string()))?
                .equal(&check.golden_box)
        }
        None => false,
    };
    if DISTRUST.load(Ordering::Relaxed) {
        return recompute_whole(graph, node, &check, regional);
    }
    kernels.0.insert(check.key.clone(), exact);
    match exact {
        true => Ok(()),
        false => recompute_whole(graph, node, &check, regional),
    }
}

/// The rows of a failed check, each recomputed over the whole value from
/// its own golden row.
fn recompute_whole(
    graph: &Graph,
    node: &Node,
    check: &KernelCheck,
    regional: &mut [RegionalRow],
) -> Result<()> {
    let fail = |e: String| graph.op_error(node, e);
    let (x_id, w, b) = conv_inputs(graph, node).expect("checked by step");
    let x = &check.x;
    let shape = ConvShape::of(node, x, w).map_err(|e| fail(e.0))?;
    let full = whole(x);
    for &(job, x_golden) in &check.jobs {
        let Some(row) = regional.iter_mut().find(|r| r.job == job) else {
            continue;
        };
        let input = window(x, x_golden, &full, row.deltas.get(&x_id));
        let input = input.map_err(|e| fail(e.to_string()))?;
        let input = input.expect("a box's input lies contiguous on the CPU");
        let y = convolve_as(&shape, &input, w, b).map_err(|e| fail(e.0))?;
        let y = guard(graph, node, y)?;
        row.set_pending(vec![(node.outputs[0], Delta::new(whole(&y), y))]);
    }
    Ok(())
}

/// A Conv's input, and its weight and bias when they are constants.
fn conv_inputs<'g>(
    graph: &'g Graph,
    node: &Node,
) -> Option<(ValueId, &'g Tensor, Option<&'g Tensor>)> {
    let ins = &node.inputs;
    let x = (*ins.first()?)?;
    let w = graph.constant((*ins.get(1)?)?)?;
    let b = match ins.get(2).copied().flatten() {
        None => None,
        Some(id) => Some(graph.constant(id)?),
    };
    Some((x, w, b))
}

/// `shape` without padding: a box's window has its zero padding written in.
fn unpadded(shape: ConvShape) -> ConvShape {
    ConvShape {
        pads: vec![(0, 0); shape.pads.len()],
        ..shape
    }
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

/// The view of `t` (`[N, C, spatial...]`) over `span`.
fn narrow_to(t: &Tensor, span: &Span) -> std::result::Result<Tensor, tch::TchError> {
    let mut view = t.shallow_clone();
    for (i, &(begin, end)) in span.iter().enumerate() {
        view = view.f_narrow(2 + i as i64, begin, end - begin)?;
    }
    Ok(view)
}

/// Which box kernels, known by their [`box_key`], compute bit for bit what
/// the full tensor's kernel does, as found on golden data the first time in
/// a batch ([`verify_kernel`]). libtorch picks a kernel, and with it the
/// order of its sums, by the shapes alone (a 1x1 product over a few
/// positions runs a plain loop, a large one blocked matrix code), so one
/// check holds for every row with those shapes. Each batch checks for
/// itself: a failed check recomputes its rows otherwise than a known
/// failure does, so knowledge carried over from other batches would make a
/// batch's last bits depend on which batches ran before it (on another
/// thread, or before a campaign was resumed).
#[derive(Default)]
pub(super) struct Kernels(HashMap<Vec<i64>, bool>);

impl Kernels {
    /// Whether the box kernel of `key` is exact, if known yet.
    fn known(&self, key: &[i64]) -> Option<bool> {
        match DISTRUST.load(Ordering::Relaxed) {
            true => None,
            false => self.0.get(key).copied(),
        }
    }
}

/// Set by [`distrust_box_kernels`].
static DISTRUST: AtomicBool = AtomicBool::new(false);

/// For tests: while `on`, every box kernel check fails, so each row that
/// used a box kernel takes the fallback of a failed check (recomputed over
/// the whole value), as it does on CPUs whose box kernels round otherwise.
/// Outcomes stay exact; runs are slower.
#[doc(hidden)]
pub fn distrust_box_kernels(on: bool) {
    DISTRUST.store(on, Ordering::Relaxed);
}

/// The shapes that decide a Conv box's kernel: input, weight, attributes,
/// the box's input and output lengths, and which of its sides reach into the
/// padding (border outputs may run other code than inner ones).
fn box_key(x: &Tensor, w: &Tensor, shape: &ConvShape, reach: &Span, out: &Span) -> Vec<i64> {
    let lens = &x.size()[2..];
    let mut key = x.size()[1..].to_vec();
    key.extend(w.size());
    key.extend(shape.strides.iter().chain(&shape.dilations));
    key.extend(shape.pads.iter().flat_map(|&(a, b)| [a, b]));
    key.push(shape.group);
    for ((&(lo, hi), &(a, b)), &len) in reach.iter().zip(out).zip(lens) {
        key.extend([hi - lo, b - a, i64::from(lo < 0), i64::from(hi > len)]);
    }
    key
}

/// The share of a value's positions (`lens` per axis) that `span` covers.
fn share(span: &Span, lens: &[i64]) -> f64 {
    positions(span) as f64 / lens.iter().product::<i64>() as f64
}

/// Row `row` of the batch value `t` as a block covering the whole value,
/// if `t` lies contiguous on the CPU.
fn row_block(t: &Tensor, row: usize) -> Option<(&[u8], Span)> {
    let bytes = cpu_bytes(t)?;
    let size = t.size();
    let len = bytes.len() / usize::try_from(size[0]).ok().filter(|&n| n > 0)?;
    Some((&bytes[row * len..(row + 1) * len], whole(t)))
}

/// The span of every position of `t` (`[N, C, spatial...]`).
fn whole(t: &Tensor) -> Span {
    t.size()[2..].iter().map(|&l| (0, l)).collect()
}

/// Row `row` of the batch value `t` over `span`, zero where `span` reaches
/// past the value's edges, with `delta` written in: a new `[1, C, lens...]`
/// tensor. `None` if `t` does not lie contiguous on the CPU.
fn window(
    t: &Tensor,
    row: usize,
    span: &Span,
    delta: Option<&Delta>,
) -> std::result::Result<Option<Tensor>, tch::TchError> {
    if let Some(d) = delta.filter(|d| d.span == *span) {
        return Ok(Some(d.values.shallow_clone()));
    }
    let Some((_, full)) = row_block(t, row) else {
        return Ok(None);
    };
    let mut shape = vec![1, t.size()[1]];
    shape.extend(span.iter().map(|(a, b)| b - a));
    let options = (t.kind(), t.device());
    let mut out = match intersect(span, &full).as_ref() == Some(span) {
        true => Tensor::f_empty(shape.as_slice(), options)?,
        false => Tensor::f_zeros(shape.as_slice(), options)?,
    };
    let dst = cpu_bytes_mut(&mut out).expect("a new CPU tensor is contiguous");
    fill_window(t, row, span, delta, dst);
    Ok(Some(out))
}

/// Writes row `row` of the batch value `t` (contiguous on the CPU) over
/// `span`, with `delta` written in, into `dst`, a block covering `span`
/// (left as it is where `span` reaches past the value's edges).
fn fill_window(t: &Tensor, row: usize, span: &Span, delta: Option<&Delta>, dst: &mut [u8]) {
    let (golden, full) = row_block(t, row).expect("checked by the caller");
    let (channels, elt) = (t.size()[1], t.kind().elt_size_in_bytes());
    if let Some(inside) = intersect(span, &full) {
        let src = Block {
            bytes: golden,
            span: &full,
        };
        copy_region(channels, elt, dst, span, &src, &inside);
    }
    if let Some(d) = delta {
        if let (Some(region), Some(bytes)) = (intersect(span, &d.span), cpu_bytes(&d.values)) {
            let src = Block {
                bytes,
                span: &d.span,
            };
            copy_region(channels, elt, dst, span, &src, &region);
        }
    }
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
        if !super::super::depthwise::available() {
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
