//! After a detection campaign: the boxes themselves, as PyTorchALFI keeps
//! them. In: the plan, its results folder (the rows say which runs are
//! SDEs) and the model. Out: `detections/golden.json` (the fault-free boxes
//! of every sample) and `detections/sde.json` (the boxes of every SDE run)
//! in COCO's results format (`image_id` is the sample's id, `bbox` is
//! `[x, y, width, height]` in input pixels), and `detections/worst-K.png`:
//! the model input of the worst SDE runs (most boxes added plus lost, then
//! the largest IoU shift) with the golden boxes in green and the faulty
//! ones in red (when the input is an image). The SDE runs are rerun the plain way (the whole model from
//! the input, [`plain_run_outputs`]), whose outcome `--verify` holds equal
//! to the engine's; a run whose rerun is not an SDE is left out and counted.
//! `detections/summary.json` gives the AP50 (COCO-style, the golden boxes
//! as ground truth, [`crate::classify::detect::ap50`]) of the SDE runs and
//! over every run that is not a DUE; with `detection.annotations`, also the
//! AP50 against that ground truth, pooled over the data set, of the golden
//! boxes, of the SDE runs and over every run that is not a DUE.

use std::path::Path;

use serde_json::json;
use tch::{Kind, Tensor};

use super::rows::{existing_rows, Lines};
use super::runs::{windows, Resolver};
use super::Plan;
use crate::classify::detect::{ap50, Detection, Detector};
use crate::classify::{Outcome, Task};
use crate::data::annotations::{self, Truth};
use crate::data::Dataset;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::inject::{on_workers, plain_run_outputs, Injection};
use crate::scenario::Scenario;

/// The folder the files go to, in the results folder.
pub const FOLDER: &str = "detections";

/// What [`write`] wrote.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Written {
    /// SDE runs in the rows.
    pub sde_runs: usize,
    /// Of them, reruns that were not an SDE (left out).
    pub not_sde_again: usize,
    /// Pictures drawn.
    pub pictures: usize,
    /// Mean AP50 of the SDE runs' boxes against their golden boxes (runs
    /// on samples with golden boxes).
    pub ap50_sde: Option<f64>,
    /// Mean AP50 over the runs that are not DUEs, on samples with golden
    /// boxes: an SDE's own, 1 for the others (their boxes are the golden
    /// ones, matched one to one).
    pub ap50_all: Option<f64>,
    /// With annotations: AP50 of the golden boxes of every sample against
    /// the ground truth.
    pub ap50_golden_vs_truth: Option<f64>,
    /// Mean over the SDE runs of that AP with the run's image's boxes the
    /// faulty ones.
    pub ap50_sde_vs_truth: Option<f64>,
    /// Mean over the runs that are not DUEs: an SDE run's own, the golden
    /// boxes' for the others.
    pub ap50_all_vs_truth: Option<f64>,
}

/// An SDE run as its row tells it: the injection, the boxes added plus
/// lost, and the largest IoU shift.
struct SdeRun {
    injection: Injection,
    boxes: u64,
    iou_shift: f32,
}

