//! The cumulative moving average of the SDE rate over injections
//! (InjectTF2's CMA): after the first m injections of the fault list, the
//! SDE rate of their runs, with its clustered interval. A curve that has
//! flattened inside a narrow band says the campaign has converged. In: each
//! injection's counts, by its id. Out: the points of `cma.svg` and of the
//! `cma` table.
//!
//! Points are kept at 20 per decade of injections (1, 2, 3, ... 10, 11, 13,
//! 14, ...), whatever the campaign's size: each injection counts in the
//! bucket of the first point at or after it, so the curve is exact at every
//! point, independent of the order the injections finished in, and small.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::heatmap::{escape, text_width};
use super::stats::{Confidence, Counts, Event, Group};

/// Points per decade of injections.
const PER_DECADE: f64 = 20.0;

/// Each point's injections, by the point (injections counted up to it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Cma {
    buckets: BTreeMap<u64, Group>,
}

/// The point at which the `m`-th injection (from 1) is counted: the
/// smallest of round(10^(j/20)) at least `m`.
fn point_of(m: u64) -> u64 {
    let at = |j: f64| libm::round(libm::pow(10.0, j / PER_DECADE)) as u64;
    let mut j = libm::floor(PER_DECADE * libm::log10(m as f64)).max(0.0);
    while at(j) < m {
        j += 1.0;
    }
    at(j)
}

impl Cma {
    /// Counts the injection with id `injection` (ids from 0, in fault list
    /// order).
    pub fn add_injection(&mut self, injection: u64, c: &Counts) {
        let group = self.buckets.entry(point_of(injection + 1)).or_default();
        group.add_injection(c);
    }

    /// The curve: the runs of every injection up to each point, in order
    /// (the last point holds every injection).
    pub fn points(&self) -> Vec<Group> {
        let mut total = Group::default();
        self.buckets
            .values()
            .map(|g| {
                total.merge(g);
                total.clone()
            })
            .collect()
    }
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 360.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 50.0;
const BOTTOM: f64 = 50.0;

/// cma.svg: the SDE rate against the injections counted (log scale), with
/// its interval as a band.
pub fn svg(points: &[Group], title: &str, confidence: Confidence) -> String {
    let z = confidence.z;
    let rates: Vec<(f64, f64, f64, f64)> = points
        .iter()
        .map(|g| {
            let r = g.rate(Event::Sde, z);
            (g.injections as f64, r.rate, r.low, r.high)
        })
        .collect();
    let m = rates.last().map_or(1.0, |p| p.0);
    let decades = libm::ceil(libm::log10(m.max(10.0))).max(1.0);
    // The rate axis fits the curve's last decade (from m = 10 at least);
    // the first injections' wide intervals are cut at its top.
    let settled = (m / 10.0).max(10.0).min(m);
    let top_rate = nice_ceiling(
        rates
            .iter()
            .filter(|p| p.0 >= settled)
            .map(|p| p.3)
            .fold(0.0, f64::max),
    );
    let width = WIDTH.max(LEFT + text_width(title, 14.0) as f64 + RIGHT);
    let (plot_w, plot_h) = (width - LEFT - RIGHT, HEIGHT - TOP - BOTTOM);
    let x = |m: f64| LEFT + plot_w * libm::log10(m.max(1.0)) / decades;
    let y = |r: f64| TOP + plot_h * (1.0 - (r / top_rate).min(1.0));
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" font-family="sans-serif" font-size="11">"#
    );
    let _ = writeln!(
        s,
        r#"<rect width="{width}" height="{HEIGHT}" fill="white"/><text x="{LEFT}" y="20" font-size="14">{}</text><text x="{LEFT}" y="36">SDE rate after the first m injections, {} interval shaded (cut at the top of the axis)</text>"#,
        escape(title),
        confidence.percent()
    );
    // Axes, ticks and grid.
    for d in 0..=decades as u32 {
        let m = libm::pow(10.0, f64::from(d));
        let _ = writeln!(
            s,
            r##"<line x1="{0:.1}" y1="{TOP}" x2="{0:.1}" y2="{1:.1}" stroke="#ddd"/><text x="{0:.1}" y="{2:.1}" text-anchor="middle">{3}</text>"##,
            x(m),
            TOP + plot_h,
            TOP + plot_h + 16.0,
            m as u64
        );
    }
    for k in 0..=4 {
        let r = top_rate * f64::from(k) / 4.0;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{4}%</text>"##,
            y(r),
            LEFT + plot_w,
            LEFT - 6.0,
            y(r) + 4.0,
            trim(100.0 * r)
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">injections m (log scale)</text>"#,
        LEFT + plot_w / 2.0,
        HEIGHT - 10.0
    );
    if !rates.is_empty() {
        let upper = rates.iter().map(|p| format!("{:.1},{:.1}", x(p.0), y(p.3)));
        let lower = rates
            .iter()
            .rev()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.2)));
        let band: Vec<String> = upper.chain(lower).collect();
        let line: Vec<String> = rates
            .iter()
            .map(|p| format!("{:.1},{:.1}", x(p.0), y(p.1)))
            .collect();
        let _ = writeln!(
            s,
            r##"<polygon points="{}" fill="#f4b6b6" stroke="none"/><polyline points="{}" fill="none" stroke="#c00" stroke-width="1.5"/>"##,
            band.join(" "),
            line.join(" ")
        );
        for (m, rate, low, high) in &rates {
            let _ = writeln!(
                s,
                r##"<circle cx="{:.1}" cy="{:.1}" r="2" fill="#c00"><title>{m} injections: SDE {:.3}% [{:.3}, {:.3}]</title></circle>"##,
                x(*m),
                y(*rate),
                100.0 * rate,
                100.0 * low,
                100.0 * high
            );
        }
    }
    s.push_str("</svg>\n");
    s
}

/// The smallest of 1, 2, 5 times a power of ten at or above `r` (at least
/// 0.1%), the top of the rate axis.
fn nice_ceiling(r: f64) -> f64 {
    let mut step = 0.001;
    loop {
        for f in [1.0, 2.0, 5.0] {
            if f * step >= r || f * step >= 1.0 {
                return (f * step).min(1.0);
            }
        }
        step *= 10.0;
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::classify::Outcome;

    #[test]
    fn points_are_twenty_per_decade_and_every_injection_has_one() {
        let points: Vec<u64> = (1..=100).map(point_of).collect();
        assert_eq!(&points[..12], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13]);
        assert!(points.windows(2).all(|w| w[0] <= w[1]));
        assert!((1..=100_000).all(|m| point_of(m) >= m));
        let distinct: std::collections::BTreeSet<u64> = (1..=1000).map(point_of).collect();
        assert!(distinct.len() <= 61, "{}", distinct.len());
    }

    #[test]
    fn the_curve_is_the_rate_of_the_first_injections_whatever_their_order() {
        let run = |sde: bool| {
            let mut c = Counts::default();
            c.add(if sde { Outcome::Sde } else { Outcome::Masked }, true);
            c
        };
        let sde = |id: u64| id.is_multiple_of(3);
        let (mut forward, mut backward) = (Cma::default(), Cma::default());
        for id in 0..50 {
            forward.add_injection(id, &run(sde(id)));
            backward.add_injection(49 - id, &run(sde(49 - id)));
        }
        assert_eq!(forward, backward);
        let points = forward.points();
        for g in &points {
            let m = g.injections;
            assert_eq!(g.counts.sde, (0..m).filter(|&id| sde(id)).count() as u64);
        }
        assert_eq!(points.last().unwrap().injections, 50);
    }
}
