//! Step 1, load: an ONNX file becomes a [`Graph`]. An If whose condition is
//! a constant is replaced by the branch it takes (`inline`). Initializers
//! and `Constant` nodes become constant tensors, the remaining nodes are sorted topologically
//! (stable: file order where the file is already sorted), every op and
//! attribute is checked against the kernels, nodes that read only constants
//! are evaluated once here and become constants too (so, but in a model of
//! constants only, every value a node computes depends on the inputs and has
//! their sample rows), and each value gets its last reader for the
//! executor's liveness.

mod edits;
mod inline;
mod proto;
mod tensor;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use prost::Message;

use crate::error::{Error, Result};
use crate::graph::{
    ops, opsets, Attr, Attrs, Graph, InputSpec, Layout, Node, Op, Source, Value, ValueId,
};
use proto::{attribute_type as at, AttributeProto, ModelProto, NodeProto};

pub use crate::graph::opsets::OPSETS;

/// A serialized `TensorProto` (the `.pb` files of ONNX's test data) as a
/// tensor; `origin` names it in errors.
pub fn tensor_from_bytes(bytes: &[u8], origin: &Path) -> Result<tch::Tensor> {
    let proto = proto::TensorProto::decode(bytes).map_err(|e| Error::InvalidModel {
        path: origin.to_path_buf(),
        msg: format!("not a TensorProto: {e}"),
    })?;
    tensor::from_proto(&proto, origin)
}

pub use edits::Edits;

/// Loads and validates the ONNX model at `path`.
pub fn load(path: impl AsRef<Path>) -> Result<Graph> {
    load_with(path, &Edits::default())
}

/// As [`load`], with `edits` applied to the model before it is built.
pub fn load_with(path: impl AsRef<Path>, edits: &Edits) -> Result<Graph> {
    let path = path.as_ref();
    // A FIFO or device would block or never end: not a model (exit 3).
    let bytes = crate::files::open(path)
        .and_then(|mut f| {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut bytes).map(|_| bytes)
        })
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::InvalidInput => Error::Decode {
                path: path.to_path_buf(),
                msg: e.to_string(),
            },
            _ => Error::io(path, e),
        })?;
    from_bytes_with(&bytes, path, edits)
}

/// As [`load`], from bytes; `path` is used in messages and for external data.
pub fn from_bytes(bytes: &[u8], path: &Path) -> Result<Graph> {
    from_bytes_with(bytes, path, &Edits::default())
}

fn from_bytes_with(bytes: &[u8], path: &Path, edits: &Edits) -> Result<Graph> {
    let mut model = ModelProto::decode(bytes).map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })?;
    if let (Some(graph), false) = (model.graph.as_mut(), edits.is_empty()) {
        edits::apply(graph, edits, path)?;
    }
    let mut graph = Builder::new(path).build(model)?;
    if edits.free_batch {
        // The first input takes any batch.
        if let Some(d) = graph.inputs.first_mut().and_then(|i| i.dims.as_mut()) {
            if let Some(b) = d.first_mut() {
                *b = None;
            }
        }
    }
    Ok(graph)
}

struct Builder {
    path: PathBuf,
    opset: i64,
    values: Vec<Value>,
    by_name: HashMap<String, ValueId>,
    words: BTreeMap<ValueId, crate::graph::Words>,
}

impl Builder {
    fn new(path: &Path) -> Self {
        Builder {
            path: path.to_path_buf(),
            opset: 0,
            values: Vec::new(),
            by_name: HashMap::new(),
            words: BTreeMap::new(),
        }
    }

    fn invalid(&self, msg: impl Into<String>) -> Error {
        Error::InvalidModel {
            path: self.path.clone(),
            msg: msg.into(),
        }
    }

