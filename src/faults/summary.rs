//! `faultsweep faults show`: a fault list in a few tables. In: a
//! [`FaultList`]. Out: text with the metadata, the Leveugle strata (size and
//! margin), and fault counts per sweep point, layer, bit, fault model,
//! number format, target and scope.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::FaultList;

/// The summary text.
pub fn summary(list: &FaultList) -> String {
    let mut s = String::new();
    let injections: std::collections::BTreeSet<u64> =
        list.faults.iter().map(|f| f.injection).collect();
    let _ = writeln!(
        s,
        "{} faults in {} injections",
        list.faults.len(),
        injections.len()
    );
    let m = &list.meta;
    if let Some(seed) = m.seed {
        let _ = writeln!(s, "seed {seed}");
    }
    for (k, v) in [("scenario", &m.scenario), ("model", &m.model)] {
        if let Some(v) = v {
            let _ = writeln!(s, "{k} {v}");
        }
    }
    if let Some(n) = m.samples {
        let _ = writeln!(s, "samples {n}");
    }
    for p in &m.points {
        let _ = writeln!(s, "sweep point {}: {}", p.id, p.label);
    }
    strata(&mut s, list);
    let by = |key: &dyn Fn(&super::Fault) -> String| {
        let mut c: BTreeMap<String, u64> = BTreeMap::new();
        for f in &list.faults {
            *c.entry(key(f)).or_default() += 1;
        }
        c
    };
    table(&mut s, "sweep", by(&|f| format!("{:>5}", f.sweep)));
    table(
        &mut s,
        "layer",
        by(&|f| format!("{:>5} {}", f.node, f.layer)),
    );
    table(&mut s, "bit", by(&|f| bits_key(&f.bits)));
    table(&mut s, "fault_model", by(&|f| f.model.name()));
    table(&mut s, "dtype", by(&|f| f.dtype.to_string()));
    table(&mut s, "target", by(&|f| f.target.to_string()));
    table(&mut s, "scope", by(&|f| f.scope.name().to_string()));
    s
}

fn bits_key(bits: &[u8]) -> String {
    match bits.len() {
        0 => "    -".into(),
        _ => format!("{:>5}", super::join(bits)),
    }
}

/// The Leveugle strata table (nothing when the list has none).
pub fn strata(s: &mut String, list: &FaultList) {
    if list.meta.strata.is_empty() {
        return;
    }
    let _ = writeln!(
        s,
        "\nstrata (Leveugle et al. 2009)\n{:>5}  {:<40} {:<7} {:>4} {:>16} {:>8} {:>8} {:>6}",
        "sweep", "layer", "target", "bit", "population", "n", "margin", "conf"
    );
    for st in &list.meta.strata {
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
