//! The trust check: a Conv box kernel is trusted only once it has
//! reproduced the golden row's values bit for bit on the shapes it runs
//! (its [`box_key`]); the rows of a failed check are recomputed over the
//! whole value.

use super::*;

/// After `node` (a Conv) ran: whether the box kernel of `check` reproduced
/// the golden row's output (its row `golden` in `env`) bit for bit, which
/// holds for every later box of the batch with its key ([`Kernels`]). If
/// not, the rows that used it are recomputed over the whole value, as the
/// batch rows are, and join the batch at the next node.
pub(in crate::inject) fn verify_kernel(
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
    if kernels.trust == BoxKernels::Distrusted {
        return recompute_whole(graph, node, &check, regional);
    }
    kernels.known.insert(check.key.clone(), exact);
    match exact {
        true => Ok(()),
        false => recompute_whole(graph, node, &check, regional),
    }
}

/// The rows of a failed check, each recomputed over the whole value from
/// its own golden row.
pub(super) fn recompute_whole(
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

/// Which box kernels, known by their [`box_key`], compute bit for bit what
/// the full tensor's kernel does, as found on golden data the first time in
/// a batch ([`verify_kernel`]). libtorch picks a kernel, and with it the
/// order of its sums, by the shapes alone (a 1x1 product over a few
/// positions runs a plain loop, a large one blocked matrix code), so one
/// check holds for every row with those shapes. Each batch checks for
/// itself: a failed check recomputes its rows otherwise than a known
/// failure does, so knowledge carried over from other batches would make a
/// batch's last bits depend on which batches ran before it (on another
/// thread, or before a campaign was resumed). Under
/// [`BoxKernels::Distrusted`] no kernel is ever known and every check fails.
pub(in crate::inject) struct Kernels {
    known: HashMap<Vec<i64>, bool>,
    trust: BoxKernels,
}

impl Kernels {
    pub fn new(trust: BoxKernels) -> Self {
        Kernels {
            known: HashMap::new(),
            trust,
        }
    }

    /// Whether the box kernel of `key` is exact, if known yet.
    pub(super) fn known(&self, key: &[i64]) -> Option<bool> {
        match self.trust {
            BoxKernels::Distrusted => None,
            BoxKernels::Checked => self.known.get(key).copied(),
        }
    }
}

/// The shapes that decide a Conv box's kernel: input, weight, attributes,
/// the box's input and output lengths, and which of its sides reach into the
/// padding (border outputs may run other code than inner ones).
pub(super) fn box_key(
    x: &Tensor,
    w: &Tensor,
    shape: &ConvShape,
    reach: &Span,
    out: &Span,
) -> Vec<i64> {
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
