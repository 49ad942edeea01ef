//! Step 5, inject: run faulty inferences, resuming from cached frontiers.
//!
//! Injections run in batches of one sample (or a few): each sample's
//! fault-free golden row starts from its cached frontier at the earliest cut
//! the batch needs, and each faulty row joins at its start cut (the cut
//! right after its first faulted node) as a copy of its golden row, so no
//! row runs a node before its fault and one golden row serves the whole
//! batch. Results depend on the batch a row runs in (libtorch picks kernels
//! by batch size), so every comparison is made against the golden row of the
//! same batch, never against another run. A batch depends on nothing else:
//! not on the batches before it, nor on the thread that runs it, so
//! batches run on several threads at once (`workers`).
//!
//! Fault dropping: after every node, a faulty row whose live values (the
//! frontier of the next cut) are bitwise those of its golden row is finished
//! as masked and leaves the batch. A row holding NaN or Inf runs on to the
//! output (a later ReLU or Clip may remove an Inf): its outcome is the
//! output's, and the first node that held it is recorded.
//!
//! Layout: [`Injection`] and its result (`injection`), [`Options`] and its
//! [`Mode`] (`options`), the [`Engine`] that batches lists and runs them on
//! its workers (`engine`, `sizing`, `workers`), one batch through the
//! suffix (`batch`) with its row state (`rows`), regional rows (`region`,
//! `blocks`, `depthwise`), weight faults (`weights`), the magnitude bounds
//! that skip NaN scans (`bounds`), where rows start (`frontiers`), and the
//! check against the plain pass (`verify`).

mod batch;
mod blocks;
mod bounds;
mod engine;
mod frontiers;
mod injection;
mod options;
mod region;
mod rows;
mod sizing;
mod verify;
mod weights;
mod workers;

pub use engine::Engine;
pub use frontiers::{CachedFrontiers, ComputedFrontiers, Frontiers, InputFrontiers, PartFrontiers};
pub use injection::{Corrupt, FaultSite, Injection, InjectionResult, NodeFault, SiteValues};
pub use options::{BoxKernels, Mode, Options};
pub use verify::{agreement, plain_run, plain_run_outputs, Agreement};
pub use workers::on_workers;

use tch::Tensor;

/// Corrupts element `index` of the flat view of `t` (contiguous) in place.
fn corrupt_flat(
    t: &Tensor,
    index: i64,
    corrupt: &Corrupt,
) -> std::result::Result<SiteValues, String> {
    let elements = t.numel() as i64;
    if index < 0 || index >= elements {
        return Err(format!(
            "fault index {index} is outside the {elements} elements"
        ));
    }
    // A contiguous float32 CPU value is corrupted in place without tensor
    // calls, which cost more than the write on small models.
    if let Some((original, faulty)) =
        crate::kernels::views::replace_float(t, index as usize, |v| corrupt(f64::from(v)) as f32)
    {
        let (original, faulty) = (f64::from(original), f64::from(faulty));
        return Ok(SiteValues { original, faulty });
    }
    // The element as a view, through each axis in turn: `t` may be a
    // strided row of a value whose batch axis is not the first.
    let (mut cell, mut rest, size) = (t.shallow_clone(), index, t.size());
    for axis in 0..size.len() {
        let stride: i64 = size[axis + 1..].iter().product();
        cell = cell.f_select(0, rest / stride).map_err(|e| e.to_string())?;
        rest %= stride;
    }
    let original = cell.f_double_value(&[]).map_err(|e| e.to_string())?;
    let _ = cell.f_fill_(corrupt(original)).map_err(|e| e.to_string())?;
    // Read back in the tensor's own kind: the value the model really sees.
    let faulty = cell.f_double_value(&[]).map_err(|e| e.to_string())?;
    Ok(SiteValues { original, faulty })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Graph;

    /// A test fixture model (tests/fixtures/models) and its input.
    pub(super) fn fixture(name: &str) -> (Graph, Tensor) {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/models");
        let graph = crate::load::load(dir.join(format!("{name}.onnx"))).unwrap();
        let input = Tensor::read_npy(dir.join(format!("{name}.input.npy"))).unwrap();
        (graph, input)
    }
}
