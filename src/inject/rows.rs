//! The rows of one batch: golden rows (one per sample, fault-free) and the
//! faulty rows still running, which join the batch at their start cut as
//! copies of their sample's golden row; and byte-level comparisons of rows.

use std::collections::BTreeSet;

use tch::{Kind, Tensor};

use super::{Injection, SiteValues};
// The byte views of tensors, for the engine's modules that import them here.
use crate::graph::{is_float, Env, ValueId};
pub(super) use crate::kernels::views::{cpu_bytes, cpu_bytes_mut};

/// What one batch row holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Row {
    /// The fault-free row of a sample: it runs to the end (dropped rows
    /// report its output).
    Golden { sample: usize },
    /// The faulty row of the batch's injection `job`.
    Faulty { job: usize },
}

/// The batch layout: rows in the order they joined.
#[derive(Default)]
pub(super) struct Rows {
    rows: Vec<Row>,
}

impl Rows {
    pub fn len(&self) -> i64 {
        self.rows.len() as i64
    }

    /// (batch row, job) of every running faulty row.
    pub fn faulty(&self) -> Vec<(usize, usize)> {
        self.rows
            .iter()
            .enumerate()
            .filter_map(|(r, row)| match row {
                Row::Faulty { job } => Some((r, *job)),
                Row::Golden { .. } => None,
            })
            .collect()
    }

    pub fn golden_row(&self, sample: usize) -> Option<usize> {
        self.rows.iter().position(|&r| r == Row::Golden { sample })
    }

    /// Batch row of the faulty row of `job`, if running.
    pub fn row_of(&self, job: usize) -> Option<usize> {
        self.rows.iter().position(|&r| r == Row::Faulty { job })
    }

    /// The batch row holding `job`'s values: its own once it joined, its
    /// golden row before.
    pub fn source_row(&self, job: usize, sample: usize) -> Option<usize> {
        self.row_of(job).or_else(|| self.golden_row(sample))
    }

    /// Appends golden rows for `samples`, whose values of `ids` (the
    /// frontier in `env`) are `cached` (one tensor per id, one row per
    /// sample), then a faulty row per `(job, sample)` in `jobs`, a copy of
    /// its sample's golden row.
    pub fn join(
        &mut self,
        env: &mut Env,
        ids: &[ValueId],
        samples: &[usize],
        cached: &[Tensor],
        jobs: &[(usize, usize)],
    ) -> std::result::Result<(), tch::TchError> {
        let golden: Vec<Row> = samples
            .iter()
            .map(|&sample| Row::Golden { sample })
            .collect();
        if !golden.is_empty() {
            for (&id, rows) in ids.iter().zip(cached) {
                let joined = match env.get_mut(id) {
                    Some(t) => Tensor::f_cat(&[&*t, rows], 0)?,
                    None => rows.shallow_clone(),
                };
                env.set(id, joined);
            }
            self.rows.extend(golden);
        }
        if !jobs.is_empty() {
            let copies: Vec<i64> = jobs
                .iter()
                .map(|&(_, sample)| {
                    self.golden_row(sample).expect("golden row joined first") as i64
                })
                .collect();
            // One gather of the rows there and the copies, into a new tensor.
            let rows: Vec<i64> = (0..self.len()).chain(copies).collect();
            let rows = Tensor::from_slice(&rows);
            for &id in ids {
                let t = env
                    .get_mut(id)
                    .expect("frontier values are live at their cut");
                *t = t.f_index_select(0, &rows.to_device(t.device()))?;
            }
            self.rows
                .extend(jobs.iter().map(|&(job, _)| Row::Faulty { job }));
        }
        env.set_rows(self.len());
        Ok(())
    }

