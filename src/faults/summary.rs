//! `faultsweep faults show`: a fault list in a few tables. In: a list's
//! metadata and rows, read one at a time. Out: text with the metadata, the
//! Leveugle strata (size and margin), and fault counts per sweep point,
//! layer, bit, fault model, number format, target and scope.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::{Fault, Meta};
use crate::error::Result;

/// The summary text of a list's metadata and rows, read as they come.
pub fn summary(meta: &Meta, rows: impl Iterator<Item = Result<Fault>>) -> Result<String> {
    const KEYS: [&str; 7] = [
        "sweep",
        "layer",
        "bit",
        "fault_model",
        "dtype",
        "target",
        "scope",
    ];
    let mut counts: [BTreeMap<String, u64>; 7] = Default::default();
    let (mut faults, mut injections) = (0u64, BTreeSet::new());
    for f in rows {
        let f = f?;
        faults += 1;
        injections.insert(f.injection);
        let keys = [
            format!("{:>5}", f.sweep),
            format!("{:>5} {}", f.node, f.layer),
            bits_key(&f.bits),
            f.model.name(),
            f.dtype.to_string(),
            f.target.to_string(),
            f.scope.name().to_string(),
        ];
        for (c, k) in counts.iter_mut().zip(keys) {
            *c.entry(k).or_default() += 1;
        }
    }
    let mut s = String::new();
    let _ = writeln!(s, "{faults} faults in {} injections", injections.len());
    if let Some(seed) = meta.seed {
        let _ = writeln!(s, "seed {seed}");
    }
    for (k, v) in [("scenario", &meta.scenario), ("model", &meta.model)] {
        if let Some(v) = v {
            let _ = writeln!(s, "{k} {v}");
        }
    }
    if let Some(n) = meta.samples {
        let _ = writeln!(s, "samples {n}");
    }
    for p in &meta.points {
        let _ = writeln!(s, "sweep point {}: {}", p.id, p.label);
    }
    strata(&mut s, meta);
    for (title, c) in KEYS.into_iter().zip(counts) {
        table(&mut s, title, c);
    }
    Ok(s)
}

fn bits_key(bits: &[u8]) -> String {
    match bits.len() {
        0 => "    -".into(),
        _ => format!("{:>5}", super::join(bits)),
    }
}

/// The Leveugle strata table (nothing when the list has none).
pub fn strata(s: &mut String, meta: &Meta) {
    if meta.strata.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nstrata (Leveugle et al. 2009)\n{:>5}  {:<40} {:<7} {:>4} {:>16} {:>8} {:>8} {:>6}",
        "sweep", "layer", "target", "bit", "population", "n", "margin", "conf"
    );
    for st in &meta.strata {
        let bit = st.bit.map_or("-".into(), |b| b.to_string());
        let _ = writeln!(
            s,
            "{:>5}  {:<40} {:<7} {:>4} {:>16} {:>8} {:>8.5} {:>6.3}",
            st.sweep,
            st.layer,
            st.target,
            bit,
            st.size.population,
            st.size.n,
            st.size.margin,
            st.size.confidence
        );
    }
}

fn table(s: &mut String, title: &str, counts: BTreeMap<String, u64>) {
    let total: u64 = counts.values().sum();
    let _ = writeln!(s, "\nper {title}");
    for (k, n) in counts {
        let share = 100.0 * n as f64 / total.max(1) as f64;
        let _ = writeln!(s, "  {k:<48} {n:>10} {share:>6.2}%");
    }
}