/// Writes the detections files of a detection campaign (nothing for
/// another task).
pub fn write(
    plan: &Plan,
    graph: &Graph,
    resolver: &Resolver,
    out: &Path,
    workers: usize,
) -> Result<Option<Written>> {
    let Task::Detection(detector) = &*graph.task else {
        return Ok(None);
    };
    let pictures = plan
        .campaign
        .spec
        .detection
        .as_ref()
        .map_or(5, |d| d.pictures);
    let (mut runs, agreeing) = sde_runs(plan, resolver, out)?;
    runs.sort_by(|a, b| {
        (b.boxes.cmp(&a.boxes))
            .then(b.iou_shift.total_cmp(&a.iou_shift))
            .then(a.injection.id.cmp(&b.injection.id))
    });
    let dir = out.join(FOLDER);
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
    let data = &plan.data;
    let golden: Vec<Vec<Detection>> = (0..data.len())
        .map(|s| {
            let inputs = data.batch(s..s + 1)?.inputs;
            let outputs = graph.forward(&inputs)?;
            decode(detector, &outputs, graph)
        })
        .collect::<Result<_>>()?;
    let mut golden_json = Vec::new();
    for (s, boxes) in golden.iter().enumerate() {
        let id = data.sample(s).id;
        golden_json.extend(boxes.iter().map(|b| coco(b, id)));
    }
    write_json(&dir.join("golden.json"), &golden_json)?;
    let injections: Vec<&Injection> = runs.iter().map(|r| &r.injection).collect();
    let reruns = on_workers(graph, workers, &injections, |graph, inj| {
        let inputs = data.batch(inj.sample..inj.sample + 1)?.inputs;
        let (result, outputs) = plain_run_outputs(graph, &inputs, inj)?;
        let boxes = match (result.outcome(), outputs) {
            (Outcome::Sde, Some(outputs)) => Some(decode(detector, &outputs, graph)?),
            _ => None,
        };
        Ok((inj.id, inj.sample, boxes))
    })?;
    let mut written = Written {
        sde_runs: runs.len(),
        ..Default::default()
    };
    let mut sde_json = Vec::new();
    let mut aps = Vec::new();
    let mut faulty: Vec<(usize, &[Detection])> = Vec::new();
    for (id, sample, boxes) in &reruns {
        let Some(boxes) = boxes else {
            written.not_sde_again += 1;
            continue;
        };
        aps.extend(ap50(&[&golden[*sample]], &[boxes]));
        faulty.push((*sample, boxes.as_slice()));
        let image = data.sample(*sample).id;
        for b in boxes {
            let mut entry = coco(b, image);
            entry["run"] = json!(id);
            sde_json.push(entry);
        }
        if written.pictures < pictures {
            let inputs = data.batch(*sample..*sample + 1)?.inputs;
            let path = dir.join(format!("worst-{}.png", written.pictures + 1));
            if draw(&inputs[0], &golden[*sample], boxes, &path)? {
                written.pictures += 1;
            }
        }
    }
    write_json(&dir.join("sde.json"), &sde_json)?;
    written.ap50_sde = (!aps.is_empty()).then(|| aps.iter().sum::<f64>() / aps.len() as f64);
    // Masked and benign runs (and reruns that agreed with golden) keep
    // the golden boxes: AP 1, on samples with golden boxes.
    let ones: u64 = (agreeing.iter().enumerate())
        .filter(|(s, _)| !golden[*s].is_empty())
        .map(|(_, n)| n)
        .sum::<u64>()
        + written.not_sde_again as u64;
    let all_runs = ones as f64 + aps.len() as f64;
    written.ap50_all = (all_runs > 0.0).then(|| (aps.iter().sum::<f64>() + ones as f64) / all_runs);
    if let Some(truth) = &plan.truth {
        let truth: Vec<&[Detection]> = (0..data.len())
            .map(|s| truth.get(&data.sample(s).id).map_or(&[][..], Vec::as_slice))
            .collect();
        let others = agreeing.iter().sum::<u64>() + written.not_sde_again as u64;
        against_truth(&mut written, &truth, &golden, &faulty, others);
    }
    let summary = json!({
        "sde_runs": written.sde_runs,
        "sde_runs_not_sde_when_rerun": written.not_sde_again,
        "ap50_sde_mean": written.ap50_sde,
        "ap50_all_runs": written.ap50_all,
        "ap50_golden_vs_truth": written.ap50_golden_vs_truth,
        "ap50_sde_vs_truth": written.ap50_sde_vs_truth,
        "ap50_all_vs_truth": written.ap50_all_vs_truth,
        "pictures": written.pictures,
    });
    let text = serde_json::to_string_pretty(&summary).expect("JSON values serialize");
    crate::output::write_atomic(&dir.join("summary.json"), text.as_bytes())?;
    Ok(Some(written))
}

