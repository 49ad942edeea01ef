//! Tasks other than classification (`task:`): the detection decoders
//! against a numpy oracle on onnxruntime's outputs
//! (`scripts/make_task_fixtures.py`), and campaigns of each task whose
//! outcomes agree with their measures and with the full forward pass
//! (`--verify`).

use std::path::{Path, PathBuf};

use faultsweep::classify::detect::{Decoder, Detection, Detector};
use tch::Tensor;

use crate::common::{
    check_parity, column, fixture_scenario, read_npy, root, run_campaign, run_verified,
};

fn tasks() -> PathBuf {
    root().join("tests/fixtures/tasks")
}

/// A scenario over fixture `model` of `folder` with `body` after its data.
fn scenario(dir: &Path, folder: &Path, model: &str, body: &str) -> PathBuf {
    fixture_scenario(dir, folder, model, 5, body)
}

/// The model's outputs on each sample alone, after checking them against
/// onnxruntime's.
fn outputs_per_sample(model: &str, names: &[&str]) -> Vec<Vec<Tensor>> {
    let graph = faultsweep::load::load(tasks().join(format!("{model}.onnx"))).unwrap();
    let x = read_npy(&tasks().join(format!("{model}.input.npy")));
    let n = x.size()[0];
    let per: Vec<Vec<Tensor>> = (0..n)
        .map(|i| graph.forward(&[x.narrow(0, i, 1)]).unwrap())
        .collect();
    for (k, name) in names.iter().enumerate() {
        let want = read_npy(&tasks().join(format!("{model}.{name}.expected.npy")));
        let got = Tensor::cat(
            &per.iter().map(|o| o[k].shallow_clone()).collect::<Vec<_>>(),
            0,
        );
        check_parity(&got, &want).unwrap_or_else(|e| panic!("{model}.{name}: {e}"));
    }
    per
}

/// The oracle's boxes: per sample, x1 y1 x2 y2 score class.
fn oracle(model: &str) -> Vec<Vec<Detection>> {
    let text = std::fs::read_to_string(tasks().join(format!("{model}.boxes.json"))).unwrap();
    type Row = (f32, f32, f32, f32, f32, i64);
    let v: Vec<Vec<Row>> = serde_json::from_str(&text).unwrap();
    v.into_iter()
        .map(|s| {
            s.into_iter()
                .map(|(x1, y1, x2, y2, score, class)| Detection {
                    x1,
                    y1,
                    x2,
                    y2,
                    score,
                    class,
                })
                .collect()
        })
        .collect()
}

fn decoder_agrees_with_the_oracle(model: &str, names: &[&str], detector: Detector) {
    let outputs = outputs_per_sample(model, names);
    let want = oracle(model);
    assert_eq!(outputs.len(), want.len());
    let mut total = 0;
    for (i, (out, want)) in outputs.iter().zip(&want).enumerate() {
        let got = detector.decode(out, 0).unwrap();
        assert_eq!(
            got.len(),
            want.len(),
            "{model} sample {i}: {got:?} vs {want:?}"
        );
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.class, w.class, "{model} sample {i}");
            for (a, b) in [
                (g.x1, w.x1),
                (g.y1, w.y1),
                (g.x2, w.x2),
                (g.y2, w.y2),
                (g.score, w.score),
            ] {
                assert!(
                    (a - b).abs() <= 1e-4 * b.abs().max(1.0),
                    "{model} sample {i}: {g:?} vs {w:?}"
                );
            }
        }
        total += got.len();
    }
    assert!(total > 0, "{model}: the oracle has boxes");
}

#[test]
fn boxes_decoded_by_the_graph_are_read_thresholded_and_suppressed_as_the_oracle_does() {
    let detector = Detector {
        decoder: Decoder::Decoded {
            output: 0,
            columns: [0, 1, 2, 3, 4, 5],
        },
        score: 0.3,
        nms: Some(0.5),
        class_agnostic: false,
        match_iou: 0.5,
    };
    decoder_agrees_with_the_oracle("decoded", &["detections"], detector);
}

#[test]
fn centernet_heads_decode_to_the_oracles_boxes() {
    let detector = Detector {
        decoder: Decoder::CenterNet {
            heatmap: 0,
            wh: 1,
            channels_last: true,
            stride: 4.0,
            top_k: 20,
        },
        score: 0.3,
        nms: Some(0.4),
        class_agnostic: false,
        match_iou: 0.5,
    };
    decoder_agrees_with_the_oracle("centernet", &["keypoints", "wh"], detector);
}

