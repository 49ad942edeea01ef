//! The rows of one batch: which faulty rows still run, which golden row each
//! compares with, and byte-level comparisons of rows.

use std::collections::BTreeSet;

use tch::{Device, Kind, Tensor};

use super::{Injection, SiteValues};
use crate::graph::{is_float, Env, ValueId};

/// The batch layout: one golden row per distinct sample first (they run to
/// the end: dropped rows report their golden output), then the faulty rows
/// still running.
pub(super) struct Rows {
    golden_samples: usize,
    /// Index into the batch's injections of each running faulty row.
    pub faulty: Vec<usize>,
    /// Golden row of each running faulty row.
    pub golden_of: Vec<usize>,
}

impl Rows {
    pub fn new(samples: &[usize], batch: &[&Injection]) -> Self {
        let golden_of = batch
            .iter()
            .map(|i| samples.binary_search(&i.sample).expect("sample is listed"))
            .collect();
        Rows {
            golden_samples: samples.len(),
            faulty: (0..batch.len()).collect(),
            golden_of,
        }
    }

    pub fn golden_count(&self) -> usize {
        self.golden_samples
    }

    /// Rows in the batch: golden and running faulty.
    pub fn len(&self) -> i64 {
        (self.golden_samples + self.faulty.len()) as i64
    }

    /// Batch row of the faulty row of injection `job`, if still running.
    pub fn row_of(&self, job: usize) -> Option<i64> {
        let r = self.faulty.iter().position(|&j| j == job)?;
        Some((self.golden_samples + r) as i64)
    }

    /// Rows of the per-sample golden frontier that make up the batch.
    pub fn layout(&self) -> Tensor {
        let idx: Vec<i64> = (0..self.golden_count())
            .chain(self.golden_of.iter().copied())
            .map(|i| i as i64)
            .collect();
        Tensor::from_slice(&idx)
    }

    /// Removes the faulty rows marked in `leave` from every live per-sample value.
    pub fn drop_rows(
        &mut self,
        leave: &[bool],
        env: &mut Env,
    ) -> std::result::Result<(), tch::TchError> {
        let g = self.golden_count();
        let n = self.len();
        let keep: Vec<usize> = (0..leave.len()).filter(|&r| !leave[r]).collect();
        let index: Vec<i64> = (0..g)
            .chain(keep.iter().map(|&r| g + r))
            .map(|i| i as i64)
            .collect();
        let index = Tensor::from_slice(&index);
        for (_, t) in env.live_mut() {
            if t.dim() > 0 && t.size()[0] == n {
                *t = t.f_index_select(0, &index.to_device(t.device()))?;
            }
        }
        self.golden_of = keep.iter().map(|&r| self.golden_of[r]).collect();
        self.faulty = keep.iter().map(|&r| self.faulty[r]).collect();
        Ok(())
    }
}

/// What is known of one injection while its batch runs.
pub(super) struct RowState {
    pub sites: Vec<Option<SiteValues>>,
    pub golden_row: usize,
    pub output: Option<Tensor>,
    pub masked_after: Option<usize>,
    pub first_nonfinite: Option<usize>,
    pub detected: bool,
    /// Live values whose row differs from the golden row: the row is masked
    /// when this is empty and no fault is still to come.
    pub differs: BTreeSet<ValueId>,
}

impl RowState {
    pub fn new(inj: &Injection, golden_row: usize) -> Self {
        RowState {
            sites: vec![None; inj.faults.len()],
            golden_row,
            output: None,
            masked_after: None,
            first_nonfinite: None,
            detected: false,
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
        if self.t.device() != Device::Cpu {
            return None;
        }
        let base = self.t.data_ptr() as *const u8;
        // SAFETY: `t` is a contiguous CPU tensor owned by `self`; `row` is one
        // of its rows, so the range lies inside its storage and is not
        // written while `self` borrows it.
        Some(unsafe { std::slice::from_raw_parts(base.add(row * self.row_bytes), self.row_bytes) })
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
        // Branch-free over the whole row, so the loop vectorizes.
        fn any_max_exponent<const N: usize>(
            bytes: &[u8],
            bits: impl Fn([u8; N]) -> u64,
            mask: u64,
        ) -> bool {
            bytes.chunks_exact(N).fold(false, |any, c| {
                any | (bits(c.try_into().expect("chunk of N bytes")) & mask == mask)
            })
        }
        let Some(bytes) = self.bytes(row) else {
            return is_float(self.t.kind())
                && !bool::try_from(self.t.get(row as i64).isfinite().all()).unwrap_or(true);
        };
        match self.t.kind() {
            Kind::Float => any_max_exponent(bytes, |b| u32::from_ne_bytes(b).into(), 0x7f80_0000),
            Kind::Double => any_max_exponent(bytes, u64::from_ne_bytes, 0x7ff0_0000_0000_0000),
            Kind::Half => any_max_exponent(bytes, |b| u16::from_ne_bytes(b).into(), 0x7c00),
            Kind::BFloat16 => any_max_exponent(bytes, |b| u16::from_ne_bytes(b).into(), 0x7f80),
            _ => false,
        }
    }
}