    fn build(mut self, model: ModelProto) -> Result<Graph> {
        let Some(mut graph) = model.graph else {
            return Err(self.invalid("the file holds no graph (is it an ONNX model?)"));
        };
        self.opset = self.default_opset(&model.opset_import)?;
        inline::constant_ifs(&mut graph, &self.path)?;
        for init in &graph.initializer {
            let t = tensor::from_proto(init, &self.path)?;
            self.define(&init.name, Source::Constant(t))?;
        }
        let mut inputs = Vec::new();
        let mut input_values = Vec::new();
        for vi in &graph.input {
            if self.by_name.contains_key(&vi.name) {
                continue; // older files list initializers among the inputs
            }
            let kind = tensor::kind_of(vi).map_err(|t| {
                self.invalid(format!(
                    "input '{}' has element type {t}, which faultsweep does not hold (it holds float32, float64, float16, bfloat16, int8 to int64, uint8 and bool)",
                    vi.name
                ))
            })?;
            let id = self.define(&vi.name, Source::Input(inputs.len()))?;
            input_values.push(id);
            inputs.push(InputSpec {
                name: vi.name.clone(),
                kind,
                dims: tensor::dims_of(vi),
            });
        }
        let order = self.sort(&graph.node)?;
        // Nodes of constants are folded, but in a model whose outputs all
        // come from constants (an op test of a constant graph) the nodes
        // that make the outputs still run, as written: the model computes
        // them, and has nodes.
        let keep: HashSet<&str> = if self.outputs_all_constant(&order, &graph.output) {
            graph.output.iter().map(|o| o.name.as_str()).collect()
        } else {
            HashSet::new()
        };
        let mut nodes = Vec::new();
        for np in order {
            if np.op_type == "Constant" && is_default(&np.domain) {
                self.fold_constant(np)?;
            } else {
                // A folded node takes no index: the next node gets it, so
                // indices stay the positions in `nodes`.
                let node = self.node(np, nodes.len())?;
                let kept = np.output.iter().any(|o| keep.contains(o.as_str()));
                if kept || !self.fold_node(&node)? {
                    nodes.push(node);
                }
            }
        }
        let outputs = graph
            .output
            .iter()
            .map(|vi| {
                self.by_name.get(&vi.name).copied().ok_or_else(|| {
                    self.invalid(format!("graph output '{}' is never produced", vi.name))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        if outputs.is_empty() {
            return Err(self.invalid("the graph declares no outputs"));
        }
        if nodes.is_empty() {
            return Err(self.invalid(
                "the graph computes nothing: no node is left (its outputs are \
                 initializers, graph inputs or Constant nodes)",
            ));
        }
        let mut g = Graph {
            path: self.path,
            opset: self.opset,
            nodes,
            values: self.values,
            inputs,
            input_values,
            outputs,
            guards: Default::default(),
            monitors: Default::default(),
            judged: 0,
            task: Default::default(),
            layout: Layout::default(),
            words: self.words,
        };
        set_last_uses(&mut g);
        g.layout = Layout::of(&g.nodes, &g.values, &g.outputs);
        Ok(g)
    }

    fn default_opset(&self, imports: &[proto::OperatorSetIdProto]) -> Result<i64> {
        let opset = imports
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| self.invalid("no opset_import for the default ONNX domain"))?;
        if !(opsets::OLDEST..=*OPSETS.end()).contains(&opset) {
            return Err(self.invalid(format!(
                "opset {opset} is not supported (supported: {} to {}, the newest of ONNX {}; below {} only ops unchanged since)",
                opsets::OLDEST,
                OPSETS.end(),
                crate::graph::opsets::ONNX,
                OPSETS.start()
            )));
        }
        Ok(opset)
    }

    fn define(&mut self, name: &str, source: Source) -> Result<ValueId> {
        if name.is_empty() {
            return Err(self.invalid("a value has an empty name"));
        }
        if self.by_name.contains_key(name) {
            return Err(self.invalid(format!("value '{name}' is defined twice")));
        }
        let id = self.values.len();
        self.values.push(Value {
            name: name.to_string(),
            source,
            last_use: 0,
        });
        self.by_name.insert(name.to_string(), id);
        Ok(id)
    }

    /// Kahn's algorithm, taking ready nodes in file order.
    fn sort<'a>(&self, nodes: &'a [NodeProto]) -> Result<Vec<&'a NodeProto>> {
        let mut producer: HashMap<&str, usize> = HashMap::new();
        for (i, n) in nodes.iter().enumerate() {
            for o in n.output.iter().filter(|o| !o.is_empty()) {
                if producer.insert(o, i).is_some() || self.by_name.contains_key(o) {
                    return Err(
                        self.invalid(format!("value '{o}' is defined twice (node '{}')", n.name))
                    );
                }
            }
        }
        let mut waiting = vec![0usize; nodes.len()];
        let mut readers: Vec<Vec<usize>> = vec![Vec::new(); nodes.len()];
        for (i, n) in nodes.iter().enumerate() {
            for inp in n.input.iter().filter(|s| !s.is_empty()) {
                match producer.get(inp.as_str()) {
                    Some(&p) => {
                        waiting[i] += 1;
                        readers[p].push(i);
                    }
                    None if self.by_name.contains_key(inp) => {}
                    None => {
                        return Err(self.invalid(format!(
                        "node '{}' ({}) reads '{inp}', which no node, input or initializer defines",
                        n.name, n.op_type
                    )))
                    }
                }
            }
        }
        let mut ready: std::collections::BTreeSet<usize> =
            (0..nodes.len()).filter(|&i| waiting[i] == 0).collect();
        let mut order = Vec::with_capacity(nodes.len());
        while let Some(i) = ready.pop_first() {
            order.push(&nodes[i]);
            for &r in &readers[i] {
                waiting[r] -= 1;
                if waiting[r] == 0 {
                    ready.insert(r);
                }
            }
        }
        if order.len() < nodes.len() {
            let stuck = (0..nodes.len())
                .find(|&i| waiting[i] > 0)
                .map(|i| &nodes[i]);
            let name = stuck
                .map(|n| format!("'{}' ({})", n.name, n.op_type))
                .unwrap_or_default();
            return Err(self.invalid(format!("the graph has a cycle through node {name}")));
        }
        Ok(order)
    }

    /// Whether every graph output would be folded: computed, through
    /// nodes [`Builder::fold_node`] folds, from initializers and `Constant`
    /// nodes only (decided on names, before any node is evaluated).
    fn outputs_all_constant(
        &self,
        order: &[&NodeProto],
        outputs: &[proto::ValueInfoProto],
    ) -> bool {
        let mut constant: HashSet<&str> = self
            .values
            .iter()
            .filter(|v| matches!(v.source, Source::Constant(_)))
            .map(|v| v.name.as_str())
            .collect();
        for np in order {
            let foldable = is_default(&np.domain)
                && (np.op_type == "Constant"
                    || (!Op::parse(&np.op_type).is_some_and(|op| op.traits().random)
                        && np
                            .input
                            .iter()
                            .filter(|i| !i.is_empty())
                            .all(|i| constant.contains(i.as_str()))));
            if foldable {
                constant.extend(np.output.iter().map(String::as_str));
            }
        }
        outputs.iter().all(|o| constant.contains(o.name.as_str()))
    }

    fn fold_constant(&mut self, np: &NodeProto) -> Result<()> {
        let attrs = self.attrs(np)?;
        let t =
            match attrs.0.into_iter().next() {
                Some((_, Attr::Tensor(t))) => t,
                Some((_, Attr::Float(f))) => tch::Tensor::from(f),
                Some((_, Attr::Int(i))) => tch::Tensor::from(i),
                Some((_, Attr::Floats(v))) => tch::Tensor::from_slice(&v),
                Some((_, Attr::Ints(v))) => tch::Tensor::from_slice(&v),
                _ => return Err(Error::Unsupported {
                    path: self.path.clone(),
                    node: np.name.clone(),
                    op: "Constant".into(),
                    opset: self.opset,
                    msg:
                        "a Constant needs one value attribute (value, value_float(s), value_int(s))"
                            .into(),
                }),
            };
        let name = np.output.first().cloned().unwrap_or_default();
        self.define(&name, Source::Constant(t))?;
        Ok(())
    }

    /// Evaluates a node whose inputs are all constants (a weight passed
    /// through Identity, weights made by ConstantOfShape) once, here: its
    /// outputs become constants, as weights are, instead of values each
    /// pass computes again and the cache would store per sample. Returns
    /// whether the node was folded.
    fn fold_node(&mut self, node: &Node) -> Result<bool> {
        if node.op.traits().random {
            return Ok(false);
        }
        let mut ins = Vec::with_capacity(node.inputs.len());
        for id in &node.inputs {
            match id.map(|id| &self.values[id].source) {
                None => ins.push(None),
                Some(Source::Constant(t)) => ins.push(Some(t)),
                Some(_) => return Ok(false),
            }
        }
        let def = ops::def(node.op);
        let fail = |msg: String| {
            self.invalid(format!(
                "node '{}' (op {}, opset {}) reads only constants, so it is evaluated at \
                 load time, and that failed: {msg}",
                node.name, node.op, node.opset
            ))
        };
        let outputs = crate::graph::catch_kernel(|| (def.kernel)(node, &ins)).map_err(fail)?;
        if outputs.len() < node.outputs.len() {
            return Err(fail(format!(
                "produced {} outputs, the node declares {}",
                outputs.len(),
                node.outputs.len()
            )));
        }
        if node.op == Op::DequantizeLinear && outputs[0].kind() == tch::Kind::Float {
            if let Some(words) = ops::words_of(node, &ins) {
                self.words.insert(node.outputs[0], words);
            }
        }
        for (&id, t) in node.outputs.iter().zip(outputs) {
            self.values[id].source = Source::Constant(t);
        }
        Ok(true)
    }

    fn node(&mut self, np: &NodeProto, index: usize) -> Result<Node> {
        let name = if np.name.is_empty() {
            format!("{}#{index}", np.op_type)
        } else {
            np.name.clone()
        };
        let unsupported = |msg: String| Error::Unsupported {
            path: self.path.clone(),
            node: name.clone(),
            op: np.op_type.clone(),
            opset: self.opset,
            msg,
        };
        if !is_default(&np.domain) {
            return Err(unsupported(format!(
                "domain '{}' is not supported",
                np.domain
            )));
        }
        if np.op_type == "If" {
            return Err(unsupported(
                "an If whose condition is computed at run time is not supported (an If \
                 whose condition is an initializer or a Constant is replaced by its branch)"
                    .into(),
            ));
        }
        let op = Op::parse(&np.op_type)
            .ok_or_else(|| unsupported(format!("op {} has no kernel in faultsweep", np.op_type)))?;
        opsets::check(op, self.opset).map_err(unsupported)?;
        let def = ops::def(op);
        let attrs = self.attrs(np)?;
        if let Some(a) = attrs.0.keys().find(|a| !def.attrs.contains(&a.as_str())) {
            let known = match def.attrs {
                [] => "the op takes no attributes".to_string(),
                list => format!("supported: {}", list.join(", ")),
            };
            return Err(unsupported(format!(
                "attribute '{a}' is not supported ({known})"
            )));
        }
        attrs.check(op).map_err(|msg| {
            self.invalid(format!(
                "node '{name}' (op {}, opset {}): {msg}",
                np.op_type, self.opset
            ))
        })?;
        let inputs = np
            .input
            .iter()
            .map(|s| (!s.is_empty()).then(|| self.by_name[s]))
            .collect();
        let mut outputs = Vec::new();
        for (slot, o) in np.output.iter().enumerate() {
            // An omitted optional output still gets a (never read) value.
            let o = if o.is_empty() {
                format!("{name}:unused{slot}")
            } else {
                o.clone()
            };
            outputs.push(self.define(&o, Source::Node { node: index, slot })?);
        }
        Ok(Node {
            index,
            name,
            op,
            inputs,
            outputs,
            attrs,
            opset: self.opset,
        })
    }

    fn attrs(&self, np: &NodeProto) -> Result<Attrs> {
        let mut map = BTreeMap::new();
        for a in &np.attribute {
            map.insert(a.name.clone(), self.attr(np, a)?);
        }
        Ok(Attrs(map))
    }

    fn attr(&self, np: &NodeProto, a: &AttributeProto) -> Result<Attr> {
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Ok(match a.r#type {
            at::FLOAT => Attr::Float(a.f),
            at::INT => Attr::Int(a.i),
            at::STRING => Attr::Str(text(&a.s)),
            at::TENSOR => match &a.t {
                Some(t) => Attr::Tensor(tensor::from_proto(t, &self.path)?),
                None => {
                    return Err(self.invalid(format!(
                        "node '{}': attribute '{}' has no tensor",
                        np.name, a.name
                    )))
                }
            },
            at::FLOATS => Attr::Floats(a.floats.clone()),
            at::INTS => Attr::Ints(a.ints.clone()),
            at::STRINGS => Attr::Strings(a.strings.iter().map(|s| text(s)).collect()),
            t => {
                return Err(Error::Unsupported {
                    path: self.path.clone(),
                    node: np.name.clone(),
                    op: np.op_type.clone(),
                    opset: self.opset,
                    msg: format!(
                        "attribute '{}' has type {t}{}",
                        a.name,
                        if t == at::GRAPH {
                            " (subgraphs are not supported)"
                        } else {
                            ""
                        }
                    ),
                })
            }
        })
    }
}

