//! How the engine runs: the batch size, the threads, and which of its
//! shortcuts it takes ([`Mode`]), each allowed only where it means
//! something (regional rows only where masked rows are dropped, neither
//! from the model input).

use super::Injection;
use crate::graph::Graph;

/// How the engine runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// The most faulty rows per batch (see `sizing` for fewer).
    pub batch_size: usize,
    /// Where rows start and which work that golden already did is skipped.
    pub mode: Mode,
    /// Batches run at once, each on its own thread (see `workers`).
    pub workers: usize,
    /// Whether Conv box kernels may be trusted (tests set it).
    pub box_kernels: BoxKernels,
}

/// Where rows start, and which rows the engine finishes early. Each mode
/// gives the outcomes of the ones before it (tests compare them); the later
/// ones skip more work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every row from the model input, whole to the end, and a
    /// weight-faulted node run whole with the faulty weight instead of
    /// recomputing single filters: the plain batched forward pass (the
    /// baseline of `faultsweep bench`).
    FromInput,
    /// Every row from its start cut (the cached frontier), to the end.
    FromCut,
    /// As [`Mode::FromCut`], and a row identical to its golden row after a
    /// node is finished as masked and leaves the batch.
    DropMasked,
    /// As [`Mode::DropMasked`], and a row whose single neuron fault still
    /// changes only a small box of positions runs over that box alone (see
    /// `region`).
    Regional,
}

/// Whether a Conv box kernel is trusted once it has reproduced the golden
/// row's values (see `region`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BoxKernels {
    /// Trusted for the rest of the batch once its check passed.
    Checked,
    /// Every check fails, so each row that used a box kernel takes the
    /// fallback of a failed check (recomputed over the whole value), as it
    /// does on CPUs whose box kernels round otherwise. For tests: outcomes
    /// stay exact, runs are slower.
    Distrusted,
}

impl Options {
    /// Lists (a campaign's chunks) to give [`Engine::run_lists`] at once:
    /// enough batches that no worker waits long for the others at the end.
    ///
    /// [`Engine::run_lists`]: super::Engine::run_lists
    pub fn lists_at_once(&self) -> usize {
        2 * self.workers.max(1)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            batch_size: 32,
            mode: Mode::Regional,
            workers: 1,
            box_kernels: BoxKernels::Checked,
        }
    }
}

impl Mode {
    /// Whether rows start from the model input.
    pub fn from_input(self) -> bool {
        self == Mode::FromInput
    }

    /// Whether rows identical to golden are finished as masked.
    pub fn drops_masked(self) -> bool {
        matches!(self, Mode::DropMasked | Mode::Regional)
    }

    /// Whether the injection's row runs as a box beside its golden row
    /// (see `region`) rather than as a whole batch row, at first.
    pub(super) fn runs_regionally(self, inj: &Injection, graph: &Graph) -> bool {
        // A box joins its batch at any node, which needs aligned values.
        self == Mode::Regional && super::region::eligible(inj) && !graph.layout.any_misaligned()
    }

    /// The cut where the injection's faulty row joins its batch.
    pub(super) fn join_cut(self, inj: &Injection, graph: &Graph) -> usize {
        match self {
            Mode::FromInput => 0,
            _ => inj.start_cut(graph),
        }
    }

    /// The first cut whose values the injection needs: its join cut, or the
    /// cut before a weight-faulted first node (that node's input).
    pub(super) fn read_cut(self, inj: &Injection, graph: &Graph) -> usize {
        match self {
            Mode::FromInput => 0,
            _ => inj.read_cut(graph),
        }
    }
}
