//! The engine: runs lists of injections in batches, on its workers, and
//! gives their results back in the order given. How a batch runs is in
//! `batch`; how many rows it holds in `sizing`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use super::batch::Context;
use super::bounds::Bounds;
use super::{on_workers, sizing, FaultSite, Frontiers, Injection, InjectionResult, Options};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::phases::{timed, Phase};

/// Runs injections on one model, from one source of frontiers.
pub struct Engine<'a> {
    /// The model the injections run on.
    pub graph: &'a Graph,
    /// Where the cached or recomputed frontiers come from.
    pub frontiers: &'a dyn Frontiers,
    /// How the engine runs.
    pub options: Options,
    /// Worked out once: every batch of every call reads them.
    bounds: Bounds,
    /// One row's bytes at each node from the cut they were measured from
    /// (see `sizing`), kept for later calls that start no earlier.
    row_bytes: Mutex<Option<(usize, Arc<Vec<u64>>)>>,
}

impl<'a> Engine<'a> {
    /// An engine for `graph` reading frontiers from `frontiers`.
    pub fn new(graph: &'a Graph, frontiers: &'a dyn Frontiers, options: Options) -> Self {
        Engine {
            graph,
            frontiers,
            options,
            bounds: Bounds::of(graph),
            row_bytes: Mutex::default(),
        }
    }

    /// Runs every injection; results come back in the order given.
    ///
    /// Batches hold the injections of one sample (or a few), ordered by
    /// start cut: the sample's golden row starts at the earliest cut any of
    /// them reads, and each faulty row forks from it at its own start cut,
    /// so one golden row serves the whole batch and no row runs a node
    /// before its fault. A batch holds at most `batch_size` of them, fewer
    /// where its whole rows would outgrow the cache (see `sizing`).
    pub fn run(&self, injections: &[Injection]) -> Result<Vec<InjectionResult>> {
        Ok(self.run_lists(&[injections])?.remove(0))
    }

    /// [`Engine::run`] for each list, each list's batches made from it
    /// alone, and the batches of all lists on the workers at once (so none
    /// waits for the others at the end of each list).
    pub fn run_lists(&self, lists: &[&[Injection]]) -> Result<Vec<Vec<InjectionResult>>> {
        for inj in lists.iter().copied().flatten() {
            self.check(inj)?;
        }
        let orders: Vec<Vec<&Injection>> = lists
            .iter()
            .map(|list| {
                let mut order: Vec<&Injection> = list.iter().collect();
                order.sort_by_key(|i| (i.sample, self.options.mode.join_cut(i, self.graph), i.id));
                order
            })
            .collect();
        let row_bytes = self.row_bytes(&orders);
        let batches: Vec<(usize, &[&Injection])> = orders
            .iter()
            .enumerate()
            .flat_map(|(list, order)| {
                self.batches(order, row_bytes.as_ref().map(|b| b.as_slice()))
                    .into_iter()
                    .map(move |batch| (list, batch))
            })
            .collect();
        let (frontiers, options, bounds) = (self.frontiers, self.options, &self.bounds);
        let done = on_workers(
            self.graph,
            options.workers,
            &batches,
            |graph, (_, batch)| {
                let context = Context {
                    graph,
                    frontiers,
                    options,
                    bounds,
                };
                timed(Phase::Injections, || context.run_batch_or_each(batch))
            },
        )?;
        let mut results: Vec<Vec<InjectionResult>> = lists.iter().map(|_| Vec::new()).collect();
        for ((list, _), batch) in batches.iter().zip(done) {
            results[*list].extend(batch);
        }
        for (list, results) in lists.iter().zip(&mut results) {
            let at: BTreeMap<usize, usize> = list
                .iter()
                .enumerate()
                .map(|(i, inj)| (inj.id, i))
                .collect();
            results.sort_by_key(|r| at[&r.id]);
        }
        Ok(results)
    }

    /// One row's bytes at each node (see `sizing`) from the earliest cut
    /// of `orders` on, measured once per engine unless a later call starts
    /// earlier. `None` from the input, where every batch holds `batch_size`
    /// rows as a plain batched forward pass does, and where the row fails:
    /// it fails in its batches too, which record the error per injection.
    fn row_bytes(&self, orders: &[Vec<&Injection>]) -> Option<Arc<Vec<u64>>> {
        let mode = self.options.mode;
        let first = (orders.iter().flatten()).min_by_key(|i| mode.read_cut(i, self.graph));
        let inj = first.filter(|_| !mode.from_input())?;
        let cut = mode.read_cut(inj, self.graph);
        let mut known = self
            .row_bytes
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match &*known {
            Some((from, bytes)) if *from <= cut => Some(Arc::clone(bytes)),
            _ => {
                let measured = sizing::row_bytes(self.graph, self.frontiers, cut, inj.sample);
                let bytes = Arc::new(measured.ok()?);
                *known = Some((cut, Arc::clone(&bytes)));
                Some(bytes)
            }
        }
    }