#[test]
fn centerface_heads_decode_to_the_oracles_boxes() {
    let detector = Detector {
        decoder: Decoder::CenterFace {
            heatmap: 0,
            scale: 1,
            offset: 2,
            stride: 4.0,
        },
        score: 0.5,
        nms: Some(0.3),
        class_agnostic: false,
        match_iou: 0.5,
    };
    decoder_agrees_with_the_oracle("centerface", &["heatmap", "scale", "offset"], detector);
}

/// Runs a verified campaign and returns its rows; every outcome is among
/// those the task can give.
fn verified(dir: &Path, model: &str, body: &str, folder: &Path) -> Vec<Vec<String>> {
    let path = scenario(dir, folder, model, body);
    let rows = run_verified(
        &path,
        &dir.join(format!("out_{model}")),
        &dir.join("cache"),
        60,
    );
    assert!(rows.len() > 1);
    rows
}

/// Detection rows: sde exactly when a box was added or lost, benign with
/// every golden box matched; some of each.
fn detection_rows_are_ivmod(rows: &[Vec<String>], want_benign: bool) {
    let outcome = column(rows, "outcome");
    let (fp, fneg) = (
        column(rows, "false_positives"),
        column(rows, "false_negatives"),
    );
    let matched = column(rows, "matched");
    let mut seen = std::collections::BTreeSet::new();
    for i in 0..outcome.len() {
        seen.insert(outcome[i].clone());
        match outcome[i].as_str() {
            "sde" => assert!(fp[i] != "0" || fneg[i] != "0", "row {i}"),
            "benign" => {
                assert_eq!((fp[i].as_str(), fneg[i].as_str()), ("0", "0"), "row {i}");
                assert!(!matched[i].is_empty(), "row {i}");
            }
            "masked" => assert_eq!((fp[i].as_str(), fneg[i].as_str()), ("0", "0"), "row {i}"),
            _ => assert!(fp[i].is_empty(), "a DUE has no measures: row {i}"),
        }
    }
    assert!(seen.contains("sde"), "{seen:?}");
    assert!(!want_benign || seen.contains("benign"), "{seen:?}");
}

#[test]
fn a_centerface_campaign_counts_lost_and_added_faces_and_agrees_with_full_forward() {
    let dir = tempfile::tempdir().unwrap();
    let body = "task: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: scale\n  offset: offset\n  nms: 0.3\ntargets:\n  layers:\n    ops: [Conv]\ncounts:\n  injections: 300\n";
    let rows = verified(dir.path(), "centerface", body, &tasks());
    detection_rows_are_ivmod(&rows, true);
}

#[test]
fn a_centernet_campaign_on_channels_last_heads_agrees_with_full_forward() {
    let dir = tempfile::tempdir().unwrap();
    let body = "task: detection\ndetection:\n  decoder: centernet\n  heatmap: keypoints\n  wh: wh\n  channels_last: true\n  top_k: 20\n  score: 0.3\n  nms: 0.4\ntargets:\n  layers:\n    ops: [Conv]\ncounts:\n  injections: 300\n";
    let rows = verified(dir.path(), "centernet", body, &tasks());
    detection_rows_are_ivmod(&rows, true);
    summary_gives_the_task_measures(&dir.path().join("out_centernet"), &rows);
}

