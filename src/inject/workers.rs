//! Batches on several threads at once.
//!
//! libtorch's intra-op threads split each operation, and the engine's are
//! small (a few rows of a 14x14 map): two of them made MobileNetV2's
//! injections only 1.2x to 1.4x faster than one. Whole batches on separate
//! threads, each with one libtorch thread, share nothing but the model's
//! constants and the cache, and scale with the cores.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::error::Result;
use crate::graph::Graph;
use crate::kernels::threads::{with_threads, Threads};

/// `work` on every item, on `workers` threads (this one among them), each
/// with its own handle to `graph` and one libtorch thread; the results in
/// the items' order. The first error in that order is returned, and the
/// workers stop taking items once one has failed.
pub fn on_workers<I: Sync, T: Send>(
    graph: &Graph,
    workers: usize,
    items: &[I],
    work: impl Fn(&Graph, &I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    let workers = workers.clamp(1, items.len().max(1));
    if workers == 1 {
        return items.iter().map(|item| work(graph, item)).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let take = |graph: &Graph| {
        let mut done = Vec::new();
        while !failed.load(Ordering::Relaxed) {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = items.get(i) else { break };
            let result = work(graph, item);
            failed.fetch_or(result.is_err(), Ordering::Relaxed);
            done.push((i, result));
        }
        done
    };
    let one_thread = Threads::set(1);
    let mut done = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..workers)
            .map(|_| {
                let graph = graph.clone();
                let take = &take;
                scope.spawn(move || with_threads(1, || take(&graph)))
            })
            .collect();
        let mut done = take(graph);
        for helper in helpers {
            match helper.join() {
                Ok(d) => done.extend(d),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        done
    });
    drop(one_thread);
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn graph() -> Graph {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        crate::load::load(dir.join("models/fashion_cnn.onnx")).expect("demo model")
    }

    #[test]
    fn results_come_back_in_the_items_order_from_every_worker() {
        let graph = graph();
        let (items, nodes): (Vec<usize>, _) = ((0..40).collect(), graph.nodes.len());
        let threads: Vec<(usize, std::thread::ThreadId)> =
            on_workers(&graph, 3, &items, |g, &i| {
                assert_eq!(g.nodes.len(), nodes);
                std::thread::sleep(std::time::Duration::from_millis(2));
                Ok((i * 10, std::thread::current().id()))
            })
            .expect("no item fails");
        let values: Vec<usize> = threads.iter().map(|(v, _)| *v).collect();
        assert_eq!(values, (0..40).map(|i| i * 10).collect::<Vec<_>>());
        let mut ids: Vec<_> = threads.iter().map(|(_, t)| *t).collect();
        ids.sort_unstable_by_key(|t| format!("{t:?}"));
        ids.dedup();
        assert!(ids.len() > 1, "the items ran on one thread");
    }

    #[test]
    fn the_first_failing_item_is_the_error() {
        let graph = graph();
        let items: Vec<usize> = (0..20).collect();
        let got = on_workers(&graph, 2, &items, |_, &i| match i {
            7 | 12 => Err(Error::Usage(format!("item {i}"))),
            _ => Ok(i),
        });
        match got {
            Err(Error::Usage(m)) => assert_eq!(m, "item 7"),
            other => panic!("{other:?}"),
        }
    }
}