    /// `order` (sorted by sample, then join cut) cut into batches.
    fn batches<'i>(
        &self,
        order: &'i [&'i Injection],
        row_bytes: Option<&[u64]>,
    ) -> Vec<&'i [&'i Injection]> {
        let size = self.options.batch_size.max(1);
        let Some(row_bytes) = row_bytes else {
            return order.chunks(size).collect();
        };
        let mode = self.options.mode;
        sizing::split(order, size, row_bytes, |inj, new_sample| {
            let golden = new_sample.then(|| mode.read_cut(inj, self.graph));
            let own =
                (!mode.runs_regionally(inj, self.graph)).then(|| mode.join_cut(inj, self.graph));
            golden.into_iter().chain(own).collect()
        })
    }

    fn check(&self, inj: &Injection) -> Result<()> {
        let graph = self.graph;
        if inj.faults.is_empty() {
            return Err(Error::Usage(format!("injection {} has no fault", inj.id)));
        }
        for f in &inj.faults {
            let node = graph
                .nodes
                .get(f.node)
                .ok_or_else(|| Error::Usage(format!("injection {}: no node {}", inj.id, f.node)))?;
            if graph.values[node.outputs[0]].last_use <= node.index {
                return Err(graph.op_error(
                    node,
                    "its output is never read, so a fault there has no effect",
                ));
            }
            if let FaultSite::Weight { input, .. } = f.site {
                let weight = node.inputs.get(input).copied().flatten();
                if weight.is_none_or(|id| graph.is_computed(id)) {
                    return Err(graph.op_error(
                        node,
                        format!("injection {}: input {input} is not a weight", inj.id),
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Op;
    use crate::inject::tests::fixture;
    use crate::inject::{Corrupt, InputFrontiers, Mode, NodeFault};

    /// One row's bytes cover each node's output from the first cut on, and
    /// the engine counts the rows that run whole: without dropping every
    /// faulty row closes batches at the budget, with dropping single neuron
    /// faults run as boxes and do not, and from the input none applies.
    #[test]
    fn batches_close_where_whole_rows_fill_the_budget() {
        let (graph, input) = fixture("mobilenet_v2_ts17");
        let frontiers = InputFrontiers::new(vec![input.narrow(0, 0, 1)]);
        let conv = graph.nodes.iter().position(|n| n.op == Op::Conv).unwrap();
        let identity: Corrupt = Arc::new(|x| x);
        let injections: Vec<Injection> = (0..20)
            .map(|id| Injection {
                id,
                sample: 0,
                faults: vec![NodeFault::neuron(conv, id as i64, identity.clone())],
            })
            .collect();
        let order: Vec<&Injection> = injections.iter().collect();
        let engine = |mode| {
            let options = Options {
                mode,
                ..Options::default()
            };
            Engine::new(&graph, &frontiers, options)
        };

        let measured = engine(Mode::FromCut)
            .row_bytes(std::slice::from_ref(&order))
            .unwrap();
        let mut env = graph.start(&[input.narrow(0, 0, 1)]).unwrap();
        graph
            .run_observed(0..graph.nodes.len(), &mut env, |node, outputs| {
                let out = (outputs[0].numel() * 4) as u64;
                let at = node.index;
                match at > conv {
                    true => assert!(measured[at] >= out, "node {at}: {}", measured[at]),
                    false => assert_eq!(measured[at], 0, "node {at} runs before the cut"),
                }
            })
            .unwrap();
        assert!(engine(Mode::FromInput)
            .row_bytes(std::slice::from_ref(&order))
            .is_none());

        let full = vec![sizing::BATCH_BYTES / 4; graph.nodes.len()];
        let lens = |mode| -> Vec<usize> {
            let engine = engine(mode);
            let batches = engine.batches(&order, Some(&full));
            batches.iter().map(|b| b.len()).collect()
        };
        let min = sizing::MIN_ROWS;
        assert_eq!(lens(Mode::FromCut), [min, min, 20 - 2 * min]);
        assert_eq!(lens(Mode::Regional), [20]);
    }
}