    /// Removes the faulty rows of the jobs in `leave` from every live
    /// per-sample value.
    pub fn drop_rows(
        &mut self,
        leave: &BTreeSet<usize>,
        env: &mut Env,
    ) -> std::result::Result<(), tch::TchError> {
        let n = self.len();
        let stays = |row: &Row| !matches!(row, Row::Faulty { job } if leave.contains(job));
        let index: Vec<i64> = (0..n).filter(|&r| stays(&self.rows[r as usize])).collect();
        let index = Tensor::from_slice(&index);
        for (_, t) in env.live_mut() {
            if t.dim() > 0 && t.size()[0] == n {
                *t = t.f_index_select(0, &index.to_device(t.device()))?;
            }
        }
        self.rows.retain(stays);
        env.set_rows(self.len());
        Ok(())
    }
}

/// What is known of one injection while its batch runs.
pub(super) struct RowState {
    pub sites: Vec<Option<SiteValues>>,
    pub output: Option<Tensor>,
    pub diff: crate::classify::OutputDiff,
    pub masked_after: Option<usize>,
    pub first_nonfinite: Option<usize>,
    pub detected: bool,
    /// The cut where the row joined the batch as a whole row.
    pub whole_from: Option<usize>,
    /// Live values whose row differs from the golden row: the row is masked
    /// when this is empty and no fault is still to come.
    pub differs: BTreeSet<ValueId>,
}

impl RowState {
    pub fn new(inj: &Injection) -> Self {
        RowState {
            sites: vec![None; inj.faults.len()],
            output: None,
            diff: Default::default(),
            masked_after: None,
            first_nonfinite: None,
            detected: false,
            whole_from: None,
            differs: BTreeSet::new(),
        }
    }
}

/// Row-wise views of a batch tensor. On the CPU rows are compared as bytes
/// in place (the engine compares every node's output, so this is hot);
/// elsewhere with tensor ops.
pub(super) struct RowView {
    t: Tensor,
    row_bytes: usize,
}

impl RowView {
    pub fn new(t: &Tensor) -> Self {
        let t = t.contiguous();
        let row_bytes =
            t.size().iter().skip(1).product::<i64>() as usize * t.kind().elt_size_in_bytes();
        RowView { t, row_bytes }
    }

    fn bytes(&self, row: usize) -> Option<&[u8]> {
        cpu_bytes(&self.t).map(|b| &b[row * self.row_bytes..(row + 1) * self.row_bytes])
    }

    /// Rows `a` and `b` hold the same bits.
    pub fn equal(&self, a: usize, b: usize) -> bool {
        match (self.bytes(a), self.bytes(b)) {
            (Some(x), Some(y)) => x == y,
            _ => self.t.get(a as i64).equal(&self.t.get(b as i64)),
        }
    }

    /// Row `row` of a floating-point tensor holds a NaN or an infinity.
    pub fn nonfinite(&self, row: usize) -> bool {
        match self.bytes(row) {
            Some(bytes) => nonfinite_bytes(self.t.kind(), bytes),
            None => {
                is_float(self.t.kind())
                    && !bool::try_from(self.t.get(row as i64).isfinite().all()).unwrap_or(true)
            }
        }
    }
}

/// Whether `bytes`, values of `kind`, hold a NaN or an infinity (none for
/// kinds other than floating point).
pub(super) fn nonfinite_bytes(kind: Kind, bytes: &[u8]) -> bool {
    // Branch-free over the whole slice, so the loop vectorizes.
    fn any_max_exponent<const N: usize>(
        bytes: &[u8],
        bits: impl Fn([u8; N]) -> u64,
        mask: u64,
    ) -> bool {
        bytes.chunks_exact(N).fold(false, |any, c| {
            any | (bits(c.try_into().expect("chunk of N bytes")) & mask == mask)
        })
    }
    match kind {
        Kind::Float => any_max_exponent(bytes, |b| u32::from_ne_bytes(b).into(), 0x7f80_0000),
        Kind::Double => any_max_exponent(bytes, u64::from_ne_bytes, 0x7ff0_0000_0000_0000),
        Kind::Half => any_max_exponent(bytes, |b| u16::from_ne_bytes(b).into(), 0x7c00),
        Kind::BFloat16 => any_max_exponent(bytes, |b| u16::from_ne_bytes(b).into(), 0x7f80),
        _ => false,
    }
}
