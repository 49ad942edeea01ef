//! Which opsets an op runs at. Every kernel implements its op as the spec
//! defines it at opset [`IMPLEMENTED`] (and each earlier version the loader
//! meets), a few at a newer version (`NEWER`). A model of a later opset
//! runs an op when every change to its definition since that version only
//! touched tensor types (ONNX added float8, float4 and int2 types to many
//! ops in opsets 23 to 28: faultsweep runs the types libtorch holds and
//! refuses others by name); otherwise the node is refused, naming the op
//! and the versions. The history comes from the pinned `onnx` package
//! (`opset_history.rs`, written by `scripts/make_opset_table.py`).

pub use super::opset_history::ONNX;
use super::opset_history::{HISTORY, NEWEST};
use super::Op;

/// The opset whose op definitions the kernels implement.
pub const IMPLEMENTED: i64 = 22;

/// Ops whose kernel implements a newer version than [`IMPLEMENTED`]: the
/// attribute Cast and CastLike gained in opset 24 (`round_mode`) only
/// concerns float8e8m0, which faultsweep does not hold.
const NEWER: &[(Op, i64)] = &[
    (Op::Cast, 24),
    (Op::CastLike, 24),
    // Ops introduced after opset 22, at the newest version their kernel runs
    // (Attention: 23, 24 with nonpad_kv_seqlen, 25 with sliding windows).
    (Op::Attention, 25),
    (Op::RMSNormalization, 23),
    (Op::RotaryEmbedding, 23),
    (Op::LinearAttention, 27),
    (Op::Swish, 24),
    (Op::CumProd, 26),
    (Op::TensorScatter, 24),
    (Op::SwiGLU, 28),
    (Op::BitCast, 26),
    (Op::CausalConvWithState, 27),
    // QuantizeLinear 23 added `precision`, DequantizeLinear 23
    // `output_dtype`; later versions only added types.
    (Op::QuantizeLinear, 23),
    (Op::DequantizeLinear, 23),
    // Mod 28 defines fmod 0 for floating-point inputs (floor division, the
    // sign of B), which the kernel implements; the rest is version 13's.
    (Op::Mod, 28),
    // DepthToSpace 28 only gained a function body: its text, attributes
    // and types are version 13's, which the kernel implements.
    (Op::DepthToSpace, 28),
    // SpaceToDepth 28 gained `mode` (CRD beside the DCR layout of 13).
    (Op::SpaceToDepth, 28),
    // Range 27 added float16 and bfloat16 with `stash_type`, the type
    // they are computed in.
    (Op::Range, 27),
];

/// The default-domain opsets whose every op version the kernels implement.
pub const OPSETS: std::ops::RangeInclusive<i64> = 7..=NEWEST;

/// The oldest opset a model may declare. Below [`OPSETS`] a model runs
/// when each of its ops has, at its opset, the definition it has at opset
/// 7 (many ops, Not or MatMul, never changed); ops that did change (Add's
/// broadcasting, the `consumed_inputs` of opset 1) are refused by name.
pub const OLDEST: i64 = 1;

/// The versions of the op named `name` (empty for a name ONNX does not
/// define).
fn versions(name: &str) -> &'static [(i64, bool)] {
    HISTORY
        .binary_search_by(|(n, _)| n.cmp(&name))
        .map_or(&[], |i| HISTORY[i].1)
}

/// The op's version at `opset`: the newest one introduced at or before it.
pub fn version_at(op: Op, opset: i64) -> Option<i64> {
    (versions(op.name()).iter())
        .map(|&(v, _)| v)
        .take_while(|&v| v <= opset)
        .last()
}

