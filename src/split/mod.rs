//! Step 2, split: cut points and their frontiers.
//!
//! Cut `k` lies between node `k - 1` and node `k` of the topological order
//! (cut 0 is before the first node, cut `n` after the last). Its frontier is
//! every non-constant value produced before the cut, or a graph input, that is
//! read at or after the cut (graph outputs count as read at the end). Running
//! the prefix to cut `k` and resuming from its frontier is, by construction,
//! the same computation as the full forward pass. Shape values (computed
//! from shapes alone, see [`crate::graph::Layout`]) never cross a cut:
//! the resumed run computes them for its own rows.

use tch::Tensor;

use crate::error::{Error, Result};
use crate::graph::{Env, Graph, Source, ValueId};

/// The values that cross cut `cut`, in ascending value id.
pub fn frontier(graph: &Graph, cut: usize) -> Result<Vec<ValueId>> {
    check_cut(graph, cut)?;
    Ok(graph
        .values
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            let before = match v.source {
                Source::Input(_) => true,
                Source::Node { node, .. } => node < cut,
                Source::Constant(_) => false,
            };
            before && v.last_use >= cut
        })
        .filter(|(id, _)| !graph.layout.is_derived(*id))
        .map(|(id, _)| id)
        .collect())
}

fn check_cut(graph: &Graph, cut: usize) -> Result<()> {
    if cut > graph.nodes.len() {
        return Err(Error::Cut {
            cut,
            msg: format!(
                "the model has {} nodes, so cuts run from 0 to {}",
                graph.nodes.len(),
                graph.nodes.len()
            ),
        });
    }
    Ok(())
}

/// Runs the model from its inputs up to `cut` and returns the frontier there,
/// aligned with [`frontier`].
pub fn prefix(graph: &Graph, inputs: &[Tensor], cut: usize) -> Result<Vec<Tensor>> {
    let ids = frontier(graph, cut)?;
    let mut env = graph.start(inputs)?;
    graph.run(0..cut, &mut env)?;
    Ok(ids
        .iter()
        .map(|&id| env.take(id).expect("frontier values are live at their cut"))
        .collect())
}

/// Resumes from the frontier of cut `from` (aligned with [`frontier`]) and
/// runs to the end; returns the graph outputs.
pub fn resume(graph: &Graph, from: usize, values: &[Tensor]) -> Result<Vec<Tensor>> {
    let mut env = seed(graph, from, values)?;
    graph.run(from..graph.nodes.len(), &mut env)?;
    graph.outputs_of(&env)
}

/// Runs from the frontier of cut `from` to the frontier of cut `to`.
pub fn between(graph: &Graph, from: usize, to: usize, values: &[Tensor]) -> Result<Vec<Tensor>> {
    if to < from {
        return Err(Error::Cut {
            cut: to,
            msg: format!("cannot run backwards from cut {from}"),
        });
    }
    let ids = frontier(graph, to)?;
    let mut env = seed(graph, from, values)?;
    graph.run(from..to, &mut env)?;
    Ok(ids
        .iter()
        .map(|&id| env.take(id).expect("frontier values are live at their cut"))
        .collect())
}

/// An env holding `values` as the frontier of `cut`.
pub(crate) fn seed(graph: &Graph, cut: usize, values: &[Tensor]) -> Result<Env> {
    let ids = frontier(graph, cut)?;
    if ids.len() != values.len() {
        return Err(Error::Cut {
            cut,
            msg: format!(
                "the frontier has {} values, {} were given",
                ids.len(),
                values.len()
            ),
        });
    }
    let mut env = Env::new(graph);
    for (&id, t) in ids.iter().zip(values) {
        env.set(id, t.shallow_clone());
    }
    if let Some(rows) = values.iter().find_map(|t| t.size().first().copied()) {
        env.set_rows(rows);
    }
    Ok(env)
}