/// summary.json's task measures are the rows' own, counted by hand, and
/// summary.md gives them instead of a top-k rate, which a detector has not.
fn summary_gives_the_task_measures(out: &Path, rows: &[Vec<String>]) {
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    for name in ["false_positives", "false_negatives", "max_iou_shift"] {
        let values: Vec<f64> = (column(rows, name).iter())
            .filter_map(|c| c.parse().ok())
            .collect();
        let m = &json["measures"][name];
        assert_eq!(m["runs"], values.len(), "{name}");
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert!(
            (m["mean"].as_f64().unwrap() - mean).abs() < 1e-8,
            "{name}: {m} {mean}"
        );
        let max = values.iter().copied().fold(f64::MIN, f64::max);
        assert_eq!(m["max"].as_f64().unwrap(), max, "{name}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        md.contains("## task measures") && !md.contains("top5"),
        "{md}"
    );
}

#[test]
fn a_campaign_on_boxes_the_graph_decodes_flags_moved_boxes() {
    let dir = tempfile::tempdir().unwrap();
    let body = "task: detection\ndetection:\n  columns: [x1, y1, x2, y2, score, class]\n  score: 0.3\n  nms: 0.5\nfault:\n  bits: {range: [23, 30]}\ncounts:\n  injections: 200\n";
    let rows = verified(dir.path(), "decoded", body, &tasks());
    detection_rows_are_ivmod(&rows, false);
}

#[test]
fn class_agnostic_nms_keeps_fewer_golden_boxes_and_agrees_with_full_forward() {
    let dir = tempfile::tempdir().unwrap();
    let mut golden_boxes = vec![];
    for agnostic in [false, true] {
        let sub = dir.path().join(agnostic.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let body = format!("task: detection\ndetection:\n  score: 0.05\n  nms: 0.1\n  class_agnostic: {agnostic}\ncounts:\n  injections: 100\n");
        let rows = verified(&sub, "decoded", &body, &tasks());
        detection_rows_are_ivmod(&rows, true);
        let golden =
            std::fs::read_to_string(sub.join("out_decoded/detections/golden.json")).unwrap();
        golden_boxes.push(golden.matches("\"bbox\"").count());
    }
    assert!(golden_boxes[1] < golden_boxes[0], "{golden_boxes:?}");
}

#[test]
fn segmentation_is_sde_when_more_pixels_change_class_than_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let mut by_threshold = vec![];
    for threshold in ["0", "0.02"] {
        let sub = dir.path().join(threshold);
        std::fs::create_dir_all(&sub).unwrap();
        let body = format!("task: segmentation\nsegmentation:\n  threshold: {threshold}\nfault:\n  bits: {{range: [26, 30]}}\ncounts:\n  injections: 300\n");
        let rows = verified(&sub, "seg", &body, &tasks());
        let (outcome, changed, miou) = (
            column(&rows, "outcome"),
            column(&rows, "pixels_changed"),
            column(&rows, "miou"),
        );
        let t: f64 = threshold.parse().unwrap();
        for i in 0..outcome.len() {
            if outcome[i] == "due" {
                continue;
            }
            let c: f64 = changed[i].parse().unwrap();
            let m: f64 = miou[i].parse().unwrap();
            assert_eq!(outcome[i] == "sde", c > t, "row {i}: {c}");
            assert!(
                (0.0..=1.0).contains(&m) && (c == 0.0) == (m == 1.0),
                "row {i}: {c} {m}"
            );
        }
        by_threshold.push(outcome.iter().filter(|o| *o == "sde").count());
    }
    assert!(by_threshold[0] > by_threshold[1], "{by_threshold:?}");
    assert!(by_threshold[1] > 0, "{by_threshold:?}");
}

#[test]
fn tokens_are_sde_when_a_position_changes_its_top1() {
    // map_output's [N, 2, 5]: two positions over five tokens.
    let dir = tempfile::tempdir().unwrap();
    let outputs = root().join("tests/fixtures/outputs");
    let body = "task: tokens\ntargets:\n  layers:\n    names: [conv]\ncounts:\n  injections: 200\n";
    let rows = verified(dir.path(), "map_output", body, &outputs);
    let (outcome, changed) = (column(&rows, "outcome"), column(&rows, "positions_changed"));
    for i in 0..outcome.len() {
        match outcome[i].as_str() {
            "sde" => assert!(changed[i] != "0" && !changed[i].is_empty()),
            "benign" | "masked" => assert_eq!(changed[i], "0"),
            _ => {}
        }
    }
    assert!(outcome.iter().any(|o| o == "sde") && outcome.iter().any(|o| o == "benign"));
}

#[test]
fn values_are_sde_beyond_the_tolerance_only() {
    let dir = tempfile::tempdir().unwrap();
    let outputs = root().join("tests/fixtures/outputs");
    let body = "task: values\nvalues:\n  abs: 0.001\n  rel: 0.01\nfault:\n  bits: {range: [0, 30]}\ncounts:\n  injections: 300\n";
    let rows = verified(dir.path(), "two_outputs", body, &outputs);
    let (outcome, abs, rel) = (
        column(&rows, "outcome"),
        column(&rows, "max_abs_change"),
        column(&rows, "max_rel_change"),
    );
    for i in 0..outcome.len() {
        if outcome[i] == "benign" {
            let a: f64 = abs[i].parse().unwrap();
            let r: f64 = rel[i].parse().unwrap();
            assert!(a > 0.0 && r > 0.0, "row {i}: {a} {r}");
        }
        if outcome[i] == "sde" {
            let a: f64 = abs[i].parse().unwrap();
            assert!(a > 0.001, "row {i}: {a}");
        }
    }
    assert!(outcome.iter().any(|o| o == "sde") && outcome.iter().any(|o| o == "benign"));
}

#[test]
fn task_settings_are_checked_naming_the_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("task: detection\n", "task", "needs a `detection:` block"),
        ("segmentation:\n  threshold: 0.1\n", "segmentation", "set `task: segmentation`"),
        ("task: segmentation\nsegmentation:\n  threshold: 1.5\n", "segmentation.threshold", "below 1"),
        ("task: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: nope\n  offset: offset\n", "detection.scale", "'nope' is not an output"),
        ("task: detection\ndetection:\n  columns: [x1, y1, x2, y2, score, klass]\n", "detection.columns[5]", "'klass' is not one of"),
        ("task: detection\ndetection:\n  score: 2\n", "detection.score", "outside [0, 1]"),
        ("task: values\nvalues:\n  abs: -1\n", "values.abs", "at least 0"),
        ("task: regression\n", "task", "unknown variant"),
        ("task: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: scale\n  offset: offset\n  wh: wh\n", "detection.wh", "not read by decoder centerface"),
    ];
    for (i, (text, key, msg)) in cases.iter().enumerate() {
        let body = format!("{text}counts:\n  injections: 10\n");
        let sub = dir.path().join(i.to_string());
        std::fs::create_dir_all(&sub).unwrap();
        let path = scenario(&sub, &tasks(), "centerface", &body);
        let run = run_campaign(&path, &sub.join("out"), &[], &sub.join("cache"));
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(8), "{text}: {stderr}");
        assert!(
            stderr.contains(key) && stderr.contains(msg),
            "{text}: {stderr}"
        );
        assert!(
            stderr.contains(".yml:"),
            "the line is named: {text}: {stderr}"
        );
    }
}