/// Whether `domain` names the default ONNX domain.
fn is_default(domain: &str) -> bool {
    domain.is_empty() || domain == "ai.onnx"
}

/// Records each value's last reader; graph outputs live to the end.
fn set_last_uses(g: &mut Graph) {
    for v in &mut g.values {
        v.last_use = match v.source {
            Source::Node { node, .. } => node,
            _ => 0,
        };
    }
    for node in &g.nodes {
        for &id in node.inputs.iter().flatten() {
            g.values[id].last_use = g.values[id].last_use.max(node.index);
        }
    }
    for &id in &g.outputs {
        g.values[id].last_use = usize::MAX;
    }
}

#[cfg(test)]
mod tests {
    use super::proto::*;
    use super::*;

    fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: at::INTS,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    /// A model of one Conv node (3x3 weight) with `attrs`.
    fn conv_with(attrs: Vec<AttributeProto>) -> Vec<u8> {
        let weight = TensorProto {
            dims: vec![1, 1, 3, 3],
            data_type: 1,
            float_data: vec![1.0; 9],
            name: "w".into(),
            ..Default::default()
        };
        let info = |name: &str| ValueInfoProto {
            name: name.into(),
            r#type: None,
        };
        let node = NodeProto {
            input: vec!["x".into(), "w".into()],
            output: vec!["y".into()],
            name: "conv".into(),
            op_type: "Conv".into(),
            attribute: attrs,
            ..Default::default()
        };
        let graph = GraphProto {
            node: vec![node],
            initializer: vec![weight],
            input: vec![info("x")],
            output: vec![info("y")],
            ..Default::default()
        };
        ModelProto {
            ir_version: 8,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: 17,
            }],
            graph: Some(graph),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// Invalid attributes are model errors found at load time (exit 3),
    /// naming node, op, opset and attribute; they were op failures (exit 5)
    /// on the first batch.
    #[test]
    fn invalid_attributes_are_model_errors_at_load_time() {
        let text = |name: &str, s: &str| AttributeProto {
            name: name.into(),
            r#type: at::STRING,
            s: s.as_bytes().to_vec(),
            ..Default::default()
        };
        let floats = AttributeProto {
            name: "kernel_shape".into(),
            r#type: at::FLOATS,
            floats: vec![3.0, 3.0],
            ..Default::default()
        };
        for (attr, name) in [
            (vec![ints("strides", &[0, 1])], "strides"),
            (vec![text("auto_pad", "BOGUS")], "auto_pad"),
            (vec![floats], "kernel_shape"),
            (vec![ints("pads", &[1, 1, 1])], "pads"),
            (
                vec![ints("kernel_shape", &[3, 3]), ints("dilations", &[1, 1, 1])],
                "dilations",
            ),
        ] {
            let e = from_bytes(&conv_with(attr), Path::new("m.onnx")).unwrap_err();
            let msg = e.to_string();
            assert_eq!(e.exit_code(), 3, "{msg}");
            for part in [
                "m.onnx",
                "'conv'",
                "op Conv",
                "opset 17",
                &format!("'{name}'"),
            ] {
                assert!(msg.contains(part), "lacks {part}: {msg}");
            }
        }
        let fine = vec![ints("strides", &[2, 2]), ints("pads", &[1, 1, 1, 1])];
        from_bytes(&conv_with(fine), Path::new("m.onnx")).unwrap();
    }

