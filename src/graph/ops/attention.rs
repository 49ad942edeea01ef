//! Attention and the ops around it in transformer blocks.
//! Specs: <https://onnx.ai/onnx/operators/onnx__Attention.html> (versions
//! 23, 24 and 25), <https://onnx.ai/onnx/operators/onnx__RMSNormalization.html>,
//! <https://onnx.ai/onnx/operators/onnx__RotaryEmbedding.html>,
//! <https://onnx.ai/onnx/operators/onnx__LinearAttention.html>.
//!
//! Each kernel follows the order of operations of the spec's reference
//! (`onnx.reference.ops`) so that results round as ONNX's own do.

use tch::{Device, Kind, Tensor};

use super::{axis, fail, input, one, opt_input, to_i64s, Inputs, KResult, OpDef};
use crate::graph::is_float;
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::Attention,
        attrs: &[
            "is_causal",
            "kv_num_heads",
            "q_num_heads",
            "qk_matmul_output_mode",
            "scale",
            "softcap",
            "softmax_precision",
            "left_window_size",
            "right_window_size",
        ],
        kernel: attention,
    },
    OpDef {
        op: Op::RMSNormalization,
        attrs: &["axis", "epsilon", "stash_type"],
        kernel: rms_norm,
    },
    OpDef {
        op: Op::RotaryEmbedding,
        attrs: &["interleaved", "num_heads", "rotary_embedding_dim"],
        kernel: rotary_embedding,
    },
    OpDef {
        op: Op::LinearAttention,
        attrs: &[
            "chunk_size",
            "kv_num_heads",
            "q_num_heads",
            "scale",
            "update_rule",
        ],
        kernel: linear_attention,
    },
];

/// A floating-point type named by an ONNX TensorProto type number (the
/// `stash_type` and `softmax_precision` attributes).
fn float_kind(what: &str, t: i64) -> KResult<Kind> {
    match t {
        1 => Ok(Kind::Float),
        10 => Ok(Kind::Half),
        11 => Ok(Kind::Double),
        16 => Ok(Kind::BFloat16),
        t => fail(format!(
            "{what} {t} is not a floating-point type (1, 10, 11 or 16)"
        )),
    }
}

/// A positive head count from attribute `name`, required.
fn heads(node: &Node, name: &str, why: &str) -> KResult<i64> {
    if !node.attrs.has(name) {
        return fail(format!("attribute {name} is required {why}"));
    }
    let h = node.attrs.int(name, 0)?;
    if h < 1 {
        return fail(format!("{name} {h} should be positive"));
    }
    Ok(h)
}

/// `(B, S, H * D)` to `(B, H, S, D)`.
fn split_heads(x: &Tensor, heads: i64, what: &str) -> KResult<Tensor> {
    let s = x.size();
    if s[2] % heads != 0 {
        return fail(format!(
            "{what} hidden size {} is not a multiple of its {heads} heads",
            s[2]
        ));
    }
    Ok(x.f_reshape([s[0], s[1], heads, s[2] / heads])?
        .f_transpose(1, 2)?)
}

/// `0` where `allowed`, `-inf` elsewhere, of type `kind`.
fn bias_of(allowed: &Tensor, kind: Kind) -> KResult<Tensor> {
    let zero = Tensor::f_zeros([], (kind, Device::Cpu))?;
    let neg = Tensor::f_full([], f64::NEG_INFINITY, (kind, Device::Cpu))?;
    Ok(zero.f_where_self(allowed, &neg)?)
}

/// Softmax over the last axis as ONNX's reference computes it: a row of
/// only `-inf` gives zeros, not NaN.
fn safe_softmax(x: &Tensor) -> KResult<Tensor> {
    let max = x.f_amax([-1i64].as_slice(), true)?;
    let safe = max.f_where_self(&max.f_isneginf()?.f_logical_not()?, &max.f_zeros_like()?)?;
    let e = x.f_sub(&safe)?.f_exp()?;
    let s = e.f_sum_dim_intlist([-1i64].as_slice(), true, e.kind())?;
    let s = s.f_where_self(&s.f_ne(0.0)?, &s.f_ones_like()?)?;
    Ok(e.f_div(&s)?)
}

