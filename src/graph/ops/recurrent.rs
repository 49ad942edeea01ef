//! Recurrent layers.
//! Specs: <https://onnx.ai/onnx/operators/onnx__LSTM.html>,
//! <https://onnx.ai/onnx/operators/onnx__GRU.html>,
//! <https://onnx.ai/onnx/operators/onnx__RNN.html>.
//!
//! One loop over the time steps per direction, in the input's type. With
//! `sequence_lens`, a sequence of length `L` runs its first `L` steps (the
//! reverse direction from step `L - 1` down), its outputs past `L` are
//! zeros and its final states are those of its last step. `clip` bounds the
//! input of every gate activation; `activation_alpha` and `activation_beta`
//! are consumed in the order of the activations that take them, each
//! defaulting to its ONNX op's default.

use tch::{Kind, Tensor};

use super::{fail, input, opt_input, to_i64s, Inputs, KResult, OpDef};
use crate::graph::Node;
use crate::graph::Op;

pub const OPS: &[OpDef] = &[
    OpDef {
        op: Op::LSTM,
        attrs: &[
            "activation_alpha",
            "activation_beta",
            "activations",
            "clip",
            "direction",
            "hidden_size",
            "layout",
            "input_forget",
        ],
        kernel: lstm,
    },
    OpDef {
        op: Op::GRU,
        attrs: &[
            "activation_alpha",
            "activation_beta",
            "activations",
            "clip",
            "direction",
            "hidden_size",
            "layout",
            "linear_before_reset",
        ],
        kernel: gru,
    },
    OpDef {
        op: Op::RNN,
        attrs: &[
            "activation_alpha",
            "activation_beta",
            "activations",
            "clip",
            "direction",
            "hidden_size",
            "layout",
        ],
        kernel: rnn,
    },
];

/// An activation function of a gate, with its parameters.
#[derive(Clone, Copy, Debug)]
enum Act {
    Relu,
    Tanh,
    Sigmoid,
    Affine(f64, f64),
    LeakyRelu(f64),
    ThresholdedRelu(f64),
    ScaledTanh(f64, f64),
    HardSigmoid(f64, f64),
    Elu(f64),
    Softsign,
    Softplus,
}

impl Act {
    fn apply(self, x: &Tensor) -> KResult<Tensor> {
        Ok(match self {
            Act::Relu => x.f_relu()?,
            Act::Tanh => x.f_tanh()?,
            Act::Sigmoid => x.f_sigmoid()?,
            Act::Affine(a, b) => (x * a + b).shallow_clone(),
            Act::LeakyRelu(a) => x.f_where_self(&x.f_ge(0.0)?, &(x * a))?,
            Act::ThresholdedRelu(a) => x.f_where_self(&x.f_gt(a)?, &x.f_zeros_like()?)?,
            Act::ScaledTanh(a, b) => (x * b).f_tanh()? * a,
            Act::HardSigmoid(a, b) => (x * a + b).f_clamp(0.0, 1.0)?,
            Act::Elu(a) => x.f_where_self(&x.f_ge(0.0)?, &(x.f_exp()? - 1.0).f_mul_scalar(a)?)?,
            Act::Softsign => x.f_div(&(x.f_abs()? + 1.0))?,
            Act::Softplus => x.f_softplus()?,
        })
    }
}

/// The activations of a node: `per` per direction, `defaults` when the
/// node lists none. A list of `per` names serves both directions.
fn activations(node: &Node, per: usize, dirs: usize, defaults: &[&str]) -> KResult<Vec<Act>> {
    let names: Vec<String> = match node.attrs.strings("activations")? {
        Some(v) => v,
        None => (0..dirs)
            .flat_map(|_| defaults.iter().map(|s| s.to_string()))
            .collect(),
    };
    let names = if names.len() == per && dirs == 2 {
        names.iter().chain(names.iter()).cloned().collect()
    } else {
        names
    };
    if names.len() != per * dirs {
        return fail(format!(
            "activations {names:?}: expected {} ({per} per direction)",
            per * dirs
        ));
    }
    let alphas = node.attrs.floats("activation_alpha")?.unwrap_or_default();
    let betas = node.attrs.floats("activation_beta")?.unwrap_or_default();
    let (mut ai, mut bi) = (alphas.iter(), betas.iter());
    let mut alpha = |d: f64| ai.next().map_or(d, |&v| v as f64);
    let mut beta = |d: f64| bi.next().map_or(d, |&v| v as f64);
    let mut acts = Vec::new();
    for name in &names {
        let act = match name.to_ascii_lowercase().as_str() {
            "relu" => Act::Relu,
            "tanh" => Act::Tanh,
            "sigmoid" => Act::Sigmoid,
            "affine" => Act::Affine(alpha(1.0), beta(0.0)),
            "leakyrelu" => Act::LeakyRelu(alpha(0.01)),
            "thresholdedrelu" => Act::ThresholdedRelu(alpha(1.0)),
            "scaledtanh" => Act::ScaledTanh(alpha(1.0), beta(1.0)),
            "hardsigmoid" => Act::HardSigmoid(alpha(0.2), beta(0.5)),
            "elu" => Act::Elu(alpha(1.0)),
            "softsign" => Act::Softsign,
            "softplus" => Act::Softplus,
            _ => return fail(format!("activation '{name}' is not one ONNX defines")),
        };
        acts.push(act);
    }
    Ok(acts)
}

