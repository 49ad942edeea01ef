//! heatmap.svg: for each number format, the SDE rate and then the DUE rate
//! by layer (rows, in topological order) and bit (columns, 31 on the left as
//! in a format's bit layout; value fault models after the bits), one cell
//! per pair that had injections. In: the per-cell [`Group`]s. Out: one SVG
//! of stacked heatmaps. Invariants: a cell's colour is proportional to its
//! rate on a fixed 0-100% scale (so heatmaps compare across formats and
//! campaigns); the legend labels the scale; every text and cell lies inside
//! the canvas (text widths are estimated generously); a cell's tooltip gives
//! the rate, its interval and the counts.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::stats::{Confidence, Group};
use super::Key;
use crate::classify::Outcome;
use crate::faults::NumFormat;

/// Groups per layer (topological index, name) and column (a bit or a
/// value fault model).
pub type Layers = BTreeMap<(usize, String), BTreeMap<Key, Group>>;

/// The cells of every number format.
pub type Cells = BTreeMap<NumFormat, Layers>;

const CELL: usize = 22;
const MARGIN: usize = 10;
const FONT: f64 = 11.0;
/// Longest layer name shown (the end of a longer one).
const NAME_CHARS: usize = 60;
/// The legend's steps, as rates.
const STEPS: [f64; 5] = [0.0, 0.25, 0.5, 0.75, 1.0];
const NO_INJECTIONS: &str = "#d9d9d9";

/// The notes under the title; `sde`: what an SDE is under the task.
fn notes(confidence: Confidence, sde: &str) -> [String; 3] {
    [
        format!("{sde}; DUE: NaN or Inf in an output, or an error."),
        "Colour proportional to the rate: white 0%, full colour 100%; grey: no injections.".into(),
        format!(
            "Bit 0 = least significant. Hover a cell for its rate, {} interval and counts.",
            confidence.percent()
        ),
    ]
}

/// Width of `text` at `size` px in a sans-serif font, rounded up (an
/// average glyph is about 0.55 em; 0.62 leaves room).
pub(super) fn text_width(text: &str, size: f64) -> usize {
    (text.chars().count() as f64 * size * 0.62).ceil() as usize
}

pub(super) fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// White at 0 to full red (SDE) or blue (DUE) at 1, linear in the rate.
fn colour(outcome: Outcome, rate: f64) -> String {
    let t = rate.clamp(0.0, 1.0);
    let fade = |depth: f64| (255.0 * (1.0 - depth * t)).round() as u8;
    match outcome {
        Outcome::Due => format!("rgb({},{},255)", fade(1.0), fade(0.6)),
        _ => format!("rgb(255,{},{})", fade(0.85), fade(1.0)),
    }
}

/// `unit`: what a cell's `n` counts (`faults` or `rows`); `sde`: what an
/// SDE is under the campaign's task ([`crate::classify::Task::sde_meaning`]).
pub fn svg(cells: &Cells, title: &str, unit: &str, confidence: Confidence, sde: &str) -> String {
    let notes = notes(confidence, sde);
    let panels: Vec<Panel> = cells
        .iter()
        .flat_map(|(&format, layers)| {
            [Outcome::Sde, Outcome::Due]
                .map(|outcome| Panel::new(format, outcome, layers, confidence.z))
        })
        .collect();
    let header = 24 + 16 * notes.len();
    let width = panels
        .iter()
        .map(Panel::width)
        .chain([text_width(title, 14.0)])
        .chain(notes.iter().map(|n| text_width(n, FONT)))
        .max()
        .unwrap_or(0)
        + 2 * MARGIN;
    let height = header + panels.iter().map(Panel::height).sum::<usize>() + MARGIN;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="{FONT}">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{MARGIN}" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, note) in notes.iter().enumerate() {
        let _ = writeln!(s, r#"<text x="{MARGIN}" y="{}">{note}</text>"#, 38 + 16 * i);
    }
    let mut top = header;
    for panel in &panels {
        panel.write(&mut s, top, unit);
        top += panel.height();
    }
    s.push_str("</svg>\n");
    s
}

/// One heatmap: one outcome's rate in one number format.
struct Panel<'a> {
    format: NumFormat,
    outcome: Outcome,
    layers: &'a Layers,
    /// The normal quantile of the intervals in the tooltips.
    z: f64,
    /// Bits from the highest down, then value fault models.
    columns: Vec<&'a Key>,
    heading: String,
    /// Width of the layer names' column.
    names: usize,
    /// Height of the column labels.
    labels: usize,
}

