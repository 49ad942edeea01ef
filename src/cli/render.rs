//! Plain-text tables for `inspect`.

use std::fmt::Write;

use crate::inspect::ModelInfo;

fn shape(s: &[i64]) -> String {
    let dims: Vec<String> = s.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join("x"))
}

pub fn model(info: &ModelInfo) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "model {}  opset {}  nodes {}  params {}  MACs/sample {}",
        info.path,
        info.opset,
        info.nodes.len(),
        info.params,
        info.macs
    );
    for i in &info.inputs {
        let _ = writeln!(s, "input  {} {} per sample", i.name, shape(&i.shape));
    }
    for o in &info.outputs {
        let _ = writeln!(s, "output {} {} per sample", o.name, shape(&o.shape));
    }
    let _ = writeln!(
        s,
        "\n{:>5}  {:<32} {:<20} {:<18} {:>10} {:>12}  {:<6} weights",
        "index", "name", "op", "output/sample", "params", "MACs", "target"
    );
    for n in &info.nodes {
        let out = n
            .outputs
            .first()
            .map(|o| shape(&o.shape))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{:>5}  {:<32} {:<20} {:<18} {:>10} {:>12}  {:<6} {}",
            n.index,
            n.name,
            n.op,
            out,
            n.params,
            n.macs,
            if n.injectable { "neuron" } else { "-" },
            n.weights.join(" ")
        );
    }
    let _ = writeln!(
        s,
        "\n{:>5}  {:>6} {:>12}  frontier (cut k lies before node k)",
        "cut", "values", "elements"
    );
    for c in &info.cuts {
        let _ = writeln!(
            s,
            "{:>5}  {:>6} {:>12}  {}",
            c.cut,
            c.values.len(),
            c.elements,
            c.values.join(" ")
        );
    }
    s
}
