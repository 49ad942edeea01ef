//! What a results folder's summaries and heatmap say: tables in numeric and
//! topological order, a bit table and a heatmap per number format, value
//! fault models in their own rows, what each table's `n` counts, intervals
//! clustered by injection, and a heatmap that fits its canvas and colours a
//! cell by its rate. Campaigns on the demo model, read back from the files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use faultsweep::data::Subset;

use crate::common::{csv_rows, edit_scenario, faultsweep, root, run_campaign};

/// A scenario on the demo CNN's first 100 test images, written to `dir`.
fn scenario(dir: &Path, name: &str, body: &str) -> PathBuf {
    let text = format!(
        "name: {name}\nseed: 7\nmodel:\n  path: models/fashion_cnn.onnx\ndata:\n  path: data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz\n  labels: data/fashion-mnist/t10k-1000-labels-idx1-ubyte.gz\n  subset:\n    first: 100\n{body}"
    );
    let path = dir.join(format!("{name}.yml"));
    std::fs::write(&path, text).unwrap();
    path
}

/// Runs `scenario` into `dir/results` and returns that folder.
fn run(dir: &Path, scenario: &Path) -> PathBuf {
    let out = dir.join("results");
    let r = run_campaign(scenario, &out, &[], &dir.join("cache"));
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    out
}

/// summary.csv's rows as maps from column name to value.
fn summary_rows(out: &Path) -> Vec<BTreeMap<String, String>> {
    let rows = csv_rows(&out.join("summary.csv"));
    rows[1..]
        .iter()
        .map(|r| rows[0].iter().cloned().zip(r.iter().cloned()).collect())
        .collect()
}

/// The rows of one grouping, in file order.
fn table<'a>(
    rows: &'a [BTreeMap<String, String>],
    grouping: &str,
) -> Vec<&'a BTreeMap<String, String>> {
    rows.iter().filter(|r| r["grouping"] == grouping).collect()
}

fn labels(rows: &[&BTreeMap<String, String>]) -> Vec<String> {
    rows.iter().map(|r| r["group"].clone()).collect()
}

/// The demo CNN's layers in topological order: features.N, then
/// classifier.N, each by N.
fn topological(layer: &str) -> (bool, u32) {
    let n = layer.split('.').nth(1).and_then(|s| s.split('/').next());
    (
        layer.contains("classifier"),
        n.unwrap().parse().expect("a layer index"),
    )
}