/// The shapes and inputs every recurrent op shares, in layout 0:
/// X `[seq, batch, input]`.
struct Common {
    x: Tensor,
    w: Tensor,
    r: Tensor,
    /// `[dirs, 2 * gates * hidden]`.
    b: Tensor,
    seq: i64,
    batch: i64,
    hidden: i64,
    dirs: i64,
    layout: i64,
    /// Per direction: the time step each step reads, `[seq, batch]`.
    perms: Vec<Tensor>,
    /// Whether each step of each sequence runs, `[seq, batch, 1]`.
    active: Tensor,
    clip: Option<f64>,
}

/// An initial state `[dirs, batch, hidden]` (layout 0), zeros when omitted.
fn state(c: &Common, t: Option<&Tensor>, name: &str) -> KResult<Tensor> {
    let want = [c.dirs, c.batch, c.hidden];
    match t {
        None => Ok(Tensor::zeros(want, (c.x.kind(), c.x.device()))),
        Some(t) => {
            let t = if c.layout == 1 && t.dim() == 3 {
                t.f_transpose(0, 1)?
            } else {
                t.shallow_clone()
            };
            if t.size() != want {
                return fail(format!(
                    "{name} must be {want:?} (layout 0; batch first in layout 1), got shape {:?}",
                    t.size()
                ));
            }
            Ok(t.f_to_kind(c.x.kind())?)
        }
    }
}