#[test]
fn a_decoder_reading_an_output_of_the_wrong_shape_fails_before_the_campaign() {
    // CenterNet heads read from boxes ([N, K, 6]): the first sample's
    // outputs already show it, and the error names `task`.
    let dir = tempfile::tempdir().unwrap();
    let body = "task: detection\ndetection:\n  decoder: centernet\n  heatmap: detections\n  wh: detections\ncounts:\n  injections: 10\n";
    let path = scenario(dir.path(), &tasks(), "decoded", body);
    let run = run_campaign(
        &path,
        &dir.path().join("out"),
        &[],
        &dir.path().join("cache"),
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("task") && stderr.contains("[C, H, W]"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/injections.csv").exists());
}

/// A folder of two 40x30 RGB images with distinct pixels.
fn photo_folder(dir: &Path) -> PathBuf {
    let folder = dir.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    for k in 0..2u8 {
        let img = image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([x as u8 * 6, y as u8 * 8, 100 + k * 50])
        });
        img.save(folder.join(format!("p{k}.png"))).unwrap();
    }
    folder
}

fn photo_data(folder: &Path, pre: faultsweep::data::Preprocess) -> faultsweep::data::Dataset {
    let spec = faultsweep::data::DataSpec {
        path: folder.to_path_buf(),
        labels: None,
        array: None,
        subset: faultsweep::data::Subset::All,
        correct_only: false,
        batch_size: 2,
        window: faultsweep::data::default_window(),
        preprocess: pre,
    };
    faultsweep::data::Dataset::open(&spec).unwrap()
}

#[test]
fn images_resize_to_an_exact_size_and_go_channels_last_for_nhwc_models() {
    use faultsweep::data::{AxisOrder, Preprocess};
    let dir = tempfile::tempdir().unwrap();
    let folder = photo_folder(dir.path());
    let squash = Preprocess {
        resize_to: Some([16, 24]),
        scale: Some(1.0),
        ..Default::default()
    };
    let nchw = photo_data(&folder, squash.clone()).batch(0..2).unwrap();
    assert_eq!(nchw.inputs[0].size(), vec![2, 3, 16, 24]);
    // 0..255 kept with scale 1.
    assert!(nchw.inputs[0].max().double_value(&[]) > 200.0);
    let nhwc = Preprocess {
        layout: AxisOrder::Nhwc,
        ..squash
    };
    let nhwc = photo_data(&folder, nhwc).batch(0..2).unwrap();
    assert_eq!(nhwc.inputs[0].size(), vec![2, 16, 24, 3]);
    assert!(nhwc.inputs[0].equal(&nchw.inputs[0].permute([0, 2, 3, 1])));
    // Not both resizes.
    let both = Preprocess {
        resize: Some(20),
        resize_to: Some([16, 24]),
        ..Default::default()
    };
    let err = photo_data(&folder, both)
        .batch(0..2)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("not both"), "{err}");
}

