//! The engine's exactness contract: resuming from the cache with batching and
//! fault dropping gives the same outcomes and fault-site values as a plain
//! full forward pass from the input with the same faults.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use faultsweep::cache::Reader;
use faultsweep::classify::Outcome;
use faultsweep::data::{DataSpec, Dataset, Subset};
use faultsweep::golden::GoldenRun;
use faultsweep::graph::Graph;
use faultsweep::inject::{
    agreement, plain_run, Agreement, BoxKernels, CachedFrontiers, ComputedFrontiers, Engine,
    Frontiers, Injection, InjectionResult, InputFrontiers, Mode, NodeFault, Options,
};
use faultsweep::kernels::threads::Threads;
use faultsweep::load;

use crate::common::{repo, store_at};

/// A tiny portable generator, so the test's faults are fixed.
struct Lcg(u64);
impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn flip(bit: u32) -> faultsweep::inject::Corrupt {
    Arc::new(move |v: f64| f64::from(f32::from_bits((v as f32).to_bits() ^ (1 << bit))))
}

/// Random single- or multi-fault neuron injections over the injectable nodes.
fn injections(
    graph: &Graph,
    samples: usize,
    count: usize,
    faults_each: usize,
    seed: u64,
) -> Vec<Injection> {
    let info = faultsweep::inspect::inspect(graph).unwrap();
    let nodes: Vec<(usize, i64)> = info
        .nodes
        .iter()
        .filter(|n| n.injectable)
        .map(|n| (n.index, n.outputs[0].shape.iter().product()))
        .collect();
    let mut rng = Lcg(seed);
    (0..count)
        .map(|id| {
            let faults = (0..faults_each)
                .map(|_| {
                    let (node, elems) = nodes[rng.next(nodes.len() as u64) as usize];
                    NodeFault::neuron(
                        node,
                        rng.next(elems as u64) as i64,
                        flip(rng.next(32) as u32),
                    )
                })
                .collect();
            Injection {
                id,
                sample: rng.next(samples as u64) as usize,
                faults,
            }
        })
        .collect()
}

/// Random weight faults (biases included), each alone or with a random
/// neuron fault elsewhere when `mixed`.
fn weight_injections(
    graph: &Graph,
    samples: usize,
    count: usize,
    mixed: bool,
    seed: u64,
) -> Vec<Injection> {
    let sites = faultsweep::faults::Sites::from_graph(graph).unwrap();
    let weights: Vec<(usize, usize, u64)> = sites
        .layers
        .iter()
        .flat_map(|l| {
            l.weights.iter().map(|w| {
                let input = graph.nodes[l.node]
                    .inputs
                    .iter()
                    .position(|id| id.is_some_and(|id| graph.values[id].name == w.name))
                    .unwrap();
                (l.node, input, w.elements())
            })
        })
        .collect();
    assert!(!weights.is_empty());
    let neurons = injections(graph, samples, count, 1, seed ^ 0x5eed);
    let mut rng = Lcg(seed);
    (0..count)
        .map(|id| {
            let (node, input, elems) = weights[rng.next(weights.len() as u64) as usize];
            let mut faults = vec![NodeFault::weight(
                node,
                input,
                rng.next(elems) as i64,
                flip(rng.next(32) as u32),
            )];
            if mixed {
                faults.extend(neurons[id].faults.iter().cloned());
            }
            Injection {
                id,
                sample: rng.next(samples as u64) as usize,
                faults,
            }
        })
        .collect()
}

/// Fills the cache for every cut the injections start from.
fn cached(
    graph: &Graph,
    data: &Dataset,
    injections: &[Injection],
    dir: &std::path::Path,
) -> CachedFrontiers<'static> {
    CachedFrontiers::read(open_entries(&fill_cache(graph, data, injections, dir)))
}

/// The cache entries of every cut the injections read, filled in `dir`.
fn fill_cache(
    graph: &Graph,
    data: &Dataset,
    injections: &[Injection],
    dir: &std::path::Path,
) -> Vec<(usize, PathBuf)> {
    let store = store_at(dir, 1, None);
    let cuts: Vec<usize> = injections.iter().flat_map(|i| i.cuts(graph)).collect();
    GoldenRun {
        graph,
        data,
        cuts,
        reads: None,
        store: Some(&store),
        top_k: 5,
    }
    .run()
    .unwrap()
    .entries
}