fn common(node: &Node, inputs: &Inputs, gates: i64) -> KResult<Common> {
    let (x, w, r) = (input(inputs, 0)?, input(inputs, 1)?, input(inputs, 2)?);
    if !matches!(
        x.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    ) {
        return fail(format!("X must be a float tensor, got {:?}", x.kind()));
    }
    let layout = node.attrs.int("layout", 0)?;
    if layout != 0 && layout != 1 {
        return fail(format!("layout must be 0 or 1, got {layout}"));
    }
    if x.dim() != 3 {
        return fail(format!("X must be 3-D, got shape {:?}", x.size()));
    }
    let x = if layout == 1 {
        x.f_transpose(0, 1)?
    } else {
        x.shallow_clone()
    };
    let (seq, batch, isz) = (x.size()[0], x.size()[1], x.size()[2]);
    let direction = node.attrs.string("direction", "forward")?;
    let dirs = match direction.as_str() {
        "forward" | "reverse" => 1,
        "bidirectional" => 2,
        d => {
            return fail(format!(
                "direction '{d}' is not forward, reverse or bidirectional"
            ))
        }
    };
    let rs = r.size();
    if rs.len() != 3 || rs[0] != dirs || rs[1] != gates * rs[2] {
        return fail(format!(
            "R must be [{dirs}, {gates} * hidden, hidden], got shape {rs:?}"
        ));
    }
    let hidden = rs[2];
    if let Some(h) = node
        .attrs
        .has("hidden_size")
        .then(|| node.attrs.int("hidden_size", 0))
    {
        let h = h?;
        if h != hidden {
            return fail(format!("hidden_size {h} differs from R's {hidden}"));
        }
    }
    if w.size() != [dirs, gates * hidden, isz] {
        return fail(format!(
            "W must be [{dirs}, {}, {isz}], got shape {:?}",
            gates * hidden,
            w.size()
        ));
    }
    let kind = x.kind();
    let b = match opt_input(inputs, 3) {
        None => Tensor::zeros([dirs, 2 * gates * hidden], (kind, x.device())),
        Some(b) if b.size() == [dirs, 2 * gates * hidden] => b.f_to_kind(kind)?,
        Some(b) => {
            return fail(format!(
                "B must be [{dirs}, {}], got shape {:?}",
                2 * gates * hidden,
                b.size()
            ))
        }
    };
    let lens = match opt_input(inputs, 4) {
        None => vec![seq; batch as usize],
        Some(l) => {
            let v = to_i64s(l)?;
            if l.size() != [batch] {
                return fail(format!(
                    "sequence_lens must be [{batch}], got shape {:?}",
                    l.size()
                ));
            }
            if let Some(bad) = v.iter().find(|&&n| n < 0 || n > seq) {
                return fail(format!("sequence length {bad} is outside [0, {seq}]"));
            }
            v
        }
    };
    let clip = match node.attrs.has("clip") {
        true => {
            let c = node.attrs.float("clip", 0.0)? as f64;
            if c.is_nan() || c <= 0.0 {
                return fail(format!("clip must be positive, got {c}"));
            }
            Some(c)
        }
        false => None,
    };
    let dev = x.device();
    let mut perms = Vec::new();
    for d in 0..dirs {
        let reverse = direction == "reverse" || d == 1;
        let mut p = Vec::with_capacity((seq * batch) as usize);
        for s in 0..seq {
            for &l in &lens {
                p.push(if reverse && s < l { l - 1 - s } else { s });
            }
        }
        perms.push(Tensor::from_slice(&p).f_reshape([seq, batch])?.f_to(dev)?);
    }
    let mut a = Vec::with_capacity((seq * batch) as usize);
    for s in 0..seq {
        for &l in &lens {
            a.push(s < l);
        }
    }
    let active = Tensor::from_slice(&a)
        .f_reshape([seq, batch, 1])?
        .f_to(dev)?;
    Ok(Common {
        x,
        w: w.f_to_kind(kind)?,
        r: r.f_to_kind(kind)?,
        b,
        seq,
        batch,
        hidden,
        dirs,
        layout,
        perms,
        active,
        clip,
    })
}

impl Common {
    /// Per direction `d`: the input projections `X_t W^T` of every step, in
    /// the order the direction reads them, `[seq, batch, gates * hidden]`
    /// (no bias).
    fn projected(&self, d: i64) -> KResult<Tensor> {
        let x = self.x.f_gather(
            0,
            &self.perms[d as usize]
                .f_unsqueeze(2)?
                .f_expand([self.seq, self.batch, self.x.size()[2]], false)?,
            false,
        )?;
        Ok(x.f_matmul(&self.w.f_get(d)?.f_tr()?)?)
    }

    /// Clips a gate's input when `clip` is set.
    fn clipped(&self, t: Tensor) -> KResult<Tensor> {
        match self.clip {
            Some(c) => Ok(t.f_clamp(-c, c)?),
            None => Ok(t),
        }
    }

    /// The steps' outputs `[seq, batch, hidden]` back in time order, zeros
    /// where a sequence has ended.
    fn in_time_order(&self, d: i64, steps: &[Tensor]) -> KResult<Tensor> {
        if steps.is_empty() {
            let size = [0, self.batch, self.hidden];
            return Ok(Tensor::zeros(size, (self.x.kind(), self.x.device())));
        }
        let y = Tensor::f_stack(steps, 0)?;
        let y = y.f_mul(&self.active.f_to_kind(y.kind())?)?;
        let idx = self.perms[d as usize]
            .f_unsqueeze(2)?
            .f_expand([self.seq, self.batch, self.hidden], false)?;
        Ok(y.f_zeros_like()?.f_scatter(0, &idx, &y)?)
    }

    /// Y `[seq, dirs, batch, hidden]` and the final states
    /// `[dirs, batch, hidden]`, in the node's layout.
    fn outputs(&self, ys: Vec<Tensor>, states: Vec<Vec<Tensor>>) -> KResult<Vec<Tensor>> {
        let y = Tensor::f_stack(&ys, 1)?;
        let y = if self.layout == 1 {
            y.f_permute([2, 0, 1, 3])?
        } else {
            y
        };
        let mut out = vec![y];
        for s in states {
            let s = Tensor::f_stack(&s, 0)?;
            out.push(if self.layout == 1 {
                s.f_transpose(0, 1)?
            } else {
                s
            });
        }
        Ok(out)
    }

