//! How the engine cuts its sorted injections into batches.
//!
//! A batch holds at most `batch_size` faulty rows. The rows that run whole
//! (golden rows, and faulty rows that do not run as regional boxes) also
//! share a working-set budget, so each node's tensors stay in the cache
//! the next node reads them from: once a batch holds [`MIN_ROWS`] rows, it
//! takes no row that would lift the rows running at some node, times one
//! row's bytes there, past [`BATCH_BYTES`]. Without dropping, 32 rows of
//! one sample pile up at MobileNetV2's 56x56 and 28x28 layers, and ran 20%
//! slower per row than batches cut this way. The minimum shares each golden
//! row, which runs the whole suffix from the batch's first cut, among
//! enough faulty rows. Regional rows and rows dropped early hardly add to a
//! batch's tensors, so with dropping the batches stay at `batch_size`.

use super::{Frontiers, Injection};
use crate::error::Result;
use crate::graph::Graph;

/// The working set a batch's whole rows may reach at a node: half the
/// 32 MB last-level cache that two workers share on the machine this was
/// tuned on.
pub(super) const BATCH_BYTES: u64 = 16 << 20;

/// Rows a batch takes before the budget applies.
pub(super) const MIN_ROWS: usize = 8;

/// One row's bytes at each node from `cut` on: the values live before the
/// node plus those live after it (its inputs and outputs, and whatever
/// passes by). Measured by running `sample`'s row from its frontier at
/// `cut`; nodes before `cut` count as empty.
pub(super) fn row_bytes(
    graph: &Graph,
    frontiers: &dyn Frontiers,
    cut: usize,
    sample: usize,
) -> Result<Vec<u64>> {
    let values = frontiers.rows(graph, cut, &[sample])?;
    let mut env = crate::split::seed(graph, cut, &values)?;
    drop(values);
    let mut live = vec![0; graph.nodes.len() + 1];
    live[cut] = env.live_bytes();
    graph.run_then(cut..graph.nodes.len(), &mut env, |node, env| {
        live[node.index + 1] = env.live_bytes();
        Ok(())
    })?;
    let mut bytes: Vec<u64> = live.windows(2).map(|w| w[0] + w[1]).collect();
    bytes[..cut].fill(0);
    Ok(bytes)
}

/// Splits `order` (sorted by sample, then cut) into batches of at most
/// `size` rows, each closed early (past [`MIN_ROWS`]) where the next
/// injection's whole rows would not fit its budget. `whole_rows(inj,
/// new_sample)` gives the cuts where `inj` adds rows that run whole: its
/// golden row's if its sample is new to the batch, and its own unless it
/// runs as a regional box.
pub(super) fn split<'i>(
    order: &'i [&'i Injection],
    size: usize,
    row_bytes: &[u64],
    whole_rows: impl Fn(&Injection, bool) -> Vec<usize>,
) -> Vec<&'i [&'i Injection]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut load = Load::new(row_bytes);
    for (i, inj) in order.iter().enumerate() {
        let new_sample = i == start || order[i - 1].sample != inj.sample;
        let mut cuts = whole_rows(inj, new_sample);
        let rows = i - start;
        if rows >= size || (rows >= MIN_ROWS && !load.fits(&cuts)) {
            batches.push(&order[start..i]);
            start = i;
            load = Load::new(row_bytes);
            cuts = whole_rows(inj, true);
        }
        load.add(&cuts);
    }
    if start < order.len() {
        batches.push(&order[start..]);
    }
    batches
}

/// Whole rows running at each node of the batch being filled.
struct Load<'a> {
    row_bytes: &'a [u64],
    rows: Vec<u64>,
}

impl<'a> Load<'a> {
    fn new(row_bytes: &'a [u64]) -> Self {
        Load {
            row_bytes,
            rows: vec![0; row_bytes.len()],
        }
    }

    /// Whether rows starting at `cuts` keep every node within the budget.
    fn fits(&self, cuts: &[usize]) -> bool {
        let Some(&first) = cuts.iter().min() else {
            return true;
        };
        (first..self.rows.len()).all(|n| {
            let added = cuts.iter().filter(|&&c| c <= n).count() as u64;
            (self.rows[n] + added) * self.row_bytes[n] <= BATCH_BYTES
        })
    }

    /// Adds rows starting at `cuts`.
    fn add(&mut self, cuts: &[usize]) {
        for &cut in cuts {
            for rows in self.rows.iter_mut().skip(cut) {
                *rows += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::inject::NodeFault;

    /// `n` single-fault injections of `sample` joining at `cut`.
    fn at(cut: usize, sample: usize, n: usize) -> Vec<Injection> {
        (0..n)
            .map(|id| Injection {
                id,
                sample,
                faults: vec![NodeFault::neuron(cut - 1, 0, Arc::new(|x| x))],
            })
            .collect()
    }

    /// Batch lengths of `injections` cut with rows of `row_bytes`, every
    /// row whole (`regional`: only golden rows are).
    fn lens(
        injections: &[Injection],
        size: usize,
        row_bytes: &[u64],
        regional: bool,
    ) -> Vec<usize> {
        let order: Vec<&Injection> = injections.iter().collect();
        let whole = |inj: &Injection, new_sample: bool| {
            let cut = inj.faults[0].node + 1;
            let golden = new_sample.then_some(cut);
            golden
                .into_iter()
                .chain((!regional).then_some(cut))
                .collect()
        };
        split(&order, size, row_bytes, whole)
            .iter()
            .map(|b| b.len())
            .collect()
    }

    #[test]
    fn small_rows_fill_batches_to_the_batch_size() {
        let rows = at(1, 0, 20);
        assert_eq!(lens(&rows, 6, &[1 << 10; 8], false), [6, 6, 6, 2]);
    }

    #[test]
    fn the_budget_closes_batches_once_they_hold_the_minimum() {
        let rows = at(1, 0, 20);
        // Four rows fit: the minimum of eight holds anyway.
        assert_eq!(lens(&rows, 32, &[BATCH_BYTES / 4; 8], false), [8, 8, 4]);
        // Twelve fit: the golden row and eleven faulty ones.
        assert_eq!(lens(&rows, 32, &[BATCH_BYTES / 12; 8], false), [11, 9]);
        // Regional rows do not count: one golden row never fills it.
        assert_eq!(lens(&rows, 32, &[BATCH_BYTES / 4; 8], true), [20]);
    }

    #[test]
    fn rows_count_from_the_cut_where_they_join() {
        let mut rows = at(1, 0, 10);
        rows.extend(at(6, 0, 20));
        let mut row_bytes = vec![BATCH_BYTES / 4; 6];
        row_bytes.extend([BATCH_BYTES / 100; 4]);
        // The second batch's golden row and two early rows fill nodes 1 to
        // 5 to three; the late rows only meet the roomy nodes after.
        assert_eq!(lens(&rows, 32, &row_bytes, false), [8, 22]);
    }

    #[test]
    fn each_new_sample_brings_a_golden_row() {
        let mut rows = at(1, 0, 9);
        rows.extend(at(1, 1, 9));
        // Ten rows fit: nine of sample 0 with its golden row, then sample
        // 1's golden row would be the eleventh.
        assert_eq!(lens(&rows, 32, &[BATCH_BYTES / 10; 4], false), [9, 9]);
    }
}