fn open_entries(entries: &[(usize, PathBuf)]) -> HashMap<usize, Reader> {
    entries
        .iter()
        .map(|(c, p)| (*c, Reader::open(p).unwrap()))
        .collect()
}

/// The oracle: every injection alone through the whole model.
fn reference(graph: &Graph, data: &Dataset, injections: &[Injection]) -> Vec<InjectionResult> {
    injections
        .iter()
        .map(|inj| {
            let inputs = data.batch(inj.sample..inj.sample + 1).unwrap().inputs;
            plain_run(graph, &inputs, inj).unwrap()
        })
        .collect()
}

/// Outcomes agree exactly, or differ only by rounding noise (see
/// faultsweep::inject::agreement); site values agree to rounding as well.
fn assert_same(
    name: &str,
    engine: &[InjectionResult],
    plain: &[InjectionResult],
) -> HashMap<Outcome, usize> {
    let mut counts = HashMap::new();
    let mut rounding = 0;
    for (e, p) in engine.iter().zip(plain) {
        assert_eq!(e.id, p.id);
        match agreement(e, p) {
            Agreement::Exact => {}
            Agreement::WithinRounding => rounding += 1,
            Agreement::Differs => panic!(
                "{name}: injection {} (sample {}): engine {:?}, full forward {:?}; sites {:?} vs {:?}",
                e.id,
                e.sample,
                e.outcome(),
                p.outcome(),
                e.sites,
                p.sites
            ),
        }
        // libtorch picks kernels by batch size, so the prefix of a batch of
        // 40 and of the sample alone differ in the last bits, accumulated
        // over the layers before the site (relative to the layer's scale,
        // not the element's: a small value can carry the rounding of large
        // products). A different element would differ far more.
        for (a, b) in e.sites.iter().zip(&p.sites) {
            let close = (a.original - b.original).abs() <= 1e-4 * a.original.abs().max(1e-2);
            assert!(
                close,
                "{name}: injection {} original value {} vs {}",
                e.id, a.original, b.original
            );
        }
        *counts.entry(e.outcome()).or_insert(0) += 1;
    }
    assert!(
        rounding * 20 <= engine.len(),
        "{name}: {rounding} of {} outcomes differ by rounding: too many",
        engine.len()
    );
    eprintln!(
        "{name}: {rounding} of {} differ within rounding noise",
        engine.len()
    );
    counts
}

/// A fixture model and its committed input batch.
fn fixture(name: &str) -> (Graph, Dataset) {
    let graph = load::load(repo(&format!("tests/fixtures/models/{name}.onnx"))).unwrap();
    let spec = DataSpec {
        path: repo(&format!("tests/fixtures/models/{name}.input.npy")),
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: 2,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    };
    (graph, Dataset::open(&spec).unwrap())
}

/// The cached, batched, dropping engine against the oracle.
fn engine_against_oracle(
    name: &str,
    graph: &Graph,
    data: &Dataset,
    inj: &[Injection],
    batch_size: usize,
) -> HashMap<Outcome, usize> {
    let dir = tempfile::tempdir().unwrap();
    let frontiers = cached(graph, data, inj, dir.path());
    let engine = Engine::new(
        graph,
        &frontiers,
        Options {
            batch_size,
            ..Options::default()
        },
    );
    assert_same(
        name,
        &engine.run(inj).unwrap(),
        &reference(graph, data, inj),
    )
}

fn demo() -> (Graph, Dataset) {
    let graph = load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let spec = DataSpec {
        path: repo("data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz"),
        labels: None,
        array: None,
        subset: Subset::First(40),
        correct_only: false,
        batch_size: 40,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    };
    (graph, Dataset::open(&spec).unwrap())
}