#[test]
fn tables_sort_bits_and_sweep_points_numerically_and_layers_topologically() {
    let dir = tempfile::tempdir().unwrap();
    let points: Vec<String> = (1..=11).map(|k| k.to_string()).collect();
    let sc = scenario(
        dir.path(),
        "order",
        &format!(
            "targets:\n  target: neuron\n  layers:\n    ops: [Conv, Gemm, Relu]\nfault:\n  model: bit_flip\n  bits: all\nsweep:\n  per_inference: [{}]\ncounts:\n  injections: 15\noutputs:\n  summaries: [sweep, layer, bit]\n",
            points.join(", ")
        ),
    );
    let out = run(dir.path(), &sc);
    let rows = summary_rows(&out);
    let sweep: Vec<u32> = labels(&table(&rows, "sweep"))
        .iter()
        .map(|l| l.split(':').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(sweep, (0..11).collect::<Vec<u32>>());
    let bits: Vec<u32> = labels(&table(&rows, "bit:fp32"))
        .iter()
        .map(|l| l.parse().unwrap())
        .collect();
    assert!(
        bits.len() > 20 && bits.windows(2).all(|w| w[0] < w[1]),
        "{bits:?}"
    );
    let layers = labels(&table(&rows, "layer"));
    let mut sorted = layers.clone();
    sorted.sort_by_key(|l| topological(l));
    assert!(layers.len() > 5 && layers == sorted, "{layers:?}");

    // Several faults per inference: the overall and sweep tables count
    // injections, the layer and bit tables faults.
    let injections = csv_rows(&out.join("injections.csv"));
    let fault_rows = injections.len() as u64 - 1;
    let n = |rows: &[&BTreeMap<String, String>]| -> u64 {
        rows.iter().map(|r| r["n"].parse::<u64>().unwrap()).sum()
    };
    for (grouping, unit, count) in [
        ("overall", "injections", 15 * 11),
        ("sweep", "injections", 15 * 11),
        ("layer", "faults", fault_rows),
        ("bit:fp32", "faults", fault_rows),
    ] {
        let t = table(&rows, grouping);
        assert!(t.iter().all(|r| r["unit"] == unit), "{grouping}: {t:?}");
        assert_eq!(n(&t), count, "{grouping}");
    }
    let md = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(md.contains("n counts faults, each with its injection's outcome"));
    assert!(md.contains("n counts injections (one inference each)"));
}

#[test]
fn each_number_format_has_its_own_bit_table_and_heatmaps_and_value_models_their_own_rows() {
    let dir = tempfile::tempdir().unwrap();
    let sc = scenario(
        dir.path(),
        "formats",
        "targets:\n  target: neuron\n  layers:\n    ops: [Conv]\nfault:\n  model: bit_flip\n  bits: all\nsweep:\n  model: [bit_flip, zero]\n  dtype: [fp32, fp16]\ncounts:\n  injections: 60\noutputs:\n  summaries: [bit, model]\n",
    );
    let out = run(dir.path(), &sc);
    let rows = summary_rows(&out);
    assert!(table(&rows, "bit").is_empty());
    for (format, width) in [("fp32", 32), ("fp16", 16)] {
        let bit_rows = labels(&table(&rows, &format!("bit:{format}")));
        let (zero, bits) = bit_rows.split_last().expect("rows");
        assert_eq!(zero, "zero", "{format}: {bit_rows:?}");
        assert!(bits.iter().all(|b| b.parse::<u32>().unwrap() < width));
        assert!(bits.len() > width as usize / 2, "{format}: {bit_rows:?}");
    }
    let svg = std::fs::read_to_string(out.join("heatmap.svg")).unwrap();
    for heading in [
        "SDE rate in fp32",
        "DUE rate in fp32",
        "SDE rate in fp16",
        "DUE rate in fp16",
    ] {
        assert!(svg.contains(heading), "{heading}");
    }
    // A bit drawn in both formats has a cell in each format's heatmap.
    let fp16 = labels(&table(&rows, "bit:fp16"));
    let both = labels(&table(&rows, "bit:fp32"))
        .into_iter()
        .find(|b| b != "zero" && fp16.contains(b))
        .expect("a bit drawn in both formats");
    for format in ["fp16", "fp32"] {
        assert!(
            svg.contains(&format!(" {format} bit {both}: SDE ")),
            "{format} {both}"
        );
    }
    assert!(svg.contains(" fp16 zero: DUE "));
}

/// A text or a rect of the SVG: its box (estimated for text), and for a
/// heatmap cell its fill and tooltip.
#[derive(Debug)]
struct Shape {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
    fill: String,
    text: String,
}

fn attr(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    Some(tag[at..at + tag[at..].find('"')?].to_string())
}

fn number(tag: &str, name: &str) -> f64 {
    attr(tag, name).map_or(0.0, |v| v.parse().unwrap())
}

/// The text elements (box from a generous glyph width of 0.55 em, 0.6 bold)
/// and the sized rects of `svg`, each with its tooltip.
fn shapes(svg: &str) -> Vec<Shape> {
    let pieces: Vec<&str> = svg.split('<').skip(1).chain([""]).collect();
    let mut shapes = Vec::new();
    for w in pieces.windows(2) {
        let Some((tag, content)) = w[0].split_once('>') else {
            continue;
        };
        if tag.starts_with("text") {
            let size = attr(tag, "font-size").map_or(11.0, |s| s.parse().unwrap());
            let em = if tag.contains("bold") { 0.6 } else { 0.55 };
            let w = content.chars().count() as f64 * size * em;
            let (x, y) = (number(tag, "x"), number(tag, "y"));
            if let Some(t) = attr(tag, "transform") {
                // translate(x,y) rotate(-90): the text runs upwards from (x, y).
                let xy = t
                    .trim_start_matches("translate(")
                    .split(')')
                    .next()
                    .unwrap();
                let (x, y) = xy.split_once(',').unwrap();
                let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
                shapes.push(Shape::text(x - size, y - w, x, y, content));
                continue;
            }
            let left = match attr(tag, "text-anchor").as_deref() {
                Some("end") => x - w,
                Some("middle") => x - w / 2.0,
                _ => x,
            };
            shapes.push(Shape::text(left, y - size, left + w, y, content));
        } else if tag.starts_with("rect") && attr(tag, "x").is_some() {
            let (x, y) = (number(tag, "x"), number(tag, "y"));
            let title = w[1].strip_prefix("title>").unwrap_or_default();
            shapes.push(Shape {
                left: x,
                top: y,
                right: x + number(tag, "width"),
                bottom: y + number(tag, "height"),
                fill: attr(tag, "fill").unwrap(),
                text: title.to_string(),
            });
        }
    }
    shapes
}

impl Shape {
    fn text(left: f64, top: f64, right: f64, bottom: f64, text: &str) -> Shape {
        Shape {
            left,
            top,
            right,
            bottom,
            fill: String::new(),
            text: text.to_string(),
        }
    }
}

/// The intensity of a heatmap fill: 0 white, 1 full red (SDE) or blue (DUE).
fn intensity(fill: &str) -> f64 {
    let rgb: Vec<f64> = fill
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .map(|c| c.parse().unwrap())
        .collect();
    1.0 - rgb[1].min(rgb[2]).min(rgb[0]) / 255.0
}

#[test]
fn the_heatmap_fits_its_canvas_colours_cells_by_rate_and_shows_due() {
    // scenarios/fashion_values.yml, smaller: a grid of 2 layers.
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_values.yml");
    let sc = edit_scenario(&from, dir.path().join("values.yml"), |s| {
        s.counts.injections = Some(12);
        s.data.subset = Subset::First(64);
    });
    let out = run(dir.path(), &sc);
    let svg = std::fs::read_to_string(out.join("heatmap.svg")).unwrap();
    let head = svg.lines().next().unwrap();
    let (width, height) = (number(head, "width"), number(head, "height"));
    let shapes = shapes(&svg);
    for s in &shapes {
        assert!(
            s.left >= 0.0 && s.top >= 0.0 && s.right <= width && s.bottom <= height,
            "outside the {width}x{height} canvas: {s:?}"
        );
    }
    let cells: Vec<&Shape> = shapes.iter().filter(|s| s.text.contains('[')).collect();
    assert!(cells.len() >= 6, "{cells:?}");
    for c in &cells {
        // "... : SDE 0.16% [..." -> 0.0016
        let rate = c
            .text
            .split(": ")
            .nth(1)
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap();
        let rate: f64 = rate.trim_end_matches('%').parse::<f64>().unwrap() / 100.0;
        assert!(
            (intensity(&c.fill) - rate).abs() < 0.01,
            "{} for {rate}",
            c.fill
        );
    }
    assert!(cells.iter().any(|c| c.text.contains(": DUE ")));
    // The legend's labels show the scale: no two alike.
    let legend: Vec<&str> = shapes
        .iter()
        .filter(|s| s.fill.is_empty() && s.text.ends_with('%'))
        .map(|s| s.text.as_str())
        .collect();
    let distinct: std::collections::BTreeSet<&&str> = legend.iter().collect();
    assert!(
        legend.len() >= 4 && distinct.len() * 2 == legend.len(),
        "{legend:?}"
    );
}

/// The clustered effective sample size of one outcome, from each
/// injection's (rows, rows with the outcome), as summary.md describes it.
fn effective_n(per_injection: &[(f64, f64)]) -> f64 {
    let n: f64 = per_injection.iter().map(|(n, _)| n).sum();
    let k: f64 = per_injection.iter().map(|(_, k)| k).sum();
    let c = per_injection.len() as f64;
    if k == 0.0 || k == n {
        return c;
    }
    let p = k / n;
    let spread: f64 = per_injection
        .iter()
        .map(|(ni, ki)| (ki - p * ni).powi(2))
        .sum();
    let clustered = c / (c - 1.0) * spread / (n * n);
    (n * p * (1.0 - p) / (n - 1.0) / clustered).clamp(c, n)
}

#[test]
fn a_permanent_fault_campaign_clusters_its_intervals_by_fault() {
    // 40 permanent weight faults, each on all 30 samples.
    let dir = tempfile::tempdir().unwrap();
    let from = root().join("scenarios/fashion_weights.yml");
    let sc = edit_scenario(&from, dir.path().join("weights.yml"), |s| {
        s.counts.injections = Some(40);
        s.data.subset = Subset::First(30);
    });
    let out = run(dir.path(), &sc);
    let rows = summary_rows(&out);
    let overall = table(&rows, "overall")[0];
    assert_eq!(overall["unit"], "inferences");
    assert_eq!(overall["n"], "1200");
    assert_eq!(overall["injections"], "40");
    for grouping in ["layer", "bit:fp32"] {
        assert!(table(&rows, grouping).iter().all(|r| r["unit"] == "rows"));
    }
    // Each outcome's effective size, from the injections' own rows.
    let csv = csv_rows(&out.join("injections.csv"));
    let col = |name: &str| csv[0].iter().position(|h| h == name).unwrap();
    for outcome in ["sde", "due", "masked"] {
        let mut per: BTreeMap<&str, (f64, f64)> = BTreeMap::new();
        for r in &csv[1..] {
            let e = per.entry(&r[col("injection")]).or_default();
            e.0 += 1.0;
            e.1 += f64::from(u8::from(r[col("outcome")] == outcome));
        }
        let per: Vec<(f64, f64)> = per.into_values().collect();
        assert_eq!(per.len(), 40);
        let want = effective_n(&per);
        let got: f64 = overall[&format!("{outcome}_n_eff")].parse().unwrap();
        assert!((got - want).abs() < 0.06, "{outcome}: {got} != {want}");
        assert!((40.0..=1200.0).contains(&got));
    }
    // No DUE among 40 faults: as sure as 40 trials, not 1,200.
    assert_eq!(overall["due"], "0");
    let z2 = 1.959_964_f64.powi(2);
    assert_eq!(overall["due_high"], format!("{:.6}", z2 / (40.0 + z2)));
    let headline = faultsweep(
        &["report", out.to_str().unwrap()],
        &dir.path().join("cache"),
    );
    let stdout = String::from_utf8_lossy(&headline.stdout);
    assert!(
        stdout.contains("1200 inferences of 40 injections: SDE"),
        "{stdout}"
    );
}

#[test]
fn a_permanent_campaign_resumed_inside_a_window_gives_the_whole_summary() {
    // 12 faults on 40 samples each, windows of 240 runs: a cut in the first
    // window leaves every injection of it part counted.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let from = root().join("scenarios/fashion_weights.yml");
    let sc = edit_scenario(&from, dir.path().join("weights.yml"), |s| {
        s.counts.injections = Some(12);
        s.data.subset = Subset::First(40);
        s.data.batch_size = 10;
        s.data.window = 240;
    });
    let whole = run(dir.path(), &sc);
    let full = std::fs::read(whole.join("injections.csv")).unwrap();
    let lines: Vec<usize> = (0..full.len()).filter(|&i| full[i] == b'\n').collect();
    for cut_row in [100, 330] {
        let cut = dir.path().join(format!("cut{cut_row}"));
        std::fs::create_dir_all(&cut).unwrap();
        for f in ["scenario.yml", "faults.bin"] {
            std::fs::copy(whole.join(f), cut.join(f)).unwrap();
        }
        std::fs::write(cut.join("injections.csv"), &full[..=lines[cut_row]]).unwrap();
        let r = faultsweep(&["run", "--resume", cut.to_str().unwrap()], &cache);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        for f in [
            "summary.csv",
            "summary.json",
            "summary.md",
            "heatmap.svg",
            "cma.svg",
        ] {
            assert_eq!(
                std::fs::read_to_string(cut.join(f)).unwrap(),
                std::fs::read_to_string(whole.join(f)).unwrap(),
                "cut after row {cut_row}: {f}"
            );
        }
    }
}