impl<'a> Panel<'a> {
    fn new(format: NumFormat, outcome: Outcome, layers: &'a Layers, z: f64) -> Panel<'a> {
        let mut columns: Vec<&Key> = layers.values().flat_map(|m| m.keys()).collect();
        columns.sort();
        columns.dedup();
        // Bits from the highest down, value models (ranked last) after them.
        let bits = columns.iter().take_while(|k| !k.is_value_model()).count();
        columns[..bits].reverse();
        let names = layers
            .keys()
            .map(|(_, name)| text_width(&shown_name(name), FONT))
            .max()
            .unwrap_or(0)
            + 6;
        let labels = columns
            .iter()
            .map(|k| {
                if upright(k) {
                    14
                } else {
                    text_width(&k.label, FONT) + 6
                }
            })
            .max()
            .unwrap_or(14);
        let heading = format!(
            "{} rate in {}, by layer and bit",
            outcome_name(outcome),
            format.name()
        );
        Panel {
            format,
            outcome,
            layers,
            z,
            columns,
            heading,
            names,
            labels,
        }
    }

    fn grid_width(&self) -> usize {
        self.names + CELL * self.columns.len()
    }

    fn legend_width(&self) -> usize {
        20 + CELL + 4 + text_width("no injections", FONT)
    }

    fn width(&self) -> usize {
        (self.grid_width() + self.legend_width()).max(text_width(&self.heading, 12.0))
    }

    /// Heading, column labels, then the grid or the legend, whichever is
    /// taller.
    fn height(&self) -> usize {
        let body = (CELL * self.layers.len()).max(CELL * (STEPS.len() + 1));
        24 + self.labels + 6 + body + 20
    }

    fn write(&self, s: &mut String, top: usize, unit: &str) {
        let _ = writeln!(
            s,
            r#"<text x="{MARGIN}" y="{}" font-size="12" font-weight="bold">{}</text>"#,
            top + 16,
            self.heading
        );
        let grid_top = top + 24 + self.labels + 6;
        let left = MARGIN + self.names;
        for (j, key) in self.columns.iter().enumerate() {
            let x = left + j * CELL + CELL / 2;
            let y = grid_top - 6;
            let label = escape(&key.label);
            let _ = if upright(key) {
                writeln!(
                    s,
                    r#"<text x="{x}" y="{y}" text-anchor="middle">{label}</text>"#
                )
            } else {
                writeln!(
                    s,
                    r#"<text transform="translate({},{y}) rotate(-90)">{label}</text>"#,
                    x + 4
                )
            };
        }
        for (i, ((_, layer), row)) in self.layers.iter().enumerate() {
            let y = grid_top + i * CELL;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
                left - 6,
                y + CELL * 2 / 3,
                escape(&shown_name(layer))
            );
            for (j, key) in self.columns.iter().enumerate() {
                let x = left + j * CELL;
                self.cell(s, (x, y), layer, key, row.get(*key), unit);
            }
        }
        self.legend(s, left + CELL * self.columns.len() + 20, grid_top);
    }

    fn cell(
        &self,
        s: &mut String,
        (x, y): (usize, usize),
        layer: &str,
        key: &Key,
        group: Option<&Group>,
        unit: &str,
    ) {
        let Some(group) = group else {
            let _ = writeln!(
                s,
                r#"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{NO_INJECTIONS}"/>"#
            );
            return;
        };
        let r = group.rate(self.outcome, self.z);
        let _ = writeln!(
            s,
            r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{}" stroke="#ccc"><title>{} {} {}: {} {:.2}% [{:.2}, {:.2}], {} of {} {unit} ({} injections)</title></rect>"##,
            colour(self.outcome, r.rate),
            escape(layer),
            self.format.name(),
            bit_or_model(key),
            outcome_name(self.outcome),
            100.0 * r.rate,
            100.0 * r.low,
            100.0 * r.high,
            group.counts.of(self.outcome),
            group.counts.n,
            group.injections
        );
    }

    fn legend(&self, s: &mut String, x: usize, top: usize) {
        let entries = STEPS
            .iter()
            .map(|&r| (colour(self.outcome, r), format!("{:.0}%", 100.0 * r)))
            .chain([(NO_INJECTIONS.to_string(), "no injections".to_string())]);
        for (k, (fill, label)) in entries.enumerate() {
            let y = top + k * CELL;
            let _ = writeln!(
                s,
                r##"<rect x="{x}" y="{y}" width="{CELL}" height="{CELL}" fill="{fill}" stroke="#ccc"/><text x="{}" y="{}">{label}</text>"##,
                x + CELL + 4,
                y + CELL * 2 / 3
            );
        }
    }
}

fn outcome_name(o: Outcome) -> &'static str {
    match o {
        Outcome::Due => "DUE",
        _ => "SDE",
    }
}

/// A bit number fits the cell's width; longer labels stand on end.
fn upright(key: &Key) -> bool {
    key.label.len() <= 2
}

fn bit_or_model(key: &Key) -> String {
    if key.is_value_model() {
        key.label.clone()
    } else {
        format!("bit {}", key.label)
    }
}

/// The end of a long layer name.
fn shown_name(name: &str) -> String {
    let skip = name.chars().count().saturating_sub(NAME_CHARS);
    name.chars().skip(skip).collect()
}