#[test]
fn cached_batched_dropping_engine_equals_the_full_forward_pass() {
    let (graph, data) = demo();
    let dir = tempfile::tempdir().unwrap();
    for faults_each in [1, 2] {
        let inj = injections(
            &graph,
            data.len(),
            200,
            faults_each,
            42 + faults_each as u64,
        );
        let frontiers = cached(&graph, &data, &inj, dir.path());
        let engine = Engine::new(
            &graph,
            &frontiers,
            Options {
                batch_size: 16,
                ..Options::default()
            },
        );
        let fast = engine.run(&inj).unwrap();
        let plain = reference(&graph, &data, &inj);
        let counts = assert_same("demo", &fast, &plain);
        eprintln!("demo, {faults_each} fault(s) each: {counts:?}");
        assert!(
            counts.get(&Outcome::Masked).copied().unwrap_or(0) > 0,
            "the test should exercise dropping"
        );
        assert!(
            fast.iter().any(|r| r.masked_after.is_some()),
            "some rows leave the batch early"
        );
    }
}

#[test]
fn branching_models_at_every_kind_of_cut() {
    for name in [
        "resnet18_ts17",
        "densenet121_ts17",
        "mobilenet_v2_ts17",
        "googlenet_ts17_nofold",
    ] {
        let (graph, data) = fixture(name);
        let inj = injections(&graph, data.len(), 60, 1, 7);
        let counts = engine_against_oracle(name, &graph, &data, &inj, 8);
        eprintln!("{name}: {counts:?}");
    }
}

/// A NaN inside the network runs on to the output, where it makes the
/// inference `due`; the node that first held it is recorded.
#[test]
fn nan_faults_run_to_the_output_and_are_due_there() {
    let (graph, data) = demo();
    let conv = graph
        .nodes
        .iter()
        .find(|n| n.op.name() == "Conv")
        .unwrap()
        .index;
    let nan: faultsweep::inject::Corrupt = Arc::new(|_| f64::NAN);
    let inj = vec![Injection {
        id: 0,
        sample: 3,
        faults: vec![NodeFault::neuron(conv, 100, nan)],
    }];
    let dir = tempfile::tempdir().unwrap();
    let frontiers = cached(&graph, &data, &inj, dir.path());
    let r = Engine::new(&graph, &frontiers, Options::default())
        .run(&inj)
        .unwrap()
        .remove(0);
    assert_eq!(r.outcome(), Outcome::Due);
    assert_eq!(r.first_nonfinite, Some(conv));
    assert!(r.sites[0].faulty.is_nan());
    assert!(
        r.diff.nonfinite && r.output.is_some(),
        "the row reached the output"
    );
}

#[test]
fn bad_fault_sites_are_errors() {
    let (graph, data) = demo();
    let frontiers = ComputedFrontiers { data: &data };
    let engine = Engine::new(&graph, &frontiers, Options::default());
    let inj = vec![Injection {
        id: 0,
        sample: 0,
        faults: vec![NodeFault::neuron(2, 1 << 40, flip(3))],
    }];
    let r = engine.run(&inj).unwrap().remove(0);
    assert!(
        r.error.as_deref().is_some_and(|e| e.contains("outside")),
        "{:?}",
        r.error
    );
    assert_eq!(r.outcome(), Outcome::Due);
    let none = vec![Injection {
        id: 1,
        sample: 0,
        faults: vec![],
    }];
    assert!(engine.run(&none).is_err());
}

#[test]
fn weight_faults_equal_the_full_forward_pass_with_the_faulty_weight() {
    let (graph, data) = demo();
    for mixed in [false, true] {
        let inj = weight_injections(&graph, data.len(), 150, mixed, 11);
        let counts = engine_against_oracle("demo weights", &graph, &data, &inj, 16);
        eprintln!("demo weights, mixed {mixed}: {counts:?}");
        assert!(counts.len() >= 2, "the faults should have several outcomes");
    }
}

#[test]
fn weight_faults_in_grouped_convolutions_and_branches() {
    // mobilenet_v2 has depthwise (grouped) Conv; resnet18 has Gemm and branches.
    for name in ["mobilenet_v2_ts17", "resnet18_ts17"] {
        let (graph, data) = fixture(name);
        let inj = weight_injections(&graph, data.len(), 60, true, 5);
        let counts = engine_against_oracle(name, &graph, &data, &inj, 8);
        eprintln!("{name} weights: {counts:?}");
    }
}

