//! Models whose values do not all hold the batch's rows on their first
//! axis: a BERT-style encoder from `transformers` exported by the
//! TorchScript exporter (`bert_tiny_ts17`) and the dynamo exporter
//! (`bert_tiny_dyn18`), written by scripts/make_bert_fixture.py. Both
//! compute their reshape targets from the input's shape (shape values),
//! and the dynamo export merges the batch with the attention heads.

use faultsweep::graph::Graph;
use faultsweep::load;
use faultsweep::split;
use tch::Tensor;

use crate::common::{csv_rows, fixtures, read_npy, run_verified};

const EXPORTS: [&str; 2] = ["bert_tiny_ts17", "bert_tiny_dyn18"];

fn bert(name: &str) -> (Graph, Tensor) {
    let f = fixtures();
    let graph = load::load(f.join(format!("models/{name}.onnx"))).unwrap();
    (graph, read_npy(&f.join("data/bert_tokens.npy")))
}

/// Resumed from any cut with fewer rows than the prefix ran on, each
/// export gives the full forward pass's bits: shape values are computed
/// for the rows at hand, never carried across a cut, and a cut inside the
/// dynamo export's merged attention resumes at the last aligned cut.
#[test]
fn a_run_resumed_with_other_rows_equals_the_full_forward_pass() {
    for name in EXPORTS {
        let (graph, tokens) = bert(name);
        graph.learn_layout(&[tokens.narrow(0, 0, 1)]).unwrap();
        let want = graph.forward(&[tokens.narrow(0, 0, 3)]).unwrap();
        let mut moved = 0;
        for cut in 0..=graph.nodes.len() {
            let from = graph.layout.resume_cut(cut);
            moved += usize::from(from < cut);
            let ids = split::frontier(&graph, from).unwrap();
            assert!(
                ids.iter().all(|&id| !graph.layout.is_derived(id)),
                "{name}: a shape value crosses cut {from}"
            );
            let five = split::prefix(&graph, &[tokens.narrow(0, 0, 5)], from).unwrap();
            let three: Vec<Tensor> = five.iter().map(|t| t.narrow(0, 0, 3)).collect();
            let got = split::resume(&graph, from, &three).unwrap();
            assert!(got[0].equal(&want[0]), "{name}: resumed at cut {from}");
        }
        let merged = name.ends_with("dyn18");
        assert_eq!(moved > 0, merged, "{name}: {moved} cuts resume earlier");
    }
}

/// Neuron faults (MatMul, Add, Softmax, Gemm outputs) and weight faults
/// (MatMul, Gemm) on both exports, from the cache and from the input, give
/// the full forward pass's outcome for every injection, and the golden
/// top-1 of every sequence is onnxruntime's.
#[test]
fn bert_campaigns_equal_the_full_forward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (f, cache) = (fixtures(), dir.path().join("cache"));
    for name in EXPORTS {
        let runs = [
            ("neuron", "[MatMul, Add, Softmax, Gemm]", true),
            ("neuron", "[MatMul, Add, Softmax, Gemm]", false),
            ("weight", "[MatMul, Gemm]", true),
        ];
        for (target, ops, cached) in runs {
            let yaml = format!(
                "name: {name}\nseed: 3\nmodel:\n  path: {}\ndata:\n  path: {}\n  labels: {}\n  batch_size: 8\ntargets:\n  target: {target}\n  layers:\n    ops: {ops}\nfault:\n  model: bit_flip\n  dtype: fp32\n  bits: all\ncounts:\n  injections: 300\ncache:\n  enabled: {cached}\n",
                f.join(format!("models/{name}.onnx")).display(),
                f.join("data/bert_tokens.npy").display(),
                f.join("data/bert_labels.npy").display(),
            );
            let run = format!("{name}_{target}_{cached}");
            let sc = dir.path().join(format!("{run}.yml"));
            std::fs::write(&sc, yaml).unwrap();
            let out = dir.path().join(&run);
            let rows = run_verified(&sc, &out, &cache, 300);
            assert_eq!(rows.len(), 301, "{run}");
            let logits = read_npy(&f.join(format!("data/{name}_logits.npy")));
            let golden = csv_rows(&out.join("golden.csv"));
            let col = golden[0].iter().position(|c| c == "top1_class").unwrap();
            let got: Vec<i64> = (golden[1..].iter())
                .map(|r| r[col].parse().unwrap())
                .collect();
            assert_eq!(Tensor::from_slice(&got), logits.argmax(1, false), "{run}");
        }
    }
}

/// ViT's attention, as torch's MultiheadAttention writes it, puts the
/// batch behind the sequence (`[S, N, E]`) and merges it with the heads
/// (`[N*H, S, S]`) and the sequence (`[S*N, E]`): such values are neuron
/// targets of one row's shape, nodes reading them take weight faults, and
/// campaigns over every target of two exports equal the full forward
/// pass, every injection checked and none failing.
#[test]
fn vit_attention_values_are_targets_equal_to_the_full_forward_pass() {
    let dir = tempfile::tempdir().unwrap();
    let (f, cache) = (fixtures(), dir.path().join("cache"));
    let graph = load::load(f.join("models/vit_b_16_ts17.onnx")).unwrap();
    let info = faultsweep::inspect::inspect(&graph).unwrap();
    let attention = "/encoder/layers/encoder_layer_0/self_attention/";
    for (node, shape) in [("Transpose", [17, 32]), ("Gemm", [17, 32])] {
        let name = format!("{attention}{node}");
        let node = info.nodes.iter().find(|n| n.name == name).unwrap();
        assert!(node.injectable, "{name}");
        assert_eq!(node.outputs[0].shape, shape, "{name}");
    }
    let scores = format!("{attention}MatMul_1");
    let scores = info.nodes.iter().find(|n| n.name == scores).unwrap();
    assert_eq!(scores.outputs[0].shape, [2, 17, 17], "{}", scores.name);
    for name in ["vit_b_16_ts17", "vit_b_16_dyn18"] {
        let model = f.join(format!("models/{name}.onnx"));
        let yaml = format!(
            "name: {name}\nseed: 4\nmodel:\n  path: {}\ndata:\n  path: {}\ntargets:\n  target: both\nfault:\n  model: bit_flip\n  dtype: fp32\n  bits: all\ncounts:\n  injections: 600\n",
            model.display(),
            f.join(format!("models/{name}.input.npy")).display(),
        );
        let sc = dir.path().join(format!("{name}.yml"));
        std::fs::write(&sc, yaml).unwrap();
        let rows = run_verified(&sc, &dir.path().join(name), &cache, 600);
        // Faults landed on values whose batch axis is not the first.
        let graph = load::load(&model).unwrap();
        let input = read_npy(&f.join(format!("models/{name}.input.npy")));
        graph.learn_layout(&[input.narrow(0, 0, 1)]).unwrap();
        let moved: Vec<&str> = (graph.nodes.iter())
            .filter(|n| graph.layout.row_axis(n.outputs[0]).is_some())
            .map(|n| n.name.as_str())
            .collect();
        let layer = rows[0].iter().position(|c| c == "layer").unwrap();
        let hits = (rows[1..].iter()).filter(|r| moved.contains(&r[layer].as_str()));
        assert!(
            hits.count() > 10,
            "{name}: too few faults on sequence-first values"
        );
    }
}
