//! How each value relates to the batch's rows, which cuts, caches and the
//! engine's row bookkeeping rely on.
//!
//! - **Shape values** are computed from tensor shapes alone: the outputs of
//!   Shape and Size and what derives from them and constants only. A
//!   dynamic-batch export builds its reshape targets this way (`Shape` ->
//!   `Gather` -> `Concat` -> `Reshape`), so they hold the batch's row count:
//!   no cache can store them per sample, and they go stale when the engine
//!   drops or joins rows. They never cross a cut: the executor computes them
//!   for the env's row count when a node reads them.
//! - **Misaligned values** are computed values whose first axis is not the
//!   rows: a batch merged with attention heads (`[N*H, S, D]`) or moved
//!   behind the sequence (`[S, N, E]`). A row cannot join, leave or be
//!   compared there, so the engine resumes injections at the last cut
//!   before them where every value is aligned, and finishes rows only once
//!   they are gone. A moved batch axis, or a merged one whose major part
//!   two copies of a sample tell, still says where a row's elements are,
//!   so such values take neuron faults.
//!
//! Both are learned by running the model on one sample alone and twice over
//! ([`crate::graph::Graph::learn_layout`]): a dimension that follows the row
//! count between the two runs is a batch dimension. Until then every value
//! counts as aligned.

use std::sync::{Arc, OnceLock};

use tch::{Kind, Tensor};

use super::{Node, Op, Source, Value, ValueId};

/// Shape values (from the graph) and what two runs taught of the others.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Per value: computed from shapes alone.
    derived: Vec<bool>,
    /// A node's rows depend on each other ([`Op::couples_rows`]).
    coupled: bool,
    learned: Arc<OnceLock<Learned>>,
}

/// Where a misaligned value holds its rows: `group` positions of `axis`
/// per row. With one (the batch moved behind the sequence) they are the
/// row's index; with more (the batch merged with the heads, `[N*H, ...]`,
/// or with the sequence, `[S*N, ...]`) they lie together when the batch
/// is the major part of the axis and `rows` apart when it is the minor
/// one: `batch_major`, `None` where the runs could not tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RowAxis {
    /// The axis holding the rows.
    pub axis: usize,
    /// Its positions per row.
    pub group: i64,
    /// Whether a row's positions lie together.
    pub batch_major: Option<bool>,
}

/// What runs of one or two row counts showed.
#[derive(Debug)]
struct Learned {
    /// Each run's row count and every value's shape in it.
    runs: Vec<(i64, Vec<Option<Vec<i64>>>)>,
    /// Per value: computed, and its first axis is not the rows.
    misaligned: Vec<bool>,
    /// Whether any value is.
    any_misaligned: bool,
    /// Per misaligned value: where its rows lie, if one axis holds them.
    row_axes: Vec<Option<RowAxis>>,
    /// Per cut: the last cut at or before it whose frontier is aligned.
    resume: Vec<usize>,
}

impl Layout {
    /// The shape values of a graph's `nodes` (in topological order). A
    /// graph output is never one: it is the model's result, kept as is.
    pub fn of(nodes: &[Node], values: &[Value], outputs: &[ValueId]) -> Layout {
        let mut derived = vec![false; values.len()];
        for node in nodes {
            let inputs: Vec<ValueId> = node.inputs.iter().flatten().copied().collect();
            let constant = |id: &ValueId| matches!(values[*id].source, Source::Constant(_));
            let from_shapes = matches!(node.op, Op::Shape | Op::Size)
                || (inputs.iter().any(|id| derived[*id])
                    && inputs.iter().all(|id| derived[*id] || constant(id)));
            if from_shapes {
                for &id in node.outputs.iter().filter(|id| !outputs.contains(id)) {
                    derived[id] = true;
                }
            }
        }
        Layout {
            derived,
            coupled: nodes.iter().any(|n| n.op.couples_rows()),
            learned: Arc::default(),
        }
    }

    /// Whether some node computes its rows together: each sample then runs
    /// alone, from the model input (a batch would change its results).
    pub fn couples_rows(&self) -> bool {
        self.coupled
    }

    /// Whether `id` is computed from shapes alone.
    pub fn is_derived(&self, id: ValueId) -> bool {
        self.derived.get(id).copied().unwrap_or(false)
    }

    /// Whether `node` is a Shape or Size node whose input is per-sample.
    pub fn reads_a_sample(&self, node: &Node) -> bool {
        matches!(node.op, Op::Shape | Op::Size)
            && node
                .inputs
                .first()
                .copied()
                .flatten()
                .is_some_and(|x| !self.is_derived(x))
    }