/// The AP50s against the ground truth `truth` (per sample) of the golden
/// boxes, of each `faulty` run (its sample's boxes replaced by its own),
/// and over those runs and `others` runs that kept the golden boxes.
fn against_truth(
    written: &mut Written,
    truth: &[&[Detection]],
    golden: &[Vec<Detection>],
    faulty: &[(usize, &[Detection])],
    others: u64,
) {
    let Some(golden_ap) = ap50(truth, golden) else {
        return;
    };
    let mut boxes: Vec<&[Detection]> = golden.iter().map(Vec::as_slice).collect();
    let mut sum = 0.0;
    for &(sample, run) in faulty {
        boxes[sample] = run;
        sum += ap50(truth, &boxes).unwrap_or(golden_ap);
        boxes[sample] = &golden[sample];
    }
    let runs = faulty.len() as f64;
    written.ap50_golden_vs_truth = Some(golden_ap);
    written.ap50_sde_vs_truth = (!faulty.is_empty()).then(|| sum / runs);
    let all = runs + others as f64;
    written.ap50_all_vs_truth = (all > 0.0).then(|| (sum + golden_ap * others as f64) / all);
}

/// The ground truth of `detection.annotations`, when given: the data set
/// must be an image folder, whose file names the annotations name.
pub fn ground_truth(sc: &Scenario, graph: &Graph, data: &Dataset) -> Result<Option<Truth>> {
    let Task::Detection(detector) = &*graph.task else {
        return Ok(None);
    };
    let given = sc
        .spec
        .detection
        .as_ref()
        .and_then(|d| d.annotations.as_ref());
    let Some(path) = given else {
        return Ok(None);
    };
    if data.is_empty() {
        return Ok(Some(Truth::new()));
    }
    if data.image_path(0).is_none() {
        let msg = format!(
            "needs an image folder data set (annotations meet images by file name); {} is not one",
            data.spec.path.display()
        );
        return Err(sc.error("detection.annotations", msg));
    }
    let outputs = graph.forward(&data.batch(0..1)?.inputs)?;
    annotations::read(path, data, detector.classes(&outputs)).map(Some)
}

/// The boxes of the first row of `outputs`.
fn decode(detector: &Detector, outputs: &[Tensor], graph: &Graph) -> Result<Vec<Detection>> {
    detector.decode(outputs, 0).map_err(|msg| Error::Data {
        path: graph.path.clone(),
        msg: format!("decoding the boxes: {msg}"),
    })
}

/// A box as a COCO result.
fn coco(b: &Detection, image: usize) -> serde_json::Value {
    json!({
        "image_id": image,
        "category_id": b.class,
        "bbox": [b.x1, b.y1, b.x2 - b.x1, b.y2 - b.y1],
        "score": b.score,
    })
}

fn write_json(path: &Path, entries: &[serde_json::Value]) -> Result<()> {
    let text = serde_json::to_string_pretty(entries).expect("JSON values serialize");
    crate::output::write_atomic(path, text.as_bytes())
}

