//! Node attributes with typed getters. A getter fails when the attribute has
//! the wrong type, so a malformed file is reported, not misread.
//! [`Attrs::check`] runs when a model is loaded: every attribute has the type
//! its op reads, and the window attributes of convolutions and pools hold
//! values the kernels can use, so a bad attribute is a model error (exit 3)
//! before anything runs, not an op failure on the first batch.

use std::collections::BTreeMap;
use tch::Tensor;

use super::ops::KernelError;
use super::{Op, Window};

/// The value of one node attribute, as typed in the ONNX file.
#[derive(Debug)]
pub enum Attr {
    /// A float.
    Float(f32),
    /// An integer.
    Int(i64),
    /// A string.
    Str(String),
    /// A tensor.
    Tensor(Tensor),
    /// A list of floats.
    Floats(Vec<f32>),
    /// A list of integers.
    Ints(Vec<i64>),
    /// A list of strings.
    Strings(Vec<String>),
}

/// A clone shares a tensor attribute's storage (see [`super::Graph`]).
impl Clone for Attr {
    fn clone(&self) -> Self {
        match self {
            Attr::Float(v) => Attr::Float(*v),
            Attr::Int(v) => Attr::Int(*v),
            Attr::Str(v) => Attr::Str(v.clone()),
            Attr::Tensor(t) => Attr::Tensor(t.shallow_clone()),
            Attr::Floats(v) => Attr::Floats(v.clone()),
            Attr::Ints(v) => Attr::Ints(v.clone()),
            Attr::Strings(v) => Attr::Strings(v.clone()),
        }
    }
}

/// A node's attributes by name.
#[derive(Debug, Default, Clone)]
pub struct Attrs(pub BTreeMap<String, Attr>);

type KResult<T> = Result<T, KernelError>;

fn wrong(name: &str, want: &str, got: &Attr) -> KernelError {
    KernelError(format!(
        "attribute '{name}' should be {want}, found {got:?}"
    ))
}

impl Attrs {
    /// Whether the node sets attribute `name`.
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    /// Int attribute `name`, or `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> KResult<i64> {
        match self.0.get(name) {
            None => Ok(default),
            Some(Attr::Int(i)) => Ok(*i),
            Some(a) => Err(wrong(name, "an int", a)),
        }
    }

    /// Float attribute `name`, or `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> KResult<f32> {
        match self.0.get(name) {
            None => Ok(default),
            Some(Attr::Float(f)) => Ok(*f),
            Some(a) => Err(wrong(name, "a float", a)),
        }
    }

    /// String attribute `name`, or `default` when absent.
    pub fn string(&self, name: &str, default: &str) -> KResult<String> {
        match self.0.get(name) {
            None => Ok(default.to_string()),
            Some(Attr::Str(s)) => Ok(s.clone()),
            Some(a) => Err(wrong(name, "a string", a)),
        }
    }

    /// Ints attribute `name`, or `None` when absent.
    pub fn ints(&self, name: &str) -> KResult<Option<Vec<i64>>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(a) => Err(wrong(name, "a list of ints", a)),
        }
    }

    /// Floats attribute `name`, or `None` when absent.
    pub fn floats(&self, name: &str) -> KResult<Option<Vec<f32>>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Floats(v)) => Ok(Some(v.clone())),
            Some(a) => Err(wrong(name, "a list of floats", a)),
        }
    }

    /// Strings attribute `name`, or `None` when absent.
    pub fn strings(&self, name: &str) -> KResult<Option<Vec<String>>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Strings(v)) => Ok(Some(v.clone())),
            Some(a) => Err(wrong(name, "a list of strings", a)),
        }
    }

    /// Tensor attribute `name`, or `None` when absent.
    pub fn tensor(&self, name: &str) -> KResult<Option<&Tensor>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Tensor(t)) => Ok(Some(t)),
            Some(a) => Err(wrong(name, "a tensor", a)),
        }
    }
}

/// The type of an attribute's value, as the kernels read it.
#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Int,
    Float,
    Str,
    Ints,
    Floats,
    Strings,
    Tensor,
}