    /// Whether runs have been learned from.
    pub fn is_learned(&self) -> bool {
        self.read(|l| l.is_some())
    }

    /// Learns from `runs` (row count, every value's shape), one or two of
    /// them, and the `orders` of merged batch axes ([`merged_order`]);
    /// `frontiers` lists each cut's frontier. Only the first call counts.
    pub(super) fn learn(
        &self,
        runs: Vec<(i64, Vec<Option<Vec<i64>>>)>,
        orders: Vec<Option<bool>>,
        values: &[Value],
        frontiers: &[Vec<ValueId>],
    ) {
        let misaligned: Vec<bool> = (0..values.len())
            .map(|id| {
                let computed = matches!(values[id].source, Source::Node { .. });
                computed && !self.is_derived(id) && !aligned(&runs, id)
            })
            .collect();
        let row_axes = (0..values.len())
            .map(|id| {
                let r = misaligned[id].then(|| row_axis(&runs, id)).flatten()?;
                let batch_major = if r.group == 1 { Some(true) } else { orders[id] };
                Some(RowAxis { batch_major, ..r })
            })
            .collect();
        let mut resume: Vec<usize> = Vec::with_capacity(frontiers.len());
        for (cut, ids) in frontiers.iter().enumerate() {
            let ok = cut == 0 || ids.iter().all(|&id| !misaligned[id]);
            resume.push(if ok { cut } else { resume[cut - 1] });
        }
        let _ = self.learned.set(Learned {
            runs,
            any_misaligned: misaligned.contains(&true),
            misaligned,
            row_axes,
            resume,
        });
    }

    /// Whether `id` is a computed value whose first axis is not the rows.
    pub fn is_misaligned(&self, id: ValueId) -> bool {
        self.read(|l| l.is_some_and(|l| l.misaligned[id]))
    }

    /// Where misaligned value `id` holds its rows, if one axis does.
    pub fn row_axis(&self, id: ValueId) -> Option<RowAxis> {
        self.read(|l| l.and_then(|l| l.row_axes[id]))
    }

    /// Whether the elements of one row of `id` can be told apart
    /// ([`Layout::row`]).
    pub fn has_rows(&self, id: ValueId) -> bool {
        !self.is_misaligned(id)
            || self
                .row_axis(id)
                .is_some_and(|r| r.group == 1 || r.batch_major.is_some())
    }

    /// The elements of row `row` of value `id` in `t` (contiguous), a view.
    pub fn row(&self, id: ValueId, t: &Tensor, row: i64) -> Result<Tensor, tch::TchError> {
        let Some(RowAxis {
            axis,
            group,
            batch_major,
        }) = self.row_axis(id)
        else {
            return t.f_select(0, row);
        };
        let a = axis as i64;
        match (group, batch_major) {
            (1, _) | (_, None) => t.f_select(a, row),
            (_, Some(true)) => t.f_narrow(a, row * group, group),
            (_, Some(false)) => t
                .f_view(split(&t.size(), axis, group).as_slice())?
                .f_select(a + 1, row),
        }
    }

    /// The shape of one row of value `id`, from its shape `size` in a run
    /// of `rows` rows; `None` if the value holds no rows of its own: a
    /// shape value, or a misaligned value without a batch axis (the batch
    /// merged with another axis, where shapes do not tell which of the two
    /// is the major one).
    pub fn sample_shape(&self, id: ValueId, size: &[i64], rows: i64) -> Option<Vec<i64>> {
        if self.is_derived(id) {
            return None;
        }
        let mut shape = size.to_vec();
        let axis = match (self.is_misaligned(id), self.row_axis(id)) {
            (false, _) => 0,
            (true, Some(r)) if r.group == 1 => r.axis,
            // A merged axis keeps its length per row (`H` of `N*H`).
            (true, Some(r)) => return (rows == 1 && r.batch_major.is_some()).then_some(shape),
            (true, None) => return None,
        };
        (shape.get(axis) == Some(&rows)).then(|| {
            shape.remove(axis);
            shape
        })
    }

    /// The cut where a run that would resume at `cut` resumes: the last cut
    /// at or before it where every frontier value is aligned.
    pub fn resume_cut(&self, cut: usize) -> usize {
        if self.coupled {
            return 0;
        }
        self.read(|l| l.and_then(|l| l.resume.get(cut).copied()).unwrap_or(cut))
    }