#[test]
fn a_declared_input_shape_the_model_is_not_used_at_is_replaced_by_the_scenarios() {
    // The fixture declares [N, 3, 32, 32]; the data is 48x64: refused as
    // declared, run with `model.input_shape`.
    let dir = tempfile::tempdir().unwrap();
    let x = Tensor::rand([2, 3, 48, 64], (tch::Kind::Float, tch::Device::Cpu)) * 255.0;
    let data = dir.path().join("big.npy");
    x.write_npy(&data).unwrap();
    let model = tasks().join("centerface.onnx");
    let body = |shape: &str| {
        format!(
            "name: big\nseed: 1\nmodel:\n  path: {}\n{shape}data:\n  path: {}\ntask: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: scale\n  offset: offset\ncounts:\n  injections: 20\n",
            model.display(),
            data.display()
        )
    };
    let plain = dir.path().join("plain.yml");
    std::fs::write(&plain, body("")).unwrap();
    let run = run_campaign(
        &plain,
        &dir.path().join("a"),
        &[],
        &dir.path().join("cache"),
    );
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("expected shape [?, 3, 32, 32]"));
    let given = dir.path().join("given.yml");
    std::fs::write(&given, body("  input_shape: [~, 3, 48, 64]\n")).unwrap();
    let rows = run_verified(&given, &dir.path().join("b"), &dir.path().join("cache"), 20);
    assert_eq!(rows.len(), 21);
}

#[test]
fn a_model_with_its_batch_fixed_runs_batched_once_its_tail_is_dropped_and_its_batch_freed() {
    // fixed.onnx fixes the batch at 1 in its input and Reshape targets, and
    // its second output merges the batch into another axis.
    let dir = tempfile::tempdir().unwrap();
    let text = |edits: &str| {
        format!(
            "name: fixed\nseed: 5\nmodel:\n  path: {}\n{edits}data:\n  path: {}\n  batch_size: 4\ntask: segmentation\ncounts:\n  injections: 120\n",
            tasks().join("fixed.onnx").display(),
            tasks().join("fixed.input.npy").display(),
        )
    };
    let (filed, freed) = (dir.path().join("filed.yml"), dir.path().join("freed.yml"));
    std::fs::write(&filed, text("")).unwrap();
    std::fs::write(&freed, text("  outputs: [y]\n  free_batch: true\n")).unwrap();
    let run = run_campaign(
        &filed,
        &dir.path().join("a"),
        &[],
        &dir.path().join("cache"),
    );
    assert!(!run.status.success());
    let rows = run_verified(&freed, &dir.path().join("b"), &dir.path().join("cache"), 60);
    let outcome = column(&rows, "outcome");
    assert!(outcome.iter().any(|o| o == "sde"), "{outcome:?}");
    assert!(!rows[0].contains(&"tail".to_string()));
    // The edited model on a batch of 5 equals onnxruntime's outputs one
    // sample at a time.
    let edits = faultsweep::load::Edits {
        outputs: Some(vec!["y".into()]),
        free_batch: true,
    };
    let graph = faultsweep::load::load_with(tasks().join("fixed.onnx"), &edits).unwrap();
    assert_eq!(graph.outputs.len(), 1);
    let x = read_npy(&tasks().join("fixed.input.npy"));
    let y = graph.forward(&[x]).unwrap().remove(0);
    let want = read_npy(&tasks().join("fixed.y.expected.npy"));
    assert_eq!(y.size(), vec![5, 4, 8, 8]);
    check_parity(&y, &want).unwrap();
    // An output that does not exist is named.
    let bad = faultsweep::load::Edits {
        outputs: Some(vec!["nope".into()]),
        free_batch: false,
    };
    let err = faultsweep::load::load_with(tasks().join("fixed.onnx"), &bad)
        .err()
        .unwrap();
    assert!(err.to_string().contains("'nope' is not an output"), "{err}");
}