/// The SDE runs of the rows, in run order, and per sample the masked and
/// benign runs.
fn sde_runs(plan: &Plan, resolver: &Resolver, out: &Path) -> Result<(Vec<SdeRun>, Vec<u64>)> {
    let path = existing_rows(out);
    let mut lines = Lines::open(&path)?;
    let bad = |msg: String| Error::Data {
        path: path.clone(),
        msg,
    };
    let header = lines
        .next()?
        .and_then(|h| super::results::csv_record(&h))
        .ok_or_else(|| bad("no header".into()))?;
    let col = |name: &str| {
        (header.iter().position(|c| c == name)).ok_or_else(|| bad(format!("no column {name}")))
    };
    let (outcome, fp, fneg, shift) = (
        col("outcome")?,
        col("false_positives")?,
        col("false_negatives")?,
        col("max_iou_shift")?,
    );
    let mut runs = Vec::new();
    let mut agreeing = vec![0u64; plan.data.len()];
    for window in windows(plan)? {
        let window = window?;
        for id in window.ids() {
            let mut first = None;
            for _ in 0..window.faults(id).len() {
                let line = lines
                    .next()?
                    .ok_or_else(|| bad(format!("the rows end before run {id}")))?;
                first.get_or_insert(line);
            }
            let Some(record) = first.and_then(|l| super::results::csv_record(&l)) else {
                continue;
            };
            let field = |i: usize| record.get(i).map_or("", String::as_str);
            if matches!(field(outcome), "masked" | "benign") {
                if let Some(n) = agreeing.get_mut(window.run(id).sample) {
                    *n += 1;
                }
            }
            if field(outcome) != "sde" {
                continue;
            }
            let count = |i: usize| field(i).parse::<u64>().unwrap_or(0);
            runs.push(SdeRun {
                injection: resolver.injection(&window, id)?,
                boxes: count(fp) + count(fneg),
                iou_shift: field(shift).parse().unwrap_or(0.0),
            });
        }
    }
    Ok((runs, agreeing))
}

/// Draws `golden` (green) and `faulty` (red) boxes over the model input
/// `input` (`[1, C, H, W]` or `[1, H, W, C]`, its values stretched to
/// 0..255) and writes a PNG; `false` (nothing written) when the input is
/// not an image.
fn draw(input: &Tensor, golden: &[Detection], faulty: &[Detection], path: &Path) -> Result<bool> {
    let x = input.get(0).to_kind(Kind::Float);
    let size = x.size();
    // Channels first when the first of three axes holds at most 4.
    let hwc = match size[..] {
        [c, _, _] if c <= 4 => x.permute([1, 2, 0]),
        [_, _, c] if c <= 4 => x,
        _ => return Ok(false),
    };
    let (lo, hi) = (hwc.min().double_value(&[]), hwc.max().double_value(&[]));
    let scaled = (hwc - lo) * (255.0 / (hi - lo).max(1e-12));
    let [h, w, c] = scaled.size()[..] else {
        unreachable!("three axes")
    };
    let rgb = match c {
        1 => scaled.repeat([1, 1, 3]),
        _ => scaled.narrow(2, 0, 3.min(c)),
    };
    let bytes = Vec::<u8>::try_from(rgb.clamp(0.0, 255.0).to_kind(Kind::Uint8).flatten(0, -1))
        .map_err(|e| Error::Data {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
    let mut img =
        image::RgbImage::from_raw(w as u32, h as u32, bytes).ok_or_else(|| Error::Data {
            path: path.to_path_buf(),
            msg: "the input is not an RGB image".into(),
        })?;
    for (boxes, colour, width) in [(golden, [0, 220, 0], 3), (faulty, [255, 0, 0], 1)] {
        for b in boxes {
            rectangle(&mut img, b, image::Rgb(colour), width);
        }
    }
    let mut png = Vec::new();
    img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
        .map_err(|e| Error::Data {
            path: path.to_path_buf(),
            msg: e.to_string(),
        })?;
    crate::output::write_atomic(path, &png)?;
    Ok(true)
}

/// The outline of `b`, `width` pixels thick, clipped to the image.
fn rectangle(img: &mut image::RgbImage, b: &Detection, colour: image::Rgb<u8>, width: i64) {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    let clip = |v: f32, max: i64| (v.round() as i64).clamp(0, max - 1);
    let (x1, x2) = (clip(b.x1, w), clip(b.x2, w));
    let (y1, y2) = (clip(b.y1, h), clip(b.y2, h));
    let mut put = |x: i64, y: i64| {
        if (0..w).contains(&x) && (0..h).contains(&y) {
            img.put_pixel(x as u32, y as u32, colour);
        }
    };
    for t in 0..width {
        for x in x1..=x2 {
            put(x, y1 + t);
            put(x, y2 - t);
        }
        for y in y1..=y2 {
            put(x1 + t, y);
            put(x2 - t, y);
        }
    }
}
