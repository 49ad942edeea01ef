//! If nodes whose condition is a constant (an initializer or a `Constant`
//! node's output) are replaced, before anything else is loaded, by the
//! branch the condition selects: its nodes and initializers join the
//! graph, and the rest of the loader never sees a subgraph. Exporters
//! leave such Ifs behind when a Python branch depends on a setting fixed at
//! export time. Names the branch defines get a prefix of the If's, so they
//! cannot clash with the enclosing graph's; names it only reads resolve to
//! the enclosing graph (outer scope), as ONNX scoping has it. An If whose
//! condition is computed at run time stays, and the loader refuses it.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::proto::{attribute_type as at, GraphProto, NodeProto, TensorProto};
use super::{is_default, tensor};
use crate::error::{Error, Result};

/// Inlines every If of `graph` whose condition is a constant, those its
/// inlined branches hold too.
pub(super) fn constant_ifs(graph: &mut GraphProto, path: &Path) -> Result<()> {
    // Each pass replaces one If; the branch's own Ifs are met by later passes.
    while let Some((at, then)) = next_constant_if(graph, path)? {
        let node = graph.node.remove(at);
        let (nodes, initializers) = branch(&node, then, path)?;
        graph.initializer.extend(initializers);
        graph.node.splice(at..at, nodes);
    }
    Ok(())
}

fn invalid(path: &Path, msg: String) -> Error {
    Error::InvalidModel {
        path: path.to_path_buf(),
        msg,
    }
}

/// The name an error gives `node`.
fn label(node: &NodeProto) -> String {
    match node.name.as_str() {
        "" => format!("If -> {}", node.output.join(", ")),
        name => name.to_string(),
    }
}

/// The first If of the default domain whose condition is a constant, with
/// the branch it takes (true: `then_branch`).
fn next_constant_if(graph: &GraphProto, path: &Path) -> Result<Option<(usize, bool)>> {
    for (i, node) in graph.node.iter().enumerate() {
        if node.op_type != "If" || !is_default(&node.domain) {
            continue;
        }
        let Some(cond) = node.input.first().filter(|c| !c.is_empty()) else {
            return Err(invalid(
                path,
                format!("If node '{}' has no condition", label(node)),
            ));
        };
        let Some(value) = constant(graph, cond, path)? else {
            continue;
        };
        if value.numel() != 1 {
            return Err(invalid(
                path,
                format!(
                    "If node '{}': condition '{cond}' holds {} values, not one",
                    label(node),
                    value.numel()
                ),
            ));
        }
        let taken = value
            .f_to_kind(tch::Kind::Double)
            .and_then(|v| v.f_double_value(&[]));
        let taken = taken.map_err(|e| invalid(path, crate::error::torch_message(&e)))?;
        return Ok(Some((i, taken != 0.0)));
    }
    Ok(None)
}

/// The value of `name` when an initializer or a `Constant` node of `graph`
/// defines it.
fn constant(graph: &GraphProto, name: &str, path: &Path) -> Result<Option<tch::Tensor>> {
    if let Some(init) = graph.initializer.iter().find(|t| t.name == name) {
        return tensor::from_proto(init, path).map(Some);
    }
    let producer = (graph.node.iter()).find(|n| n.output.first().is_some_and(|o| o == name));
    let Some(node) = producer.filter(|n| n.op_type == "Constant" && is_default(&n.domain)) else {
        return Ok(None);
    };
    Ok(match node.attribute.first() {
        Some(a) if a.r#type == at::TENSOR => {
            a.t.as_ref()
                .map(|t| tensor::from_proto(t, path))
                .transpose()?
        }
        Some(a) if a.r#type == at::INT => Some(tch::Tensor::from(a.i)),
        Some(a) if a.r#type == at::FLOAT => Some(tch::Tensor::from(a.f)),
        Some(a) if a.r#type == at::INTS => Some(tch::Tensor::from_slice(&a.ints)),
        Some(a) if a.r#type == at::FLOATS => Some(tch::Tensor::from_slice(&a.floats)),
        // Not a condition the If could take; the loader reports the Constant.
        _ => None,
    })
}