/// Attention (versions 23, 24 and 25): scaled dot-product attention with
/// 3-D or 4-D inputs, MHA/GQA/MQA head counts, boolean or additive masks,
/// causal masking aligned bottom-right, a past key/value cache (23) or
/// padded keys (`nonpad_kv_seqlen`, 24), sliding windows (25), softcap,
/// the softmax precision and the four `qk_matmul_output` modes. A query row
/// no key may attend gives zeros (the errata of versions 23 and 24).
fn attention(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (q, k, v) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let mask = opt_input(inputs, 3);
    let (past_key, past_value) = (opt_input(inputs, 4), opt_input(inputs, 5));
    let nonpad = opt_input(inputs, 6);
    let version = if node.opset >= 25 {
        25
    } else if node.opset >= 24 {
        24
    } else {
        23
    };
    if nonpad.is_some() && version < 24 {
        return fail("input nonpad_kv_seqlen exists from Attention 24 (opset 24)");
    }
    let window = |name: &str| -> KResult<i64> {
        if version < 25 && node.attrs.has(name) {
            return fail(format!(
                "attribute {name} exists from Attention 25 (opset 25)"
            ));
        }
        let w = node.attrs.int(name, -1)?;
        if w < -1 {
            return fail(format!("{name} {w} should be -1 or nonnegative"));
        }
        Ok(w)
    };
    let (left, right) = (window("left_window_size")?, window("right_window_size")?);
    let kind = q.kind();
    if !is_float(kind) || !is_float(k.kind()) || !is_float(v.kind()) {
        return fail(format!(
            "Q, K and V should be floating-point tensors, got {:?}, {:?} and {:?}",
            q.kind(),
            k.kind(),
            v.kind()
        ));
    }
    if k.kind() != kind {
        return fail(format!(
            "K is {:?}, Q {kind:?}: they should be of one type",
            k.kind()
        ));
    }
    let rank = q.dim();
    if k.dim() != rank || v.dim() != rank || !(rank == 3 || rank == 4) {
        return fail(format!(
            "Q, K and V should all be 3-D or all 4-D, got shapes {:?}, {:?} and {:?}",
            q.size(),
            k.size(),
            v.size()
        ));
    }
    let (q4, k4, v4) = if rank == 3 {
        let why = "with 3-D Q, K and V";
        let (qh, kvh) = (
            heads(node, "q_num_heads", why)?,
            heads(node, "kv_num_heads", why)?,
        );
        (
            split_heads(q, qh, "Q")?,
            split_heads(k, kvh, "K")?,
            split_heads(v, kvh, "V")?,
        )
    } else {
        for (name, dim) in [("q_num_heads", q.size()[1]), ("kv_num_heads", k.size()[1])] {
            if node.attrs.has(name) {
                if version >= 25 {
                    return fail(format!(
                        "{name} must not be given with 4-D inputs (Attention 25)"
                    ));
                }
                let h = node.attrs.int(name, 0)?;
                if h != dim {
                    return fail(format!("{name} {h} differs from the input's {dim} heads"));
                }
            }
        }
        (q.shallow_clone(), k.shallow_clone(), v.shallow_clone())
    };
    let (qs, ks, vs) = (q4.size(), k4.size(), v4.size());
    let (batch, q_heads, q_len, head_size) = (qs[0], qs[1], qs[2], qs[3]);
    if ks[0] != batch || vs[0] != batch {
        return fail(format!(
            "Q, K and V have batch sizes {}, {} and {}",
            batch, ks[0], vs[0]
        ));
    }
    if ks[3] != head_size {
        return fail(format!(
            "K's head size {} differs from Q's {head_size}",
            ks[3]
        ));
    }
    if vs[1] != ks[1] || vs[2] != ks[2] {
        return fail(format!(
            "V has {} heads of {} positions, K {} of {}",
            vs[1], vs[2], ks[1], ks[2]
        ));
    }
    // Scale Q and K each by the square root of the scale, rounded to their type.
    let scale = match node.attrs.has("scale") {
        true => f64::from(node.attrs.float("scale", 0.0)?),
        false => 1.0 / (head_size as f64).sqrt(),
    };
    let root = Tensor::f_full([], scale.sqrt(), (Kind::Double, Device::Cpu))?.f_to_kind(kind)?;

    // The cache.
    let (key, value, past_len) = match (past_key, past_value) {
        (None, None) => (k4, v4, None),
        (Some(pk), Some(pv)) => {
            if nonpad.is_some() {
                return fail("nonpad_kv_seqlen cannot be used with past_key and past_value");
            }
            if pk.dim() != 4 || pv.dim() != 4 {
                return fail(format!(
                    "past_key and past_value should be 4-D, got shapes {:?} and {:?}",
                    pk.size(),
                    pv.size()
                ));
            }
            let len = pk.size()[2];
            (
                Tensor::f_cat(&[pk, &k4], 2)?,
                Tensor::f_cat(&[pv, &v4], 2)?,
                Some(len),
            )
        }
        _ => return fail("past_key and past_value must be given together"),
    };
    let total = key.size()[2];
    let kv_heads = key.size()[1];

    // The additive bias: mask, causal frontier, window, padding.
    let mut bias = Tensor::f_zeros([q_len, total], (kind, Device::Cpu))?;
    let mut mask = match mask {
        None => None,
        Some(m) => {
            if m.dim() == 0 || m.dim() > 4 {
                return fail(format!(
                    "attn_mask of shape {:?} should have rank 1 to 4",
                    m.size()
                ));
            }
            let last = m.size()[m.dim() - 1];
            if last > total {
                return fail(format!(
                    "attn_mask's last axis has {last} positions, more than the {total} keys"
                ));
            }
            let m = if m.kind() == Kind::Bool {
                bias_of(m, kind)?
            } else {
                m.f_to_kind(kind)?
            };
            // A shorter mask is padded with -inf (False).
            Some(match last < total {
                true => m.f_pad([0, total - last].as_slice(), "constant", f64::NEG_INFINITY)?,
                false => m,
            })
        }
    };
    // Offset of the first query: past keys, or nonpad - q_len per batch.
    let offset: Tensor = match (past_len, nonpad) {
        (Some(p), _) => Tensor::from(p),
        (None, Some(n)) => {
            let n = n.f_to_kind(Kind::Int64)?;
            if n.size() != [batch] {
                return fail(format!(
                    "nonpad_kv_seqlen of shape {:?} should be [{batch}]",
                    n.size()
                ));
            }
            n.f_sub_scalar(q_len)?.f_reshape([batch, 1, 1, 1])?
        }
        (None, None) => Tensor::from(0i64),
    };
    let i = Tensor::f_arange(q_len, (Kind::Int64, Device::Cpu))?.f_reshape([q_len, 1])?;
    let j = Tensor::f_arange(total, (Kind::Int64, Device::Cpu))?.f_reshape([1, total])?;
    // Position of each query minus each key's: (q, kv) or (B, 1, q, kv).
    let diff = i.f_add(&offset)?.f_sub(&j)?;
    if node.attrs.int("is_causal", 0)? != 0 {
        bias = bias.f_add(&bias_of(&diff.f_ge(0)?, kind)?)?;
    }
    if let Some(m) = mask.take() {
        bias = bias.f_add(&m)?;
    }
    if left >= 0 || right >= 0 {
        let mut allowed = diff.f_ones_like()?.f_to_kind(Kind::Bool)?;
        if left >= 0 {
            allowed = allowed.f_logical_and(&diff.f_le(left)?)?;
        }
        if right >= 0 {
            allowed = allowed.f_logical_and(&diff.f_ge(-right)?)?;
        }
        bias = bias.f_add(&bias_of(&allowed, kind)?)?;
    }
    if let Some(n) = nonpad {
        let n = n.f_to_kind(Kind::Int64)?.f_reshape([batch, 1, 1, 1])?;
        bias = bias.f_add(&bias_of(&j.f_lt_tensor(&n)?, kind)?)?;
    }

    // Grouped heads: each key/value head serves q_heads / kv_heads queries.
    let (key_r, value_r) = if q_heads != kv_heads {
        if q_heads % kv_heads != 0 {
            return fail(format!(
                "{q_heads} query heads are not a multiple of the {kv_heads} key/value heads"
            ));
        }
        let reps = q_heads / kv_heads;
        (
            key.f_repeat_interleave_self_int(reps, 1, None)?,
            value.f_repeat_interleave_self_int(reps, 1, None)?,
        )
    } else {
        (key.shallow_clone(), value.shallow_clone())
    };
    let raw = q4
        .f_mul(&root)?
        .f_matmul(&key_r.f_mul(&root)?.f_transpose(-1, -2)?)?;
    let softcap = f64::from(node.attrs.float("softcap", 0.0)?);
    let capped = match softcap > 0.0 {
        true => raw.f_div_scalar(softcap)?.f_tanh()?.f_mul_scalar(softcap)?,
        false => raw.shallow_clone(),
    };
    let with_bias = capped.f_add(&bias)?;
    let mode = node.attrs.int("qk_matmul_output_mode", 0)?;
    let mut scores = match node.attrs.has("softmax_precision") {
        true => {
            let p = float_kind("softmax_precision", node.attrs.int("softmax_precision", 1)?)?;
            with_bias.f_to_kind(p)?
        }
        false => with_bias.shallow_clone(),
    };
    scores = safe_softmax(&scores)?;
    // A row whose bias is -inf everywhere attends nothing: zeros.
    let masked_row = bias.f_amax([-1i64].as_slice(), true)?.f_isneginf()?;
    scores = scores.f_where_self(&masked_row.f_logical_not()?, &scores.f_zeros_like()?)?;
    let qk_out = match mode {
        0 => raw,
        1 => capped,
        2 => with_bias,
        3 => scores.shallow_clone(),
        m => return fail(format!("qk_matmul_output_mode {m} is not 0, 1, 2 or 3")),
    };
    let probs = scores.f_to_kind(kind)?;
    let common = promote(kind, value_r.kind());
    let mut y = probs
        .f_to_kind(common)?
        .f_matmul(&value_r.f_to_kind(common)?)?
        .f_to_kind(kind)?;
    if rank == 3 {
        y = y.f_transpose(1, 2)?.f_reshape([batch, q_len, -1])?;
    }
    let mut out = vec![y, key, value, qk_out.f_to_kind(kind)?];
    out.truncate(node.outputs.len().max(1));
    Ok(out)
}