    /// Where each step's sequence has ended, the state stays.
    fn keep(&self, s: i64, new: &Tensor, old: &Tensor) -> KResult<Tensor> {
        Ok(new.f_where_self(&self.active.f_get(s)?, old)?)
    }
}

/// The bias of gate `g` of direction `d`: its input bias `Wb`, or its
/// recurrence bias `Rb` when `recurrence`.
fn bias(c: &Common, d: i64, gates: i64, g: i64, recurrence: bool) -> KResult<Tensor> {
    let h = c.hidden;
    let off = if recurrence { gates * h } else { 0 };
    Ok(c.b.f_get(d)?.f_narrow(0, off + g * h, h)?)
}

/// RNN: `H_t = f(X_t W^T + H_{t-1} R^T + Wb + Rb)`.
fn rnn(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let c = common(node, inputs, 1)?;
    let acts = activations(node, 1, c.dirs as usize, &["Tanh"])?;
    let h0 = state(&c, opt_input(inputs, 5), "initial_h")?;
    let (mut ys, mut hs) = (Vec::new(), Vec::new());
    for d in 0..c.dirs {
        let xw = c.projected(d)?;
        let rt = c.r.f_get(d)?.f_tr()?;
        let b = bias(&c, d, 1, 0, false)?.f_add(&bias(&c, d, 1, 0, true)?)?;
        let mut h = h0.f_get(d)?;
        let mut steps = Vec::new();
        for s in 0..c.seq {
            let pre = xw.f_get(s)?.f_add(&h.f_matmul(&rt)?)?.f_add(&b)?;
            let new = acts[d as usize].apply(&c.clipped(pre)?)?;
            h = c.keep(s, &new, &h)?;
            steps.push(h.shallow_clone());
        }
        ys.push(c.in_time_order(d, &steps)?);
        hs.push(h);
    }
    c.outputs(ys, vec![hs])
}

/// GRU, gates z, r, h: `z = f(..)`, `r = f(..)`,
/// `h = g(X Wh + (r ⊙ H) Rh + Rbh + Wbh)` or, with `linear_before_reset`,
/// `g(X Wh + r ⊙ (H Rh + Rbh) + Wbh)`; `H = (1 - z) ⊙ h + z ⊙ H`.
fn gru(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let c = common(node, inputs, 3)?;
    let acts = activations(node, 2, c.dirs as usize, &["Sigmoid", "Tanh"])?;
    let lbr = node.attrs.int("linear_before_reset", 0)? != 0;
    let h0 = state(&c, opt_input(inputs, 5), "initial_h")?;
    let hd = c.hidden;
    let (mut ys, mut hs) = (Vec::new(), Vec::new());
    for d in 0..c.dirs {
        let (f, g) = (acts[2 * d as usize], acts[2 * d as usize + 1]);
        let xw = c.projected(d)?;
        let r = c.r.f_get(d)?;
        let r_zr = r.f_narrow(0, 0, 2 * hd)?.f_tr()?;
        let r_h = r.f_narrow(0, 2 * hd, hd)?.f_tr()?;
        let b_zr =
            Tensor::f_cat(&[bias(&c, d, 3, 0, false)?, bias(&c, d, 3, 1, false)?], 0)?.f_add(
                &Tensor::f_cat(&[bias(&c, d, 3, 0, true)?, bias(&c, d, 3, 1, true)?], 0)?,
            )?;
        let (wbh, rbh) = (bias(&c, d, 3, 2, false)?, bias(&c, d, 3, 2, true)?);
        let mut h = h0.f_get(d)?;
        let mut steps = Vec::new();
        for s in 0..c.seq {
            let x = xw.f_get(s)?;
            let zr = x
                .f_narrow(1, 0, 2 * hd)?
                .f_add(&h.f_matmul(&r_zr)?)?
                .f_add(&b_zr)?;
            let zr = f.apply(&c.clipped(zr)?)?;
            let (z, rg) = (zr.f_narrow(1, 0, hd)?, zr.f_narrow(1, hd, hd)?);
            let xh = x.f_narrow(1, 2 * hd, hd)?;
            let pre = if lbr {
                xh.f_add(&rg.f_mul(&h.f_matmul(&r_h)?.f_add(&rbh)?)?)?
                    .f_add(&wbh)?
            } else {
                xh.f_add(&rg.f_mul(&h)?.f_matmul(&r_h)?)?
                    .f_add(&rbh)?
                    .f_add(&wbh)?
            };
            let cand = g.apply(&c.clipped(pre)?)?;
            let new = z
                .f_neg()?
                .f_add_scalar(1.0)?
                .f_mul(&cand)?
                .f_add(&z.f_mul(&h)?)?;
            h = c.keep(s, &new, &h)?;
            steps.push(h.shallow_clone());
        }
        ys.push(c.in_time_order(d, &steps)?);
        hs.push(h);
    }
    c.outputs(ys, vec![hs])
}