/// Whether a model of `opset` may run `op`; the reason when it may not.
pub fn check(op: Op, opset: i64) -> Result<(), String> {
    let Some(version) = version_at(op, opset) else {
        let first = versions(op.name()).first().map_or(0, |v| v.0);
        return Err(format!(
            "op {op} does not exist in opset {opset} (ONNX introduced it in opset {first})"
        ));
    };
    if opset < *OPSETS.start() {
        return check_old(op, opset, version);
    }
    let implemented = NEWER
        .iter()
        .find(|(o, _)| *o == op)
        .map_or(IMPLEMENTED, |&(_, v)| v);
    let changed = changes(op, implemented, opset);
    if changed.is_empty() {
        return Ok(());
    }
    let runs = version_at(op, implemented).unwrap_or(0);
    Err(format!(
        "op {op} is version {version} at opset {opset}; faultsweep implements version {runs}, and the definition changed in version {} (beyond its types): export the model at opset {} or lower",
        changed.join(", "),
        changed[0].parse::<i64>().unwrap_or(implemented + 1) - 1
    ))
}

/// The versions of `op` after opset `after` up to opset `upto` that
/// changed more than its types.
fn changes(op: Op, after: i64, upto: i64) -> Vec<String> {
    (versions(op.name()).iter())
        .filter(|&&(v, types_only)| v > after && v <= upto && !types_only)
        .map(|(v, _)| v.to_string())
        .collect()
}

/// Below [`OPSETS`]: `op` (at `version` in `opset`) runs when no change
/// beyond its types separates its definition from the one at the oldest
/// opset the kernels implement.
fn check_old(op: Op, opset: i64, version: i64) -> Result<(), String> {
    let oldest = *OPSETS.start();
    let changed = changes(op, opset, oldest);
    if changed.is_empty() {
        return Ok(());
    }
    Err(format!(
        "op {op} is version {version} at opset {opset}, older than faultsweep implements (opset {oldest} on): its definition changed in version {}: export the model at opset {oldest} or later",
        changed.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_history_is_sorted_by_name_for_the_search() {
        assert!(HISTORY.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn every_op_with_a_kernel_is_an_onnx_op() {
        for &op in Op::ALL {
            assert!(
                !versions(op.name()).is_empty(),
                "{op} is not in the history"
            );
        }
    }

    #[test]
    fn type_only_changes_run_and_others_are_refused_by_name() {
        // Reshape 23, 24 and 25 only added float4, float8e8m0 and int2 types.
        assert_eq!(check(Op::Reshape, 25), Ok(()));
        assert_eq!(version_at(Op::Reshape, 25), Some(25));
        // Conv has not changed since 22.
        assert_eq!(check(Op::Conv, NEWEST), Ok(()));
        // SpaceToDepth 28 and Range 27 run (NEWER).
        assert_eq!(check(Op::SpaceToDepth, 28), Ok(()));
        assert_eq!(check(Op::SpaceToDepth, 27), Ok(()));
        assert_eq!(check(Op::Range, 27), Ok(()));
        // No op with a kernel changed beyond its types after the version
        // it implements; SpaceToDepth's 28 is the kind of change refused.
        for &op in Op::ALL {
            assert_eq!(check(op, NEWEST), Ok(()), "{op}");
        }
        assert_eq!(changes(Op::SpaceToDepth, 22, 28), ["28"]);
        assert!(changes(Op::SpaceToDepth, 13, 27).is_empty());
        // Mod and DepthToSpace run at version 28 (NEWER).
        assert_eq!(check(Op::Mod, 28), Ok(()));
        assert_eq!(check(Op::DepthToSpace, 28), Ok(()));
        // Ops younger than opset 22 run from the opset that introduced them.
        assert_eq!(check(Op::Attention, 25), Ok(()));
        assert!(check(Op::Attention, 22)
            .unwrap_err()
            .contains("introduced it in opset 23"));
        // Below opset 7: ops unchanged since their first version run.
        assert_eq!(check(Op::Not, 1), Ok(()));
        assert_eq!(check(Op::MatMul, 1), Ok(()));
        let err = check(Op::Add, 1).unwrap_err();
        assert!(
            err.contains("version 1 at opset 1") && err.contains("version 6, 7"),
            "{err}"
        );
        // An op younger than the model's opset.
        assert!(check(Op::Gelu, 19)
            .unwrap_err()
            .contains("introduced it in opset 20"));
    }
}