/// The wider of two floating-point kinds (V may differ from Q and K).
fn promote(a: Kind, b: Kind) -> Kind {
    let rank = |k: Kind| match k {
        Kind::Double => 3,
        Kind::Float => 2,
        _ => 1,
    };
    match (a, b) {
        _ if a == b => a,
        (Kind::Half, Kind::BFloat16) | (Kind::BFloat16, Kind::Half) => Kind::Float,
        _ if rank(a) >= rank(b) => a,
        _ => b,
    }
}

/// RMSNormalization: X / sqrt(mean(X^2 over axis..) + epsilon), computed in
/// `stash_type`, cast back to X's type, times `scale`.
fn rms_norm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (x, scale) = (input(inputs, 0)?, input(inputs, 1)?);
    if !is_float(x.kind()) || !is_float(scale.kind()) {
        return fail(format!(
            "X and scale should be floating-point tensors, got {:?} and {:?}",
            x.kind(),
            scale.kind()
        ));
    }
    let rank = x.dim();
    if rank == 0 {
        return fail("X should have rank 1 or more");
    }
    let a = axis(node.attrs.int("axis", -1)?, rank)?;
    let stash = float_kind("stash_type", node.attrs.int("stash_type", 1)?)?;
    let normalized = &x.size()[a as usize..];
    let ss = scale.size();
    let broadcasts = ss.len() <= normalized.len()
        && (ss.iter().rev())
            .zip(normalized.iter().rev())
            .all(|(&s, &n)| s == 1 || s == n);
    if !broadcasts {
        return fail(format!(
            "scale of shape {ss:?} does not broadcast to the normalised shape {normalized:?}"
        ));
    }
    let axes: Vec<i64> = (a..rank as i64).collect();
    let xs = x.f_to_kind(stash)?;
    let rms = xs
        .f_square()?
        .f_mean_dim(axes.as_slice(), true, stash)?
        .f_add_scalar(f64::from(node.attrs.float("epsilon", 1e-5)?))?
        .f_sqrt()?;
    let y = xs.f_div(&rms)?.f_to_kind(x.kind())?;
    let common = promote(x.kind(), scale.kind());
    one(y
        .f_to_kind(common)?
        .f_mul(&scale.f_to_kind(common)?)?
        .f_to_kind(x.kind())?)
}