/// What `op` reads attribute `name` as. Names mean the same in every
/// supported op, except `value`: a tensor, but a float in Pad (opset < 11).
fn kind_of(op: Op, name: &str) -> Kind {
    match name {
        "value" if op == Op::Pad => Kind::Float,
        "value" => Kind::Tensor,
        "dilations" | "kernel_shape" | "pads" | "strides" | "output_padding" | "output_shape"
        | "starts" | "ends" | "axes" | "perm" | "split" | "ngram_counts" | "ngram_indexes"
        | "pool_int64s" => Kind::Ints,
        "auto_pad"
        | "approximate"
        | "equation"
        | "mode"
        | "coordinate_transformation_mode"
        | "nearest_mode"
        | "keep_aspect_ratio_policy"
        | "reduction"
        | "direction"
        | "activation"
        | "update_rule"
        | "padding_mode" => Kind::Str,
        "alpha"
        | "beta"
        | "gamma"
        | "min"
        | "max"
        | "epsilon"
        | "momentum"
        | "bias"
        | "ratio"
        | "cubic_coeff_a"
        | "extrapolation_value"
        | "scale"
        | "softcap"
        | "spatial_scale"
        | "clip"
        | "lambd" => Kind::Float,
        "scales" | "activation_alpha" | "activation_beta" | "weights" => Kind::Floats,
        "activations" | "pool_strings" => Kind::Strings,
        _ => Kind::Int,
    }
}

fn has_kind(a: &Attr, kind: Kind) -> bool {
    matches!(
        (a, kind),
        (Attr::Int(_), Kind::Int)
            | (Attr::Float(_), Kind::Float)
            | (Attr::Str(_), Kind::Str)
            | (Attr::Ints(_), Kind::Ints)
            | (Attr::Floats(_), Kind::Floats)
            | (Attr::Strings(_), Kind::Strings)
            | (Attr::Tensor(_), Kind::Tensor)
    )
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Int => "an int",
        Kind::Float => "a float",
        Kind::Str => "a string",
        Kind::Ints => "a list of ints",
        Kind::Floats => "a list of floats",
        Kind::Strings => "a list of strings",
        Kind::Tensor => "a tensor",
    }
}

const AUTO_PADS: [&str; 4] = ["NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"];

impl Attrs {
    /// Checks the attributes of a node of `op`: each has the type the op
    /// reads; a windowed op's are values its kernel can use. The message
    /// names the attribute; the loader adds file, node, op and opset.
    pub fn check(&self, op: Op) -> Result<(), String> {
        for (name, a) in &self.0 {
            let kind = kind_of(op, name);
            if !has_kind(a, kind) {
                return Err(wrong(name, kind_name(kind), a).0);
            }
        }
        if let Some(window) = op.traits().window {
            self.check_window(window)?;
        }
        Ok(())
    }

    fn check_window(&self, window: Window) -> Result<(), String> {
        let ints = |name: &str| match self.0.get(name) {
            Some(Attr::Ints(v)) => Some(v.as_slice()),
            _ => None,
        };
        for (name, least) in [
            ("kernel_shape", 1),
            ("strides", 1),
            ("dilations", 1),
            ("pads", 0),
            ("output_padding", 0),
        ] {
            if let Some(v) = ints(name).filter(|v| v.iter().any(|&x| x < least)) {
                return Err(format!(
                    "attribute '{name}' {v:?}: each value must be at least {least}"
                ));
            }
        }
        if window == Window::Pool && ints("kernel_shape").is_none() {
            return Err("attribute 'kernel_shape' is required".into());
        }
        // One value per spatial axis (two for pads): all must agree.
        let axes: Vec<(&str, usize)> = [
            ("kernel_shape", 1),
            ("strides", 1),
            ("dilations", 1),
            ("pads", 2),
            ("output_padding", 1),
        ]
        .into_iter()
        .filter_map(|(name, per)| ints(name).map(|v| (name, v.len(), per)))
        .map(|(name, len, per)| {
            (
                name,
                if len % per == 0 {
                    len / per
                } else {
                    usize::MAX
                },
            )
        })
        .collect();
        if let Some(&(name, _)) = axes.iter().find(|a| a.1 == usize::MAX) {
            return Err(format!(
                "attribute '{name}' needs two values per spatial axis (begins, then ends)"
            ));
        }
        if let Some(pair) = axes.windows(2).find(|w| w[0].1 != w[1].1) {
            return Err(format!(
                "attributes '{}' and '{}' give {} and {} spatial axes",
                pair[0].0, pair[1].0, pair[0].1, pair[1].1
            ));
        }
        if self.int("group", 1).is_ok_and(|g| g < 1) {
            return Err("attribute 'group' must be at least 1".into());
        }
        match self.string("auto_pad", "NOTSET") {
            Ok(mode) if !AUTO_PADS.contains(&mode.as_str()) => Err(format!(
                "attribute 'auto_pad' '{mode}' is not one of {}",
                AUTO_PADS.join(", ")
            )),
            _ => Ok(()),
        }
    }
}