#[test]
fn a_detection_campaign_writes_coco_results_and_pictures_of_its_worst_sde_runs() {
    let dir = tempfile::tempdir().unwrap();
    let body = "task: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: scale\n  offset: offset\n  nms: 0.3\n  pictures: 3\ntargets:\n  layers:\n    ops: [Conv]\nfault:\n  bits: {range: [27, 30]}\ncounts:\n  injections: 200\n";
    let rows = verified(dir.path(), "centerface", body, &tasks());
    let out = dir.path().join("out_centerface/detections");
    // The golden boxes are the oracle's, sample by sample.
    let golden: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("golden.json")).unwrap()).unwrap();
    let want = oracle("centerface");
    assert_eq!(golden.len(), want.iter().map(Vec::len).sum::<usize>());
    for g in &golden {
        let image = g["image_id"].as_u64().unwrap() as usize;
        let bbox: Vec<f64> = serde_json::from_value(g["bbox"].clone()).unwrap();
        let found = want[image].iter().any(|w| {
            (f64::from(w.x1) - bbox[0]).abs() < 1e-3
                && (f64::from(w.x2 - w.x1) - bbox[2]).abs() < 1e-3
                && (f64::from(w.score) - g["score"].as_f64().unwrap()).abs() < 1e-5
        });
        assert!(found, "{g}");
    }
    // Every SDE run has its boxes in sde.json (or none, when it lost all).
    let sde: Vec<serde_json::Value> =
        serde_json::from_str(&std::fs::read_to_string(out.join("sde.json")).unwrap()).unwrap();
    let outcome = column(&rows, "outcome");
    let runs: std::collections::BTreeSet<u64> =
        sde.iter().map(|e| e["run"].as_u64().unwrap()).collect();
    let sde_rows = outcome.iter().filter(|o| *o == "sde").count();
    assert!(sde_rows >= 3, "{sde_rows}");
    assert!(!runs.is_empty() && runs.len() <= sde_rows);
    for k in 1..=3 {
        let png = image::open(out.join(format!("worst-{k}.png"))).unwrap();
        assert_eq!((png.width(), png.height()), (32, 32));
    }
    assert!(!out.join("worst-4.png").exists());
    // AP50 against golden: below 1 for the SDE runs, higher over all runs.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).unwrap()).unwrap();
    let (sde_ap, all_ap) = (
        summary["ap50_sde_mean"].as_f64().unwrap(),
        summary["ap50_all_runs"].as_f64().unwrap(),
    );
    assert!(
        (0.0..1.0).contains(&sde_ap) && sde_ap < all_ap && all_ap <= 1.0,
        "{summary}"
    );
    assert_eq!(summary["sde_runs"].as_u64().unwrap() as usize, sde_rows);
    assert_eq!(summary["sde_runs_not_sde_when_rerun"].as_u64(), Some(0));
}

fn close(a: [f64; 4], b: [f64; 4]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-9)
}

#[test]
fn coco_and_yolo_annotations_read_as_boxes_in_the_original_pixels() {
    use faultsweep::data::annotations::{yolo, Coco};
    let dir = tasks().join("annotations");
    let coco = Coco::open(&dir.join("coco.json")).unwrap();
    // Classes are the categories' ranks by id (1, 3, 90: 0, 1, 2); the
    // crowd box is left out; images meet by file name.
    let a = coco.boxes(Path::new("/data/a.jpg"), (40, 20)).unwrap();
    assert_eq!(a.len(), 1);
    assert!(close(a[0].corners, [4.0, 2.0, 14.0, 8.0]) && a[0].class == 1);
    assert_eq!(
        coco.boxes(Path::new("b.jpg"), (10, 10)).unwrap()[0].class,
        2
    );
    // An image the file does not list, or lists at another size.
    let err = coco.boxes(Path::new("c.jpg"), (10, 10)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("coco.json") && msg.contains("c.jpg") && err.exit_code() == 4,
        "{msg}"
    );
    let msg = coco
        .boxes(Path::new("b.jpg"), (20, 10))
        .unwrap_err()
        .to_string();
    assert!(msg.contains("10x10") && msg.contains("20x10"), "{msg}");
    // Malformed JSON names the file (exit 4); a missing file is exit 6.
    let tmp = tempfile::tempdir().unwrap();
    let broken = tmp.path().join("broken.json");
    std::fs::write(&broken, "{\"images\": [").unwrap();
    let err = Coco::open(&broken).err().unwrap();
    assert!(
        err.to_string().contains("broken.json") && err.exit_code() == 4,
        "{err}"
    );
    assert_eq!(
        Coco::open(&tmp.path().join("none.json"))
            .err()
            .unwrap()
            .exit_code(),
        6
    );
    // YOLO: centre and size times the image's; blank lines skipped; an
    // image without a file has no object.
    let a = yolo(&dir.join("yolo/a.txt"), (40, 20)).unwrap();
    assert_eq!(a.len(), 2);
    assert!(close(a[0].corners, [5.0, 2.0, 15.0, 8.0]) && a[0].class == 1);
    assert!(close(a[1].corners, [0.0, 0.0, 40.0, 20.0]) && a[1].class == 0);
    assert!(yolo(&dir.join("yolo/none.txt"), (40, 20))
        .unwrap()
        .is_empty());
    let err = yolo(&dir.join("yolo-bad/a.txt"), (40, 20)).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("yolo-bad/a.txt") && msg.contains("line 2:") && err.exit_code() == 4,
        "{msg}"
    );
}