/// RotaryEmbedding: rotates the first `rotary_embedding_dim` values of each
/// head (halves or interleaved pairs) by the angles of `cos_cache` and
/// `sin_cache`, looked up by `position_ids` when given.
fn rotary_embedding(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let x = input(inputs, 0)?;
    let (cos, sin) = (input(inputs, 1)?, input(inputs, 2)?);
    let positions = opt_input(inputs, 3);
    if !is_float(x.kind()) {
        return fail(format!(
            "input should be floating-point, got {:?}",
            x.kind()
        ));
    }
    let shape = x.size();
    // (B, S, H, D)
    let x4 = match shape.len() {
        4 => x.f_transpose(1, 2)?,
        3 => {
            let h = heads(node, "num_heads", "with a 3-D input")?;
            if shape[2] % h != 0 {
                return fail(format!(
                    "hidden size {} is not a multiple of num_heads {h}",
                    shape[2]
                ));
            }
            x.f_reshape([shape[0], shape[1], h, shape[2] / h])?
        }
        _ => return fail(format!("input of shape {shape:?} should be 3-D or 4-D")),
    };
    let s4 = x4.size();
    let (batch, seq, head) = (s4[0], s4[1], s4[3]);
    let dim = match node.attrs.int("rotary_embedding_dim", 0)? {
        0 => head,
        d => d,
    };
    if dim < 0 || dim > head || dim % 2 != 0 {
        return fail(format!(
            "rotary_embedding_dim {dim} should be even and at most the head size {head}"
        ));
    }
    let half = dim / 2;
    let lookup = |cache: &Tensor, what: &str| -> KResult<Tensor> {
        let c = match positions {
            Some(p) => {
                if cache.dim() != 2 {
                    return fail(format!(
                        "{what} of shape {:?} should be 2-D with position_ids",
                        cache.size()
                    ));
                }
                if p.size() != [batch, seq] {
                    return fail(format!(
                        "position_ids of shape {:?} should be [{batch}, {seq}]",
                        p.size()
                    ));
                }
                let ids = to_i64s(p)?;
                let rows = cache.size()[0];
                if let Some(bad) = ids.iter().find(|&&i| i < 0 || i >= rows) {
                    return fail(format!(
                        "position id {bad} is outside the {rows} rows of {what}"
                    ));
                }
                cache
                    .f_index_select(0, &Tensor::from_slice(&ids))?
                    .f_reshape([batch, seq, -1])?
            }
            None => cache.shallow_clone(),
        };
        if c.dim() != 3 || c.size()[..2] != [batch, seq] || c.size()[2] != half {
            return fail(format!(
                "{what} gives shape {:?}, expected [{batch}, {seq}, {half}] (rotary_embedding_dim / 2)",
                c.size()
            ));
        }
        Ok(c.f_unsqueeze(2)?.f_to_kind(x.kind())?)
    };
    let (cos, sin) = (lookup(cos, "cos_cache")?, lookup(sin, "sin_cache")?);
    let rot = x4.f_narrow(-1, 0, dim)?;
    let pass = x4.f_narrow(-1, dim, head - dim)?;
    let interleaved = node.attrs.int("interleaved", 0)? != 0;
    let (x1, x2) = match interleaved {
        true => (rot.f_slice(-1, 0, dim, 2)?, rot.f_slice(-1, 1, dim, 2)?),
        false => (rot.f_narrow(-1, 0, half)?, rot.f_narrow(-1, half, half)?),
    };
    let real = cos.f_mul(&x1)?.f_sub(&sin.f_mul(&x2)?)?;
    let imag = sin.f_mul(&x1)?.f_add(&cos.f_mul(&x2)?)?;
    let rotated = match interleaved {
        true => Tensor::f_stack(&[real, imag], -1)?.f_reshape(rot.size().as_slice())?,
        false => Tensor::f_cat(&[real, imag], -1)?,
    };
    let y = Tensor::f_cat(&[rotated, pass], -1)?;
    one(match shape.len() {
        4 => y.f_transpose(1, 2)?.f_contiguous()?,
        _ => y.f_reshape(shape.as_slice())?,
    })
}

