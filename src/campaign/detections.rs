//! After a detection campaign: the boxes themselves, as PyTorchALFI keeps
//! them. In: the plan, its results folder (the rows say which runs are
//! SDEs) and the model. Out: `detections/golden.json` (the fault-free boxes
//! of every sample) and `detections/sde.json` (the boxes of every SDE run)
//! in COCO's results format (`image_id` is the sample's id, `bbox` is
//! `[x, y, width, height]` in input pixels), and `detections/worst-K.png`:
//! the model input of the worst SDE runs (most boxes added plus lost, then
//! the largest IoU shift) with the golden boxes in green and the faulty
//! ones in red. The SDE runs are rerun the plain way (the whole model from
//! the input, [`plain_run_outputs`]), whose outcome `--verify` holds equal
//! to the engine's; a run whose rerun is not an SDE is left out and counted.

use std::path::Path;

use serde_json::json;
use tch::{Kind, Tensor};

use super::rows::{existing_rows, Lines};
use super::runs::{windows, Resolver};
use super::Plan;
use crate::classify::detect::{Detection, Detector};
use crate::classify::{Outcome, Task};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::inject::{on_workers, plain_run_outputs, Injection};

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
    let mut runs = sde_runs(plan, resolver, out)?;
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
    for (id, sample, boxes) in &reruns {
        let Some(boxes) = boxes else {
            written.not_sde_again += 1;
            continue;
        };
        let image = data.sample(*sample).id;
        for b in boxes {
            let mut entry = coco(b, image);
            entry["run"] = json!(id);
            sde_json.push(entry);
        }
        if written.pictures < pictures {
            written.pictures += 1;
            let inputs = data.batch(*sample..*sample + 1)?.inputs;
            let path = dir.join(format!("worst-{}.png", written.pictures));
            draw(&inputs[0], &golden[*sample], boxes, &path)?;
        }
    }
    write_json(&dir.join("sde.json"), &sde_json)?;
    Ok(Some(written))
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

/// The SDE runs of the rows, in run order.
fn sde_runs(plan: &Plan, resolver: &Resolver, out: &Path) -> Result<Vec<SdeRun>> {
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
    Ok(runs)
}

/// Draws `golden` (green) and `faulty` (red) boxes over the model input
/// `input` (`[1, C, H, W]` or `[1, H, W, C]`, its values stretched to
/// 0..255) and writes a PNG.
fn draw(input: &Tensor, golden: &[Detection], faulty: &[Detection], path: &Path) -> Result<()> {
    let x = input.get(0).to_kind(Kind::Float);
    let size = x.size();
    // Channels last when the last axis is the smallest of three.
    let hwc = match size[..] {
        [c, _, _] if c <= 4 => x.permute([1, 2, 0]),
        [_, _, _] => x,
        _ => {
            return Err(Error::Data {
                path: path.to_path_buf(),
                msg: format!("the model input {size:?} is not an image to draw on"),
            })
        }
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
    crate::output::write_atomic(path, &png)
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