    /// A model of one node `op` reading `x` (twice for a binary op) at
    /// `opset`.
    fn one_op(op: &str, inputs: usize, opset: i64) -> Vec<u8> {
        let info = |name: &str| ValueInfoProto {
            name: name.into(),
            r#type: None,
        };
        let node = NodeProto {
            input: vec!["x".into(); inputs],
            output: vec!["y".into()],
            name: "n".into(),
            op_type: op.into(),
            ..Default::default()
        };
        ModelProto {
            ir_version: 10,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            graph: Some(GraphProto {
                node: vec![node],
                input: vec![info("x")],
                output: vec![info("y")],
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec()
    }

    /// An If whose condition is a graph input is refused naming the node;
    /// a constant condition of more than one value is a model error.
    #[test]
    fn if_runs_only_with_a_constant_condition() {
        let path = Path::new("m.onnx");
        let e = from_bytes(&one_op("If", 1, 17), path).unwrap_err();
        let msg = e.to_string();
        for part in ["'n'", "op If", "computed at run time"] {
            assert!(msg.contains(part), "lacks {part}: {msg}");
        }
        let mut model = ModelProto::decode(one_op("If", 1, 17).as_slice()).unwrap();
        let graph = model.graph.as_mut().unwrap();
        graph.initializer.push(TensorProto {
            dims: vec![2],
            data_type: 9,
            int32_data: vec![1, 0],
            name: "c".into(),
            ..Default::default()
        });
        graph.node[0].input = vec!["c".into()];
        let e = from_bytes(&model.encode_to_vec(), path).unwrap_err();
        assert!(e.to_string().contains("holds 2 values, not one"), "{e}");
    }

    /// Every opset up to the newest of the pinned onnx loads; an op whose
    /// definition changed beyond its types after the implemented version is
    /// refused, named with its versions; a newer opset is refused.
    #[test]
    fn opsets_up_to_the_newest_load_op_by_op() {
        let path = Path::new("m.onnx");
        for opset in 7..=crate::graph::opsets::OPSETS.end().to_owned() {
            from_bytes(&one_op("Relu", 1, opset), path).unwrap();
        }
        from_bytes(&one_op("Reshape", 2, 25), path).unwrap();
        from_bytes(&one_op("SpaceToDepth", 1, 28), path).unwrap();
        // Below opset 7, ops whose definition has not changed since load;
        // others are refused naming the op.
        from_bytes(&one_op("Not", 1, 1), path).unwrap();
        let e = from_bytes(&one_op("Relu", 1, 1), path).unwrap_err();
        assert!(
            e.to_string().contains("op Relu is version 1 at opset 1"),
            "{e}"
        );
        let e = from_bytes(&one_op("Not", 1, 0), path).unwrap_err();
        assert!(e.to_string().contains("opset 0 is not supported"), "{e}");
        let newest = *crate::graph::opsets::OPSETS.end();
        let e = from_bytes(&one_op("Relu", 1, newest + 1), path).unwrap_err();
        assert!(e
            .to_string()
            .contains(&format!("opset {} is not supported", newest + 1)));
    }
}