/// The CenterFace fixture's samples as 64x64 PNGs (each pixel doubled),
/// `img0.png`, ...
fn centerface_pngs(folder: &Path) {
    std::fs::create_dir_all(folder).unwrap();
    let x = read_npy(&tasks().join("centerface.input.npy"));
    for i in 0..x.size()[0] {
        let hwc = x.get(i).round().clamp(0.0, 255.0).to_kind(tch::Kind::Uint8);
        let bytes =
            Vec::<u8>::try_from(hwc.permute([1, 2, 0]).contiguous().flatten(0, -1)).unwrap();
        let small = image::RgbImage::from_raw(32, 32, bytes).unwrap();
        let big = image::imageops::resize(&small, 64, 64, image::imageops::FilterType::Nearest);
        big.save(folder.join(format!("img{i}.png"))).unwrap();
    }
}

/// A CenterFace campaign over the PNGs of `data`, squashed back to 32x32,
/// with `annotations` (a YAML line under `detection:`, or empty).
fn truth_scenario(dir: &Path, data: &Path, annotations: &str, injections: u32) -> PathBuf {
    let text = format!(
        "name: truth\nseed: 5\nmodel:\n  path: {}\ndata:\n  path: {}\n  preprocess:\n    scale: 1\n    resize_to: [32, 32]\ntask: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: scale\n  offset: offset\n  nms: 0.3\n  pictures: 0\n{annotations}targets:\n  layers:\n    ops: [Conv]\nfault:\n  bits: {{range: [27, 30]}}\ncounts:\n  injections: {injections}\n",
        tasks().join("centerface.onnx").display(),
        data.display()
    );
    let path = dir.join(format!("truth{injections}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn summary_of(out: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(out.join("detections/summary.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn ap50_against_ground_truth_that_is_the_golden_boxes_is_one() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cache) = (dir.path(), dir.path().join("cache"));
    let data = root.join("images");
    centerface_pngs(&data);
    let first = truth_scenario(root, &data, "", 20);
    run_verified(&first, &root.join("golden"), &cache, 5);
    let golden: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(root.join("golden/detections/golden.json")).unwrap(),
    )
    .unwrap();
    assert!(!golden.is_empty());
    assert!(summary_of(&root.join("golden"))
        .get("ap50_golden_vs_truth")
        .unwrap()
        .is_null());
    // The golden boxes in the photos' pixels (twice the input's), and a
    // crowd box over a whole image that must not count.
    let images: Vec<serde_json::Value> = (0..4)
        .map(|i| serde_json::json!({"id": i, "file_name": format!("img{i}.png"), "width": 64, "height": 64}))
        .collect();
    let mut annotations: Vec<serde_json::Value> = golden
        .iter()
        .map(|g| {
            let bbox: Vec<f64> = serde_json::from_value(g["bbox"].clone()).unwrap();
            let bbox: Vec<f64> = bbox.iter().map(|v| v * 2.0).collect();
            serde_json::json!({"image_id": g["image_id"], "bbox": bbox, "category_id": 1})
        })
        .collect();
    annotations.push(
        serde_json::json!({"image_id": 0, "bbox": [0, 0, 64, 64], "category_id": 1, "iscrowd": 1}),
    );
    let coco = serde_json::json!({"images": images, "annotations": annotations, "categories": [{"id": 1}]});
    let coco_path = root.join("truth.json");
    std::fs::write(&coco_path, coco.to_string()).unwrap();
    let key = format!("  annotations: {}\n", coco_path.display());
    let rows = run_verified(
        &truth_scenario(root, &data, &key, 200),
        &root.join("coco"),
        &cache,
        20,
    );
    let summary = summary_of(&root.join("coco"));
    let ap = |k: &str| {
        summary[k]
            .as_f64()
            .unwrap_or_else(|| panic!("{k}: {summary}"))
    };
    assert_eq!(ap("ap50_golden_vs_truth"), 1.0, "{summary}");
    let (sde, all) = (ap("ap50_sde_vs_truth"), ap("ap50_all_vs_truth"));
    assert!(column(&rows, "outcome").iter().any(|o| o == "sde"));
    assert!(
        (0.0..1.0).contains(&sde) && sde < all && all <= 1.0,
        "{summary}"
    );
    // Shards leave the annotations to the merge, which gives the single
    // run's detections and APs.
    let sc = truth_scenario(root, &data, &key, 200);
    let shards: Vec<PathBuf> = (1..=2).map(|i| root.join(format!("shard{i}"))).collect();
    for (i, out) in shards.iter().enumerate() {
        let (sc, out, shard) = (
            sc.to_str().unwrap(),
            out.to_str().unwrap(),
            format!("{}/2", i + 1),
        );
        let run = crate::common::faultsweep(
            &["run", sc, "--shard", &shard, "--out", out, "--quiet"],
            &cache,
        );
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    let merged = root.join("merged");
    let mut args = vec!["merge", merged.to_str().unwrap()];
    args.extend(shards.iter().map(|p| p.to_str().unwrap()));
    let run = crate::common::faultsweep(&args, &cache);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    for f in ["summary.json", "sde.json", "golden.json"] {
        let read = |dir: &str| std::fs::read(root.join(dir).join("detections").join(f)).unwrap();
        assert!(
            read("coco") == read("merged"),
            "detections/{f} of the merge differs"
        );
    }
    // The provenance names the ground truth the APs come from.
    let provenance = |dir: &str| -> serde_json::Value {
        let text = std::fs::read_to_string(root.join(dir).join("provenance.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    };
    let coco_hash = blake3::hash(&std::fs::read(&coco_path).unwrap())
        .to_hex()
        .to_string();
    for dir in ["coco", "merged"] {
        let p = provenance(dir);
        assert_eq!(p["annotations"], coco_path.display().to_string(), "{p}");
        assert_eq!(p["annotations_blake3"], coco_hash.as_str(), "{p}");
    }
    // The same boxes as YOLO files (normalized centre and size).
    let yolo = root.join("yolo");
    std::fs::create_dir_all(&yolo).unwrap();
    for i in 0..4 {
        let lines: String = (golden.iter())
            .filter(|g| g["image_id"] == i)
            .map(|g| {
                let b: Vec<f64> = serde_json::from_value(g["bbox"].clone()).unwrap();
                let (cx, cy) = ((b[0] + b[2] / 2.0) / 32.0, (b[1] + b[3] / 2.0) / 32.0);
                format!("0 {cx} {cy} {} {}\n", b[2] / 32.0, b[3] / 32.0)
            })
            .collect();
        std::fs::write(yolo.join(format!("img{i}.txt")), lines).unwrap();
    }
    let key = format!("  annotations: {}\n", yolo.display());
    run_verified(
        &truth_scenario(root, &data, &key, 20),
        &root.join("yolo-run"),
        &cache,
        5,
    );
    assert_eq!(
        summary_of(&root.join("yolo-run"))["ap50_golden_vs_truth"],
        1.0
    );
    let folder_hash = &provenance("yolo-run")["annotations_blake3"];
    assert!(folder_hash.is_string() && *folder_hash != coco_hash.as_str());
}

#[test]
fn annotations_need_an_image_folder_and_the_models_classes() {
    let dir = tempfile::tempdir().unwrap();
    let (root, cache) = (dir.path(), dir.path().join("cache"));
    let coco = tasks().join("annotations/coco.json");
    // .npy data has no file names to meet the annotations by.
    let body = format!("task: detection\ndetection:\n  decoder: centerface\n  heatmap: heatmap\n  scale: scale\n  offset: offset\n  annotations: {}\ncounts:\n  injections: 10\n", coco.display());
    let path = scenario(root, &tasks(), "centerface", &body);
    let run = run_campaign(&path, &root.join("npy"), &[], &cache);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(8), "{stderr}");
    assert!(
        stderr.contains("detection.annotations") && stderr.contains("image folder"),
        "{stderr}"
    );
    // CenterFace has one class; a YOLO box of class 1 is not one of it.
    let data = root.join("images");
    centerface_pngs(&data);
    let yolo = root.join("yolo");
    std::fs::create_dir_all(&yolo).unwrap();
    std::fs::write(yolo.join("img2.txt"), "1 0.5 0.5 0.2 0.2\n").unwrap();
    let key = format!("  annotations: {}\n", yolo.display());
    let run = run_campaign(
        &truth_scenario(root, &data, &key, 10),
        &root.join("classes"),
        &[],
        &cache,
    );
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("img2.txt")
            && stderr.contains("has class 1; the model's classes are 0 to 0"),
        "{stderr}"
    );
}