    /// Whether any value is misaligned.
    pub fn any_misaligned(&self) -> bool {
        self.read(|l| l.is_some_and(|l| l.any_misaligned))
    }

    /// A stand-in for the input of `node` (a Shape or Size node) in a run of
    /// `rows` rows, holding no memory: each dimension follows the row count
    /// as it did between the runs learned from (`N`, `4N` and `S` alike),
    /// or is the first run's where the rows are unknown (nothing that holds
    /// them crosses the cut). `None` before any run.
    pub fn stand_in(&self, node: &Node, rows: Option<i64>) -> Option<Tensor> {
        let x = node.inputs.first().copied().flatten()?;
        let shape = self.read(|l| {
            let l = l?;
            match (l.runs.as_slice(), rows) {
                ([(_, first), ..], None) | ([(_, first)], _) => first[x].clone(),
                ([(ra, a), (rb, b), ..], Some(rows)) => {
                    let (a, b) = (a[x].as_ref()?, b[x].as_ref()?);
                    let follow =
                        |(&da, &db): (&i64, &i64)| da + (db - da) * (rows - ra) / (rb - ra);
                    Some(a.iter().zip(b).map(follow).collect())
                }
                ([], _) => None,
            }
        })?;
        let scalar: [i64; 0] = [];
        Some(Tensor::zeros(scalar, (Kind::Float, tch::Device::Cpu)).expand(&shape, false))
    }

    fn read<T>(&self, f: impl FnOnce(Option<&Learned>) -> T) -> T {
        f(self.learned.get())
    }
}

/// Whether value `id` has the rows as its first axis in every run, its
/// other dimensions unchanged between them.
fn aligned(runs: &[(i64, Vec<Option<Vec<i64>>>)], id: ValueId) -> bool {
    let Some(first) = runs.first().and_then(|(_, s)| s[id].as_ref()) else {
        return true; // not computed in the runs: nothing learned
    };
    runs.iter().all(|(rows, shapes)| match &shapes[id] {
        Some(s) => s.first() == Some(rows) && s[1..] == first[1..],
        None => true,
    })
}

/// The one axis of value `id` whose length follows the row count between
/// the two `runs`, every other axis the same in both.
fn row_axis(runs: &[(i64, Vec<Option<Vec<i64>>>)], id: ValueId) -> Option<RowAxis> {
    let [(ra, a), (rb, b)] = runs else {
        return None;
    };
    follows(a[id].as_ref()?, *ra, b[id].as_ref()?, *rb)
}

/// The one axis along which shape `a` (of a run of `ra` rows) becomes `b`
/// (of `rb` rows), by as many positions per row, every other axis the
/// same; its order is left unknown.
fn follows(a: &[i64], ra: i64, b: &[i64], rb: i64) -> Option<RowAxis> {
    if a.len() != b.len() {
        return None;
    }
    let mut changed = (0..a.len()).filter(|&i| a[i] != b[i]);
    let axis = changed.next()?;
    let group = a[axis] / ra;
    let follows = changed.next().is_none() && a[axis] == group * ra && b[axis] == group * rb;
    follows.then_some(RowAxis {
        axis,
        group,
        batch_major: None,
    })
}

/// Whether value `t`, in a run on two copies of a sample of `rows` rows
/// where its shape was `before`, holds its rows batch-major along an axis
/// that merged the batch with another: the copy's positions equal the
/// sample's together (major) or interleaved (minor). `None` for a value
/// whose batch did not merge, or where both or neither hold.
pub(super) fn merged_order(before: &[i64], rows: i64, t: &Tensor) -> Option<bool> {
    let r = follows(before, rows, &t.size(), 2 * rows).filter(|r| r.group > 1)?;
    let (axis, n) = (r.axis as i64, rows * r.group);
    let same = |t: &Tensor, axis: i64, n: i64| -> Option<bool> {
        Some(
            t.f_narrow(axis, 0, n)
                .ok()?
                .equal(&t.f_narrow(axis, n, n).ok()?),
        )
    };
    let major = same(t, axis, n)?;
    let halves = t
        .f_reshape(split(&t.size(), r.axis, r.group).as_slice())
        .ok()?;
    let minor = same(&halves, axis + 1, rows)?;
    (major != minor).then_some(major)
}

/// `size` with its `axis` split in two: `group` positions of the rows.
fn split(size: &[i64], axis: usize, group: i64) -> Vec<i64> {
    let mut split = size.to_vec();
    split.splice(axis..=axis, [group, size[axis] / group]);
    split
}