/// Single bit flips at the four corners of each injectable node's
/// positions (where a box meets the padding) and at a random position, in
/// a random channel: the geometry regional rows must get right.
fn corner_injections(graph: &Graph, samples: usize, seed: u64) -> Vec<Injection> {
    let info = faultsweep::inspect::inspect(graph).unwrap();
    let mut rng = Lcg(seed);
    let mut out = Vec::new();
    for node in info.nodes.iter().filter(|n| n.injectable) {
        let shape = &node.outputs[0].shape;
        let plane: i64 = shape[1..].iter().product();
        let (h, w) = match shape.len() {
            3 => (shape[1], shape[2]),
            _ => (1, plane),
        };
        for (y, x) in [(0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1), (-1, -1)] {
            let channel = rng.next(shape[0] as u64) as i64;
            let within = match y {
                -1 => rng.next(plane as u64) as i64,
                _ => y * w + x,
            };
            out.push(Injection {
                id: out.len(),
                sample: rng.next(samples as u64) as usize,
                faults: vec![NodeFault::neuron(
                    node.index,
                    channel * plane + within,
                    flip(rng.next(32) as u32),
                )],
            });
        }
    }
    out
}

/// The bit patterns of a float tensor (NaN compares equal to itself).
fn bits(t: &tch::Tensor) -> Vec<u32> {
    let values = Vec::<f32>::try_from(t.flatten(0, -1)).unwrap();
    values.into_iter().map(f32::to_bits).collect()
}

/// Regional rows (boxes recomputed beside the golden row) give bit for bit
/// the rows the batch computes: against the engine with dropping alone and
/// without dropping, every fault has the same outcome, the same output
/// bytes and the same first NaN/Inf node, and a row dropped as masked has
/// the golden output without dropping. One faulty row per batch and one
/// thread, so that a row's values do not depend on the rows beside it.
#[test]
fn regional_rows_equal_the_batch_rows_bit_for_bit() {
    // On several threads libtorch splits a batch of one row otherwise than
    // one of two, which moves the golden row's last bits (the golden row
    // runs alone while the faulty one is regional): the runs would differ
    // by that, as `--verify` allows, not by the regional rows.
    let _one_thread = Threads::set(1);
    // Squeeze-and-excitation blocks (global pools, per-channel scales) and
    // Concats of channels besides plain convolutions.
    let mut models: Vec<(&str, (Graph, Dataset))> = [
        "mobilenet_v2_ts17",
        "mobilenet_v3_small_ts17",
        "squeezenet1_1_ts17",
    ]
    .into_iter()
    .map(|name| (name, fixture(name)))
    .collect();
    models.extend(shared_mobilenet().map(|m| ("mobilenet_v2", m)));
    for (name, (graph, data)) in &models {
        let inj = corner_injections(graph, data.len(), 3);
        let dir = tempfile::tempdir().unwrap();
        let frontiers = cached(graph, data, &inj, dir.path());
        let run = |mode| {
            let options = Options {
                batch_size: 1,
                mode,
                ..Options::default()
            };
            Engine::new(graph, &frontiers, options).run(&inj).unwrap()
        };
        let (regional, dropping, full) = (
            run(Mode::Regional),
            run(Mode::DropMasked),
            run(Mode::FromCut),
        );
        let mut masked = 0;
        for ((r, d), f) in regional.iter().zip(&dropping).zip(&full) {
            let at = format!(
                "{name}: injection {} at node {}",
                r.id, inj[r.id].faults[0].node
            );
            assert_eq!(r.error, None, "{at}");
            assert_eq!(r.outcome(), d.outcome(), "{at}");
            assert_eq!(r.masked_after.is_some(), d.masked_after.is_some(), "{at}");
            assert_eq!(r.first_nonfinite, f.first_nonfinite, "{at}");
            let (site, full_site) = (&r.sites[0], &f.sites[0]);
            assert_eq!(site.faulty.to_bits(), full_site.faulty.to_bits(), "{at}");
            let full_out = f.output.as_ref().unwrap();
            let want = r.output.as_ref().unwrap_or(&f.golden);
            assert_eq!(bits(want), bits(full_out), "{at}: outputs differ");
            masked += usize::from(r.masked_after.is_some());
        }
        eprintln!("{name}: {} faults, {masked} dropped as masked", inj.len());
        assert!(
            masked > 0 && masked < inj.len(),
            "{name}: both kinds of rows"
        );
    }
}

