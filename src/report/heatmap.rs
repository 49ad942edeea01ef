//! heatmap.svg: the SDE rate by layer (rows, in topological order) and bit
//! (columns, 31 on the left as in the format tables), one cell per pair that
//! had injections; the cell's tooltip gives the rate, its interval and count.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::Counts;

/// Counts per (layer index, layer name) and bit.
pub type Cells = BTreeMap<(usize, String), BTreeMap<u8, Counts>>;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// White for 0% SDE to deep red for the highest rate in the map.
fn colour(rate: f64, max: f64) -> String {
    let t = if max > 0.0 {
        (rate / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let g = (255.0 * (1.0 - t * 0.85)) as u8;
    let b = (255.0 * (1.0 - t)) as u8;
    format!("rgb(255,{g},{b})")
}

pub fn svg(cells: &Cells, title: &str) -> String {
    let bits: Vec<u8> = {
        let mut b: Vec<u8> = cells.values().flat_map(|m| m.keys().copied()).collect();
        b.sort_unstable_by(|a, b| b.cmp(a));
        b.dedup();
        b
    };
    let (cell, label_w, top) = (
        22,
        14 + 7 * cells.keys().map(|k| k.1.len()).max().unwrap_or(5).min(60),
        70,
    );
    let (w, h) = (
        label_w + cell * bits.len() + 120,
        top + cell * cells.len() + 40,
    );
    let max = cells
        .values()
        .flat_map(|m| m.values())
        .map(|c| c.rate(c.sde).0)
        .fold(0.0, f64::max);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="10" y="20" font-size="14" font-weight="bold">{}</text>"#,
        escape(title)
    );
    let _ = writeln!(
        s,
        r#"<text x="10" y="38">SDE rate by layer and bit (bit 0 = least significant; darker = more SDE; hover for counts)</text>"#
    );
    for (j, bit) in bits.iter().enumerate() {
        let x = label_w + j * cell + cell / 2;
        let _ = writeln!(
            s,
            r#"<text x="{x}" y="{}" text-anchor="middle">{bit}</text>"#,
            top - 6
        );
    }
    for (i, ((_, layer), row)) in cells.iter().enumerate() {
        let y = top + i * cell;
        let name: String = layer
            .chars()
            .rev()
            .take(60)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            label_w - 6,
            y + cell * 2 / 3,
            escape(&name)
        );
        for (j, bit) in bits.iter().enumerate() {
            let Some(c) = row.get(bit) else { continue };
            let (r, lo, hi) = c.rate(c.sde);
            let _ = writeln!(
                s,
                r##"<rect x="{}" y="{y}" width="{}" height="{}" fill="{}" stroke="#ccc"><title>{} bit {bit}: SDE {:.1}% [{:.1}, {:.1}] of {}</title></rect>"##,
                label_w + j * cell,
                cell,
                cell,
                colour(r, max),
                escape(layer),
                100.0 * r,
                100.0 * lo,
                100.0 * hi,
                c.n
            );
        }
    }
    let lx = label_w + cell * bits.len() + 20;
    for k in 0..=4 {
        let r = max * k as f64 / 4.0;
        let y = top + k * cell;
        let _ = writeln!(
            s,
            r##"<rect x="{lx}" y="{y}" width="{cell}" height="{cell}" fill="{}" stroke="#ccc"/><text x="{}" y="{}">{:.1}%</text>"##,
            colour(r, max),
            lx + cell + 4,
            y + cell * 2 / 3,
            100.0 * r
        );
    }
    s.push_str("</svg>\n");
    s
}