/// LinearAttention: the recurrence of `update_rule` (linear, gated, delta,
/// gated_delta) run token by token in float32, with grouped heads.
fn linear_attention(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let (query, key, value) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    let (past, decay, beta) = (
        opt_input(inputs, 3),
        opt_input(inputs, 4),
        opt_input(inputs, 5),
    );
    let rule = node.attrs.string("update_rule", "gated_delta")?;
    let (gating, delta) = match rule.as_str() {
        "linear" => (false, false),
        "gated" => (true, false),
        "delta" => (false, true),
        "gated_delta" => (true, true),
        other => {
            return fail(format!(
                "update_rule '{other}' is not linear, gated, delta or gated_delta"
            ))
        }
    };
    let why = "by LinearAttention";
    let (qh, kvh) = (
        heads(node, "q_num_heads", why)?,
        heads(node, "kv_num_heads", why)?,
    );
    if qh % kvh != 0 {
        return fail(format!(
            "q_num_heads {qh} is not a multiple of kv_num_heads {kvh}"
        ));
    }
    if gating != decay.is_some() {
        return fail(format!(
            "update_rule '{rule}' {} the decay input",
            if gating { "requires" } else { "forbids" }
        ));
    }
    if delta != beta.is_some() {
        return fail(format!(
            "update_rule '{rule}' {} the beta input",
            if delta { "requires" } else { "forbids" }
        ));
    }
    for (name, t) in [("query", query), ("key", key), ("value", value)] {
        if t.dim() != 3 {
            return fail(format!("{name} of shape {:?} should be 3-D", t.size()));
        }
        if !is_float(t.kind()) {
            return fail(format!(
                "{name} should be floating-point, got {:?}",
                t.kind()
            ));
        }
    }
    let qs = query.size();
    let (b, t) = (qs[0], qs[1]);
    for (name, x) in [("key", key), ("value", value)] {
        if x.size()[..2] != qs[..2] {
            return fail(format!(
                "{name} of shape {:?} does not match query's batch and length {:?}",
                x.size(),
                &qs[..2]
            ));
        }
    }
    if qs[2] % qh != 0 {
        return fail(format!(
            "query hidden size {} is not a multiple of {qh} heads",
            qs[2]
        ));
    }
    let dk = qs[2] / qh;
    if key.size()[2] != kvh * dk {
        return fail(format!(
            "key hidden size {} should be kv_num_heads x {dk} = {}",
            key.size()[2],
            kvh * dk
        ));
    }
    let f = Kind::Float;
    let q4 = split_heads(query, qh, "query")?.f_to_kind(f)?;
    let k4 = split_heads(key, kvh, "key")?.f_to_kind(f)?;
    let v4 = split_heads(value, kvh, "value")?.f_to_kind(f)?;
    let dv = v4.size()[3];
    let decay4 = match decay {
        Some(d) => {
            let last = d.size().last().copied().unwrap_or(0);
            if d.dim() != 3 || d.size()[..2] != qs[..2] || (last != kvh && last != kvh * dk) {
                return fail(format!(
                    "decay of shape {:?} should be [{b}, {t}, {kvh}] or [{b}, {t}, {}]",
                    d.size(),
                    kvh * dk
                ));
            }
            Some(split_heads(d, kvh, "decay")?.f_to_kind(f)?)
        }
        None => None,
    };
    let beta4 = match beta {
        Some(be) => {
            let last = be.size().last().copied().unwrap_or(0);
            if be.dim() != 3 || be.size()[..2] != qs[..2] || (last != kvh && last != 1) {
                return fail(format!(
                    "beta of shape {:?} should be [{b}, {t}, {kvh}] or [{b}, {t}, 1]",
                    be.size()
                ));
            }
            Some(split_heads(be, last, "beta")?.f_to_kind(f)?)
        }
        None => None,
    };
    let (mut state, state_kind) = match past {
        Some(p) => {
            if p.size() != [b, kvh, dk, dv] {
                return fail(format!(
                    "past_state of shape {:?} should be [{b}, {kvh}, {dk}, {dv}]",
                    p.size()
                ));
            }
            if !is_float(p.kind()) {
                return fail(format!(
                    "past_state should be floating-point, got {:?}",
                    p.kind()
                ));
            }
            (p.f_to_kind(f)?, p.kind())
        }
        None => (
            Tensor::f_zeros([b, kvh, dk, dv], (f, Device::Cpu))?,
            query.kind(),
        ),
    };
    let scale = match f64::from(node.attrs.float("scale", 0.0)?) {
        0.0 => 1.0 / (dk as f64).sqrt(),
        s => s,
    };
    let group = qh / kvh;
    let mut outs = Vec::with_capacity(t as usize);
    for i in 0..t {
        let q_t = q4.f_select(2, i)?;
        let k_t = k4.f_select(2, i)?;
        let mut v_t = v4.f_select(2, i)?;
        if let Some(d) = &decay4 {
            state = state.f_mul(&d.f_select(2, i)?.f_exp()?.f_unsqueeze(-1)?)?;
        }
        if let Some(be) = &beta4 {
            let retrieved = (state.f_mul(&k_t.f_unsqueeze(-1)?)?).f_sum_dim_intlist(
                [-2i64].as_slice(),
                false,
                f,
            )?;
            v_t = be.f_select(2, i)?.f_mul(&v_t.f_sub(&retrieved)?)?;
        }
        state = state.f_add(&k_t.f_unsqueeze(-1)?.f_mul(&v_t.f_unsqueeze(-2)?)?)?;
        let read = match group {
            1 => state.shallow_clone(),
            g => state.f_repeat_interleave_self_int(g, 1, None)?,
        };
        let o = q_t
            .f_unsqueeze(-1)?
            .f_mul(&read)?
            .f_sum_dim_intlist([-2i64].as_slice(), false, f)?
            .f_mul_scalar(scale)?;
        outs.push(o);
    }
    let output = Tensor::f_stack(&outs, 2)?
        .f_transpose(1, 2)?
        .f_reshape([b, t, qh * dv])?
        .f_to_kind(query.kind())?;
    Ok(vec![output, state.f_to_kind(state_kind)?])
}