/// A fault whose change rounds away in a squeeze-and-excitation block's
/// mean passes it as boxes: its row joins the batch after the global pool,
/// or never, and still ends as the batch row does.
#[test]
fn regional_rows_pass_global_pools_whose_mean_the_fault_leaves_unchanged() {
    let _one_thread = Threads::set(1);
    let (graph, data) = fixture("mobilenet_v3_small_ts17");
    let pool = (graph.nodes.iter())
        .position(|n| n.op == faultsweep::graph::Op::GlobalAveragePool)
        .unwrap();
    // Low mantissa bits of every position of the pool's input channel 0.
    let feeding = pool - 1;
    let info = faultsweep::inspect::inspect(&graph).unwrap();
    let plane: i64 = info.nodes[feeding].outputs[0].shape[1..].iter().product();
    let inj: Vec<Injection> = (0..plane * 2)
        .map(|k| Injection {
            id: k as usize,
            sample: (k % 2) as usize,
            faults: vec![NodeFault::neuron(feeding, k / 2, flip((k % 4) as u32))],
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let frontiers = cached(&graph, &data, &inj, dir.path());
    let run = |mode| {
        let options = Options {
            batch_size: 1,
            mode,
            ..Options::default()
        };
        Engine::new(&graph, &frontiers, options).run(&inj).unwrap()
    };
    let (regional, batch_rows) = (run(Mode::Regional), run(Mode::DropMasked));
    let mut passed = 0;
    for (r, b) in regional.iter().zip(&batch_rows) {
        assert_eq!(r.outcome(), b.outcome(), "injection {}", r.id);
        let want = b.output.as_ref().unwrap_or(&b.golden);
        assert_eq!(bits(r.output.as_ref().unwrap_or(&r.golden)), bits(want));
        let alive_past_pool = r.masked_after.is_none_or(|m| m > pool);
        passed += usize::from(alive_past_pool && r.whole_from.is_none_or(|w| w > pool + 1));
    }
    eprintln!("{passed} of {} rows passed the pool as boxes", inj.len());
    assert!(passed > 0, "no row passed the global pool as boxes");
}

/// The photos' MobileNetV2 inputs, when the shared model is there.
fn shared_mobilenet() -> Option<(Graph, Dataset)> {
    let [model] = crate::common::shared(["models/mobilenet_v2.onnx"])?;
    let spec = DataSpec {
        path: repo("tests/fixtures/mobilenet_photos.input.npy"),
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: 1,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    };
    Some((load::load(model).unwrap(), Dataset::open(&spec).unwrap()))
}

/// Cuts recomputed from an earlier frontier instead of read give the cached
/// rows bit for bit, alone or several samples at a time, and the engine's
/// results do not change. Every cut whose recomputed bits match is taken
/// here, whatever the timing says.
#[test]
fn recomputed_frontiers_are_the_cached_bits() {
    let _one_thread = Threads::set(1);
    let mut models = vec![
        ("mobilenet_v2_ts17", fixture("mobilenet_v2_ts17")),
        ("demo", demo()),
    ];
    models.extend(shared_mobilenet().map(|m| ("mobilenet_v2", m)));
    let mut recomputed = 0;
    for (name, (graph, data)) in &models {
        let inj = injections(graph, data.len(), 60, 1, 5);
        let dir = tempfile::tempdir().unwrap();
        let entries = fill_cache(graph, data, &inj, dir.path());
        let read = CachedFrontiers::read(open_entries(&entries));
        let chosen =
            CachedFrontiers::choose_by(graph, open_entries(&entries), data, |_, _| true).unwrap();
        eprintln!("{name}: recomputed {:?}", chosen.recomputed());
        recomputed += chosen.recomputed().len();
        let last = data.len() - 1;
        for (cut, _) in &entries {
            for samples in [vec![0], vec![last], vec![0, last]] {
                let want = read.rows(graph, *cut, &samples).unwrap();
                let got = chosen.rows(graph, *cut, &samples).unwrap();
                assert_eq!(want.len(), got.len(), "{name}: cut {cut}");
                for (w, g) in want.iter().zip(&got) {
                    assert_eq!(bits(w), bits(g), "{name}: cut {cut}, samples {samples:?}");
                }
            }
        }
        let run = |frontiers: &dyn Frontiers| {
            Engine::new(graph, frontiers, Options::default())
                .run(&inj)
                .unwrap()
        };
        for (r, c) in run(&read).iter().zip(&run(&chosen)) {
            assert_eq!(r.masked_after, c.masked_after, "{name}: injection {}", r.id);
            let out = |x: &InjectionResult| x.output.as_ref().map(bits);
            assert_eq!(out(r), out(c), "{name}: injection {}", r.id);
            assert_eq!(
                bits(&r.golden),
                bits(&c.golden),
                "{name}: injection {}",
                r.id
            );
        }
    }
    assert!(recomputed > 0, "some cut should be recomputed");
}

/// A cut can only be recomputed from an earlier one that is read.
#[test]
fn recomputing_needs_an_earlier_read_cut() {
    let (graph, data) = demo();
    let inj = injections(&graph, data.len(), 20, 1, 9);
    let dir = tempfile::tempdir().unwrap();
    let entries = fill_cache(&graph, &data, &inj, dir.path());
    let (first, last) = (entries[0].0, entries[entries.len() - 1].0);
    for (cut, from) in [(first, last), (last, last), (last, last - 1)] {
        if entries.iter().any(|(c, _)| *c == from) && from < cut {
            continue; // a valid source
        }
        let sources = [(cut, from)].into_iter().collect();
        let err = CachedFrontiers::new(open_entries(&entries), &data, sources)
            .err()
            .expect("an invalid source is refused");
        assert!(err.to_string().contains(&format!("cut {from}")), "{err}");
    }
}

/// Huge, infinite and NaN values written at every injectable node: the
/// engine (with and without dropping) reports the same first NaN/Inf node
/// as the plain pass, on the demo and on a MobileNetV2 whose ReLU6 bounds
/// let the engine skip most scans.
#[test]
fn first_nonfinite_nodes_equal_the_plain_pass() {
    for (name, (graph, data)) in [
        ("mobilenet_v2_ts17", fixture("mobilenet_v2_ts17")),
        ("demo", demo()),
    ] {
        let info = faultsweep::inspect::inspect(&graph).unwrap();
        let values: [f32; 3] = [3e38, f32::INFINITY, f32::NAN];
        let inj: Vec<Injection> = info
            .nodes
            .iter()
            .filter(|n| n.injectable)
            .flat_map(|n| {
                let middle = n.outputs[0].shape.iter().product::<i64>() / 2;
                values.map(|v| (n.index, middle, v))
            })
            .enumerate()
            .map(|(id, (node, index, v))| Injection {
                id,
                sample: id % data.len(),
                faults: vec![NodeFault::neuron(
                    node,
                    index,
                    Arc::new(move |_| f64::from(v)),
                )],
            })
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let frontiers = cached(&graph, &data, &inj, dir.path());
        let plain = reference(&graph, &data, &inj);
        for mode in [Mode::Regional, Mode::FromCut] {
            let options = Options {
                mode,
                ..Options::default()
            };
            let engine = Engine::new(&graph, &frontiers, options);
            for (e, p) in engine.run(&inj).unwrap().iter().zip(&plain) {
                let at = format!(
                    "{name}: injection {} at node {} ({})",
                    e.id, inj[e.id].faults[0].node, e.sites[0].faulty
                );
                assert_eq!(e.first_nonfinite, p.first_nonfinite, "{at}");
                assert_eq!(e.outcome(), p.outcome(), "{at}");
            }
        }
    }
}

#[test]
fn a_weight_fault_is_read_from_its_node_input_a_neuron_fault_after_its_node() {
    let graph = &load::load(repo("models/fashion_cnn.onnx")).unwrap();
    let inj = |faults| Injection {
        id: 0,
        sample: 0,
        faults,
    };
    let weight = inj(vec![NodeFault::weight(4, 1, 0, flip(3))]);
    assert_eq!((weight.start_cut(graph), weight.read_cut(graph)), (5, 4));
    let neuron = inj(vec![NodeFault::neuron(4, 0, flip(3))]);
    assert_eq!((neuron.start_cut(graph), neuron.read_cut(graph)), (5, 5));
    // A weight fault after the first faulted node is patched in flight.
    let both = inj(vec![
        NodeFault::neuron(2, 0, flip(3)),
        NodeFault::weight(6, 1, 0, flip(3)),
    ]);
    assert_eq!((both.start_cut(graph), both.read_cut(graph)), (3, 3));
}

#[test]
fn gemm_weight_faults_recompute_their_columns_in_every_layout() {
    use crate::common::one_node;
    use faultsweep::graph::Attr;
    use tch::{Kind, Tensor};
    tch::manual_seed(3);
    let (samples, k, n) = (3, 4, 5);
    let a = Tensor::randn([samples, k], (Kind::Float, tch::Device::Cpu));
    // B as [K, N] or transposed; C one per column ([N], [1, N]), one for
    // all ([1], which reaches every column) or none.
    for trans_b in [0, 1] {
        let b_shape = if trans_b == 1 { [n, k] } else { [k, n] };
        for c_shape in [vec![n], vec![1, n], vec![1], vec![]] {
            let mut constants = vec![Tensor::randn(b_shape, (Kind::Float, tch::Device::Cpu))];
            if !c_shape.is_empty() {
                constants.push(Tensor::randn(
                    c_shape.as_slice(),
                    (Kind::Float, tch::Device::Cpu),
                ));
            }
            let elements: Vec<(usize, i64)> = constants
                .iter()
                .enumerate()
                .flat_map(|(i, c)| (0..c.numel() as i64).map(move |e| (i + 1, e)))
                .collect();
            let graph = one_node(
                "Gemm",
                17,
                vec![("transB", Attr::Int(trans_b))],
                constants,
                1,
            );
            let inj: Vec<Injection> = elements
                .iter()
                .enumerate()
                .map(|(id, &(input, index))| Injection {
                    id,
                    sample: id % samples as usize,
                    faults: vec![NodeFault::weight(
                        0,
                        input,
                        index,
                        flip([30, 22, 0][id % 3]),
                    )],
                })
                .collect();
            let frontiers = InputFrontiers::new(vec![a.shallow_clone()]);
            let engine = Engine::new(&graph, &frontiers, Options::default());
            let fast = engine.run(&inj).unwrap();
            let plain: Vec<InjectionResult> = inj
                .iter()
                .map(|i| plain_run(&graph, &[a.narrow(0, i.sample as i64, 1)], i).unwrap())
                .collect();
            let name = format!("Gemm transB {trans_b}, C {c_shape:?}");
            let bits = |r: &InjectionResult| -> Vec<(u64, u64)> {
                r.sites
                    .iter()
                    .map(|s| (s.original.to_bits(), s.faulty.to_bits()))
                    .collect()
            };
            // Few, mostly huge faults: rounding may tell apart more than the
            // usual 5%, but nothing more than rounding may.
            for (e, p) in fast.iter().zip(&plain) {
                assert_eq!(bits(e), bits(p), "{name}: injection {}", e.id);
                let agree = agreement(e, p);
                assert!(agree != Agreement::Differs, "{name}: injection {}", e.id);
            }
        }
    }
}

/// When a box kernel fails its check (on CPUs whose box kernels round
/// otherwise than the full tensor's), the rows that used it are recomputed
/// over the whole value, each from its own sample's golden row: batches of
/// several samples share a kernel. Forced here, as no CPU fails every check.
#[test]
fn rows_of_a_failed_kernel_check_recompute_from_their_own_sample() {
    let (graph, data) = fixture("mobilenet_v2_ts17");
    let inj = corner_injections(&graph, data.len(), 7);
    let dir = tempfile::tempdir().unwrap();
    let frontiers = cached(&graph, &data, &inj, dir.path());
    // One batch: the rows of every sample meet at each node.
    let options = Options {
        batch_size: inj.len(),
        box_kernels: BoxKernels::Distrusted,
        ..Options::default()
    };
    let engine = Engine::new(&graph, &frontiers, options).run(&inj);
    let samples: std::collections::BTreeSet<usize> = inj.iter().map(|i| i.sample).collect();
    assert!(samples.len() > 1, "batches of several samples");
    assert_same(
        "failed checks",
        &engine.unwrap(),
        &reference(&graph, &data, &inj),
    );
}

/// Batches on two threads give every result of one thread, bit for bit and
/// in the same order: neuron faults (regional rows among them) and weight
/// faults, on a fixture MobileNetV2 and the demo model.
#[test]
fn batches_on_two_threads_give_the_results_of_one() {
    let _one_thread = Threads::set(1);
    for (name, (graph, data)) in [
        ("mobilenet_v2_ts17", fixture("mobilenet_v2_ts17")),
        ("demo", demo()),
    ] {
        let mut inj = corner_injections(&graph, data.len(), 5);
        let weights = weight_injections(&graph, data.len(), 40, true, 9);
        let first = inj.len();
        inj.extend(weights.into_iter().map(|w| Injection {
            id: w.id + first,
            ..w
        }));
        let dir = tempfile::tempdir().unwrap();
        let frontiers = cached(&graph, &data, &inj, dir.path());
        let run = |workers| {
            let options = Options {
                batch_size: 4,
                workers,
                ..Options::default()
            };
            Engine::new(&graph, &frontiers, options).run(&inj).unwrap()
        };
        // Two runs in one process: box kernels are checked per batch, so
        // what the first run found does not change the second's bits.
        let (one, two) = (run(1), run(2));
        assert_eq!(one.len(), inj.len());
        let some_bits = |t: &Option<tch::Tensor>| t.as_ref().map(bits);
        for (a, b) in one.iter().zip(&two) {
            let at = format!("{name}: injection {}", a.id);
            assert_eq!(a.id, b.id, "{at}: order");
            assert_eq!(a.outcome(), b.outcome(), "{at}");
            assert_eq!(a.masked_after, b.masked_after, "{at}");
            assert_eq!(a.first_nonfinite, b.first_nonfinite, "{at}");
            assert_eq!(bits(&a.golden), bits(&b.golden), "{at}: golden");
            assert_eq!(some_bits(&a.output), some_bits(&b.output), "{at}: output");
            let sites = |r: &InjectionResult| -> Vec<(u64, u64)> {
                let s = r.sites.iter();
                s.map(|v| (v.original.to_bits(), v.faulty.to_bits()))
                    .collect()
            };
            assert_eq!(sites(a), sites(b), "{at}: sites");
        }
        assert_eq!(tch::get_num_threads(), 1, "the caller's threads come back");
    }
}

/// A single neuron fault in the output of a model's last node, a
/// convolution, runs as a box to the end: it joins the batch there for the
/// output (without, the engine had no output for it and called it `due`).
#[test]
fn a_box_that_reaches_the_output_joins_for_it() {
    use crate::common::one_node;
    use tch::{Kind, Tensor};
    tch::manual_seed(5);
    let options = (Kind::Float, tch::Device::Cpu);
    let x = Tensor::randn([3, 3, 6, 6], options);
    let graph = one_node(
        "Conv",
        17,
        vec![],
        vec![Tensor::randn([4, 3, 3, 3], options)],
        1,
    );
    let frontiers = InputFrontiers::new(vec![x.shallow_clone()]);
    let inj: Vec<Injection> = (0..24)
        .map(|id| Injection {
            id,
            sample: id % 3,
            // Output 4 x 4 x 4; bits of the mantissa and the exponent.
            faults: vec![NodeFault::neuron(
                0,
                (id * 5 % 64) as i64,
                flip(12 + id as u32 % 18),
            )],
        })
        .collect();
    let fast = Engine::new(&graph, &frontiers, Options::default())
        .run(&inj)
        .unwrap();
    let plain: Vec<InjectionResult> = inj
        .iter()
        .map(|i| plain_run(&graph, &[x.narrow(0, i.sample as i64, 1)], i).unwrap())
        .collect();
    let counts = assert_same("Conv output", &fast, &plain);
    assert!(!counts.contains_key(&Outcome::Due), "{counts:?}");
}
