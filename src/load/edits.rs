//! Edits of a model before it is built (the scenario's `model.outputs` and
//! `model.free_batch`), for detectors exported with a decoding tail or a
//! batch fixed in the file. In: the decoded ONNX graph. Out: the same graph
//! with only the nodes the chosen outputs need, and Reshape targets that
//! copy the batch from their input instead of fixing it.
//!
//! Freeing the batch changes a Reshape's constant target `[B, ...]`, where
//! B is the batch the first input declares and the data is computed (not a
//! constant), into `[0, ...]`: ONNX's "copy this dimension from the input".
//! On a batch of B the model computes exactly what it did; on other batches
//! it runs where the file's fixed shape would refuse. A Reshape that merges
//! the batch with other axes (a decoding tail's `[B*H*W, 4]`) is not
//! freed: drop that tail with `model.outputs`. `--verify` runs the edited
//! model at the file's batch, one sample at a time.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::proto::{GraphProto, TensorProto};
use crate::error::{Error, Result};

/// What to change in a model before it is built.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Edits {
    /// Keep only these outputs (by name) and the nodes they need.
    pub outputs: Option<Vec<String>>,
    /// Let Reshape targets follow the batch (see the module doc).
    pub free_batch: bool,
}

impl Edits {
    /// Whether the edits change nothing.
    pub fn is_empty(&self) -> bool {
        self.outputs.is_none() && !self.free_batch
    }
}

fn invalid(path: &Path, key: &'static str, msg: String) -> Error {
    Error::ModelEdit {
        path: path.to_path_buf(),
        key,
        msg,
    }
}

/// Applies `edits` to `graph`.
pub(super) fn apply(graph: &mut GraphProto, edits: &Edits, path: &Path) -> Result<()> {
    if let Some(keep) = &edits.outputs {
        prune(graph, keep, path)?;
    }
    if edits.free_batch {
        free_batch(graph, path)?;
    }
    Ok(())
}

/// Keeps the outputs `keep` and the nodes they need.
fn prune(graph: &mut GraphProto, keep: &[String], path: &Path) -> Result<()> {
    let names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    if let Some(missing) = keep.iter().find(|k| !names.contains(&k.as_str())) {
        return Err(invalid(
            path,
            "model.outputs",
            format!(
                "'{missing}' is not an output of the model ({})",
                names.join(", ")
            ),
        ));
    }
    let producer: HashMap<&str, usize> = (graph.node.iter().enumerate())
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut needed = HashSet::new();
    let mut stack: Vec<&str> = keep.iter().map(String::as_str).collect();
    while let Some(v) = stack.pop() {
        if let Some(&i) = producer.get(v) {
            if needed.insert(i) {
                stack.extend(graph.node[i].input.iter().map(String::as_str));
            }
        }
    }
    let mut i = 0;
    graph.node.retain(|_| {
        i += 1;
        needed.contains(&(i - 1))
    });
    graph.output.retain(|o| keep.contains(&o.name));
    Ok(())
}

/// The batch the first graph input declares (the first input that is not
/// an initializer).
fn declared_batch(graph: &GraphProto) -> Option<i64> {
    let inits: HashSet<&str> = graph.initializer.iter().map(|i| i.name.as_str()).collect();
    let input = graph
        .input
        .iter()
        .find(|i| !inits.contains(i.name.as_str()))?;
    super::tensor::dims_of(input)?.first().copied().flatten()
}

/// Rewrites fixed-batch Reshape targets to copy the batch (see the module
/// doc); each rewritten target is a new initializer, so a target shared
/// with a Reshape of constants stays.
fn free_batch(graph: &mut GraphProto, path: &Path) -> Result<()> {
    let Some(batch) = declared_batch(graph) else {
        return Err(invalid(
            path,
            "model.free_batch",
            "the first input declares no fixed batch".into(),
        ));
    };
    let inits: HashMap<String, usize> = (graph.initializer.iter().enumerate())
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let mut added: Vec<TensorProto> = Vec::new();
    for node in graph.node.iter_mut() {
        let allow_zero = (node.attribute.iter()).any(|a| a.name == "allowzero" && a.i != 0);
        if node.op_type != "Reshape" || node.input.len() < 2 || allow_zero {
            continue;
        }
        if inits.contains_key(&node.input[0]) {
            continue;
        }
        let Some(&at) = inits.get(&node.input[1]) else {
            continue;
        };
        let target = super::tensor::from_proto(&graph.initializer[at], path)?;
        let Ok(mut dims) = Vec::<i64>::try_from(target.flatten(0, -1)) else {
            continue;
        };
        if dims.first() != Some(&batch) {
            continue;
        }
        dims[0] = 0;
        let name = format!("{}/free_batch/{}", node.input[1], added.len());
        added.push(TensorProto {
            dims: vec![dims.len() as i64],
            data_type: 7, // INT64
            int64_data: dims,
            name: name.clone(),
            ..Default::default()
        });
        node.input[1] = name;
    }
    graph.initializer.extend(added);
    Ok(())
}
