//! Plain-text tables for `inspect`. In: the model summary. Out: the model
//! line, its inputs and outputs, the node table and the cut table. Every
//! column is as wide as its widest cell, so columns stay aligned whatever
//! the length of node names; no line ends in spaces.

use std::fmt::Write;

use faultsweep::inspect::ModelInfo;

fn shape(s: &[i64]) -> String {
    let dims: Vec<String> = s.iter().map(i64::to_string).collect();
    format!("[{}]", dims.join("x"))
}

#[derive(Clone, Copy, PartialEq)]
enum Align {
    Left,
    Right,
}

/// `rows` under `header`, columns two spaces apart and padded to their
/// widest cell (the last column, free text, is not padded).
fn table(s: &mut String, header: &[&str], align: &[Align], rows: &[Vec<String>]) {
    let width = |c: usize| {
        rows.iter()
            .map(|r| r[c].chars().count())
            .chain([header[c].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            let w = if c + 1 == row.len() { 0 } else { widths[c] };
            let sep = if c == 0 { "" } else { "  " };
            let _ = match align[c] {
                Align::Left => write!(line, "{sep}{cell:<w$}"),
                Align::Right => write!(line, "{sep}{cell:>w$}"),
            };
        }
        let _ = writeln!(s, "{}", line.trim_end());
    }
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
    s.push('\n');
    nodes(&mut s, info);
    s.push('\n');
    cuts(&mut s, info);
    s
}

fn nodes(s: &mut String, info: &ModelInfo) {
    use Align::{Left, Right};
    let rows: Vec<Vec<String>> = info
        .nodes
        .iter()
        .map(|n| {
            let out = n.outputs.first().map(|o| shape(&o.shape));
            vec![
                n.index.to_string(),
                n.name.clone(),
                n.op.clone(),
                out.unwrap_or_default(),
                n.params.to_string(),
                n.macs.to_string(),
                if n.injectable { "neuron" } else { "-" }.to_string(),
                n.weights.join(" "),
            ]
        })
        .collect();
    let header = [
        "index",
        "name",
        "op",
        "output/sample",
        "params",
        "MACs",
        "target",
        "weights",
    ];
    let align = [Right, Left, Left, Left, Right, Right, Left, Left];
    table(s, &header, &align, &rows);
}

fn cuts(s: &mut String, info: &ModelInfo) {
    use Align::{Left, Right};
    let rows: Vec<Vec<String>> = info
        .cuts
        .iter()
        .map(|c| {
            vec![
                c.cut.to_string(),
                c.values.len().to_string(),
                c.elements.to_string(),
                c.values.join(" "),
            ]
        })
        .collect();
    let header = [
        "cut",
        "values",
        "elements",
        "frontier (cut k lies before node k)",
    ];
    table(s, &header, &[Right, Right, Right, Left], &rows);
}