/// LSTM, gates i, o, f, c and peepholes i, o, f:
/// `i = f(.. + Pi ⊙ C)`, `f = f(.. + Pf ⊙ C)` (`1 - i` with
/// `input_forget`), `c~ = g(..)`, `C = f ⊙ C + i ⊙ c~`,
/// `o = f(.. + Po ⊙ C_new)`, `H = o ⊙ h(C_new)`.
fn lstm(node: &Node, inputs: &Inputs) -> KResult<Vec<Tensor>> {
    let c = common(node, inputs, 4)?;
    let acts = activations(node, 3, c.dirs as usize, &["Sigmoid", "Tanh", "Tanh"])?;
    let input_forget = node.attrs.int("input_forget", 0)? != 0;
    let h0 = state(&c, opt_input(inputs, 5), "initial_h")?;
    let c0 = state(&c, opt_input(inputs, 6), "initial_c")?;
    let hd = c.hidden;
    let p = match opt_input(inputs, 7) {
        None => None,
        Some(p) if p.size() == [c.dirs, 3 * hd] => Some(p.f_to_kind(c.x.kind())?),
        Some(p) => {
            return fail(format!(
                "P must be [{}, {}], got shape {:?}",
                c.dirs,
                3 * hd,
                p.size()
            ))
        }
    };
    let (mut ys, mut hs, mut cs) = (Vec::new(), Vec::new(), Vec::new());
    for d in 0..c.dirs {
        let du = d as usize;
        let (f, g, hact) = (acts[3 * du], acts[3 * du + 1], acts[3 * du + 2]);
        let xw = c.projected(d)?;
        let rt = c.r.f_get(d)?.f_tr()?;
        let b =
            c.b.f_get(d)?
                .f_narrow(0, 0, 4 * hd)?
                .f_add(&c.b.f_get(d)?.f_narrow(0, 4 * hd, 4 * hd)?)?;
        let peep = |k: i64| -> KResult<Option<Tensor>> {
            match &p {
                Some(p) => Ok(Some(p.f_get(d)?.f_narrow(0, k * hd, hd)?)),
                None => Ok(None),
            }
        };
        let (pi, po, pf) = (peep(0)?, peep(1)?, peep(2)?);
        let with_peep = |t: Tensor, p: &Option<Tensor>, cell: &Tensor| -> KResult<Tensor> {
            match p {
                Some(p) => Ok(t.f_add(&cell.f_mul(p)?)?),
                None => Ok(t),
            }
        };
        let (mut h, mut cell) = (h0.f_get(d)?, c0.f_get(d)?);
        let mut steps = Vec::new();
        for s in 0..c.seq {
            let gates = xw.f_get(s)?.f_add(&h.f_matmul(&rt)?)?.f_add(&b)?;
            let gate = |k: i64| gates.f_narrow(1, k * hd, hd);
            let i = f.apply(&c.clipped(with_peep(gate(0)?, &pi, &cell)?)?)?;
            let fg = if input_forget {
                i.f_neg()?.f_add_scalar(1.0)?
            } else {
                f.apply(&c.clipped(with_peep(gate(2)?, &pf, &cell)?)?)?
            };
            let cand = g.apply(&c.clipped(gate(3)?)?)?;
            let new_c = fg.f_mul(&cell)?.f_add(&i.f_mul(&cand)?)?;
            let o = f.apply(&c.clipped(with_peep(gate(1)?, &po, &new_c)?)?)?;
            let new_h = o.f_mul(&hact.apply(&new_c)?)?;
            h = c.keep(s, &new_h, &h)?;
            cell = c.keep(s, &new_c, &cell)?;
            steps.push(h.shallow_clone());
        }
        ys.push(c.in_time_order(d, &steps)?);
        hs.push(h);
        cs.push(cell);
    }
    c.outputs(ys, vec![hs, cs])
}