/// The nodes and initializers of the branch of `node` that `then` selects,
/// renamed for the enclosing graph: the branch's outputs become the If's.
fn branch(node: &NodeProto, then: bool, path: &Path) -> Result<(Vec<NodeProto>, Vec<TensorProto>)> {
    let which = if then { "then_branch" } else { "else_branch" };
    let g = (node.attribute.iter())
        .find(|a| a.name == which && a.r#type == at::GRAPH)
        .and_then(|a| a.g.clone())
        .ok_or_else(|| invalid(path, format!("If node '{}' has no {which}", label(node))))?;
    if g.output.len() != node.output.len() {
        return Err(invalid(
            path,
            format!(
                "If node '{}': its {which} has {} outputs, the node {}",
                label(node),
                g.output.len(),
                node.output.len()
            ),
        ));
    }
    let stem = node
        .output
        .iter()
        .find(|o| !o.is_empty())
        .cloned()
        .unwrap_or_default();
    let prefix = format!("{stem}:{which}:");
    let produced: HashSet<&str> = g
        .node
        .iter()
        .flat_map(|n| &n.output)
        .map(String::as_str)
        .collect();
    let mut names: HashMap<String, String> = (g.initializer.iter().map(|t| &t.name))
        .chain(g.node.iter().flat_map(|n| &n.output))
        .filter(|n| !n.is_empty())
        .map(|n| (n.clone(), format!("{prefix}{n}")))
        .collect();
    // A branch output a branch node makes is renamed to the If's output;
    // one read from outside, an initializer or a repeat goes through an
    // Identity.
    let mut claimed = HashSet::new();
    let mut copies = Vec::new();
    for (i, (inner, outer)) in g
        .output
        .iter()
        .map(|v| &v.name)
        .zip(&node.output)
        .enumerate()
    {
        if outer.is_empty() {
            continue;
        }
        if produced.contains(inner.as_str()) && claimed.insert(inner.clone()) {
            names.insert(inner.clone(), outer.clone());
        } else {
            copies.push((i, inner.clone(), outer.clone()));
        }
    }
    let rename = |n: &String| names.get(n).cloned().unwrap_or_else(|| n.clone());
    let mut nodes: Vec<NodeProto> = g
        .node
        .iter()
        .map(|n| renamed(n, &prefix, &rename))
        .collect();
    for (i, inner, outer) in copies {
        nodes.push(NodeProto {
            input: vec![rename(&inner)],
            output: vec![outer],
            name: format!("{prefix}output{i}"),
            op_type: "Identity".into(),
            ..Default::default()
        });
    }
    let initializers = (g.initializer.into_iter())
        .map(|t| TensorProto {
            name: rename(&t.name),
            ..t
        })
        .collect();
    Ok((nodes, initializers))
}

/// `node` with its value names renamed, those its subgraphs read from the
/// branch too, and its name prefixed.
fn renamed(node: &NodeProto, prefix: &str, rename: &dyn Fn(&String) -> String) -> NodeProto {
    let mut n = node.clone();
    if !n.name.is_empty() {
        n.name = format!("{prefix}{}", n.name);
    }
    rename_names(&mut n.input, rename);
    rename_names(&mut n.output, rename);
    for g in n.attribute.iter_mut().filter_map(|a| a.g.as_mut()) {
        rename_reads(g, rename);
    }
    n
}

fn rename_names(names: &mut [String], rename: &dyn Fn(&String) -> String) {
    for name in names.iter_mut().filter(|n| !n.is_empty()) {
        *name = rename(name);
    }
}

/// Renames the names a nested subgraph reads from the branch around it
/// (a name it defines itself is never one of the branch's).
fn rename_reads(g: &mut GraphProto, rename: &dyn Fn(&String) -> String) {
    for n in &mut g.node {
        rename_names(&mut n.input, rename);
        for inner in n.attribute.iter_mut().filter_map(|a| a.g.as_mut()) {
            rename_reads(inner, rename);
        }
    }
    for o in &mut g.output {
        o.name = rename(&o.name);
    }
}
