//! Number formats and the pure fault function (pipeline step 4/5: what one
//! fault does to one value). In: an original f32 value, a fault model, a
//! number format and bits. Out: the faulty f32 value.
//!
//! Bit 0 is the least significant bit of the format's representation:
//!
//! | format | width | sign | exponent | mantissa |
//! |--------|-------|------|----------|----------|
//! | fp32   | 32    | 31   | 30..23   | 22..0    |
//! | fp16   | 16    | 15   | 14..10   | 9..0     |
//! | bf16   | 16    | 15   | 14..7    | 6..0     |
//! | int8   | 8     | 7 (two's complement) | - | - |
//!
//! These four are emulations on a float model: fp32 flips the value in
//! place. fp16 and bf16 round the value to the format (nearest, ties to
//! even), change the bits and widen back to f32. int8 quantizes
//! symmetrically per tensor: `q = clamp(round_ties_even(v / s), -128, 127)`
//! with `s = max(|min|, |max|) / 127` from the golden range
//! ([`int8_scale`]), changes the bits of the two's-complement byte `q` and
//! returns `q' * s`.
//!
//! The `native_*` formats are the words a quantized or half-precision model
//! really holds: the fault changes the bits of the tensor's own element
//! (`native_int8`, `native_uint8`, `native_int32`, `native_fp16`,
//! `native_bf16`), and the model computes on with the changed word. They
//! apply only to tensors of that type ([`NumFormat::of_kind`]); a scenario's
//! `native` picks the one of the struck tensors.

use std::fmt;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};
use tch::Kind;

/// The format a value is held in when the fault strikes.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum NumFormat {
    /// IEEE 754 single precision.
    #[default]
    Fp32,
    /// IEEE 754 half precision.
    Fp16,
    /// bfloat16.
    Bf16,
    /// Signed 8-bit integers with a per-tensor scale.
    Int8,
    /// The byte of an int8 tensor (bit 7 the sign).
    NativeInt8,
    /// The byte of a uint8 tensor.
    NativeUint8,
    /// The word of an int32 tensor (an integer accumulator; bit 31 the sign).
    NativeInt32,
    /// The half of a float16 tensor.
    NativeFp16,
    /// The half of a bfloat16 tensor.
    NativeBf16,
    /// In scenarios only: the native format of the struck tensors' type
    /// (fp32 for float32 tensors), resolved before any fault is drawn.
    Native,
}

impl NumFormat {
    /// Every format a fault can be in, in the order of their tables.
    pub const ALL: [NumFormat; 9] = [
        Self::Fp32,
        Self::Fp16,
        Self::Bf16,
        Self::Int8,
        Self::NativeInt8,
        Self::NativeUint8,
        Self::NativeInt32,
        Self::NativeFp16,
        Self::NativeBf16,
    ];

    /// Width in bits; valid bits are `0..width`.
    pub fn width(self) -> u8 {
        match self {
            Self::Fp32 | Self::NativeInt32 | Self::Native => 32,
            Self::Fp16 | Self::Bf16 | Self::NativeFp16 | Self::NativeBf16 => 16,
            Self::Int8 | Self::NativeInt8 | Self::NativeUint8 => 8,
        }
    }

    /// The name in scenarios, CSV and reports (`fp32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
            Self::NativeInt8 => "native_int8",
            Self::NativeUint8 => "native_uint8",
            Self::NativeInt32 => "native_int32",
            Self::NativeFp16 => "native_fp16",
            Self::NativeBf16 => "native_bf16",
            Self::Native => "native",
        }
    }

    /// The format named `s` ([`NumFormat::name`]; not `native`, which only
    /// scenarios name).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// Whether this is the word of a tensor's own type, not an emulation.
    pub fn is_native(self) -> bool {
        !matches!(self, Self::Fp32 | Self::Fp16 | Self::Bf16 | Self::Int8)
    }

    /// The native format of a tensor of element type `kind` (fp32 for
    /// float32), `None` for a type faults do not strike.
    pub fn of_kind(kind: Kind) -> Option<Self> {
        Some(match kind {
            Kind::Float => Self::Fp32,
            Kind::Half => Self::NativeFp16,
            Kind::BFloat16 => Self::NativeBf16,
            Kind::Int8 => Self::NativeInt8,
            Kind::Uint8 => Self::NativeUint8,
            Kind::Int => Self::NativeInt32,
            _ => return None,
        })
    }

    /// Whether a fault in this format may strike a tensor of element type
    /// `kind`: a native format only its own type, an emulation only floats.
    pub fn fits(self, kind: Kind) -> bool {
        match self.is_native() {
            true => Self::of_kind(kind) == Some(self),
            false => crate::graph::is_float(kind),
        }
    }

    /// The representation of `v` in this format, in the low `width` bits.
    /// `scale` is used by int8 only. A native integer word saturates.
    pub fn encode(self, v: f64, scale: f32) -> u32 {
        let v32 = v as f32;
        match self {
            Self::Fp32 => v32.to_bits(),
            Self::Fp16 | Self::NativeFp16 => u32::from(f16::from_f32(v32).to_bits()),
            Self::Bf16 | Self::NativeBf16 => u32::from(bf16::from_f32(v32).to_bits()),
            Self::Int8 => {
                let q = (v32 / scale).round_ties_even().clamp(-128.0, 127.0) as i8;
                u32::from(q as u8)
            }
            Self::NativeInt8 => u32::from(v.round_ties_even() as i8 as u8),
            Self::NativeUint8 => u32::from(v.round_ties_even() as u8),
            Self::NativeInt32 | Self::Native => v.round_ties_even() as i32 as u32,
        }
    }

    /// The value of the representation `bits` (low `width` bits): exact in
    /// f64 for every format.
    pub fn decode(self, bits: u32, scale: f32) -> f64 {
        f64::from(match self {
            Self::Fp32 => f32::from_bits(bits),
            Self::Fp16 | Self::NativeFp16 => f16::from_bits(bits as u16).to_f32(),
            Self::Bf16 | Self::NativeBf16 => bf16::from_bits(bits as u16).to_f32(),
            Self::Int8 => f32::from(bits as u8 as i8) * scale,
            Self::NativeInt8 => return f64::from(bits as u8 as i8),
            Self::NativeUint8 => return f64::from(bits as u8),
            Self::NativeInt32 | Self::Native => return f64::from(bits as i32),
        })
    }

    /// `v` as stored in this format (a fault-free round trip).
    pub fn round(self, v: f64, scale: f32) -> f64 {
        self.decode(self.encode(v, scale), scale)
    }
}

impl fmt::Display for NumFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The symmetric int8 scale of a golden value range: `max(|min|, |max|) /
/// 127`. A range that is all zeros or not finite gets the scale of [-1, 1]
/// (1/127), so a fault still has an effect and no value becomes NaN.
pub fn int8_scale(min: f32, max: f32) -> f32 {
    let m = min.abs().max(max.abs());
    if m > 0.0 && m.is_finite() {
        m / 127.0
    } else {
        1.0 / 127.0
    }
}

/// What a fault does to a value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultModel {
    /// Invert the given bits.
    BitFlip,
    /// Force the given bits to 0.
    StuckAt0,
    /// Force the given bits to 1.
    StuckAt1,
    /// Replace the value by one drawn uniformly from [min, max].
    RandomValue {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// Replace the value by zero.
    Zero,
    /// Replace the value by a constant.
    Constant(f32),
    /// A model registered by name through [`crate::faults::Models`].
    Custom(String),
}

impl FaultModel {
    /// The name used in scenarios, CSV and summaries (`custom:NAME`).
    pub fn name(&self) -> String {
        match self {
            Self::BitFlip => "bit_flip".into(),
            Self::StuckAt0 => "stuck_at_0".into(),
            Self::StuckAt1 => "stuck_at_1".into(),
            Self::RandomValue { .. } => "random_value".into(),
            Self::Zero => "zero".into(),
            Self::Constant(_) => "constant".into(),
            Self::Custom(n) => format!("custom:{n}"),
        }
    }

    /// Whether the model acts on bits (and so needs at least one).
    pub fn uses_bits(&self) -> bool {
        matches!(self, Self::BitFlip | Self::StuckAt0 | Self::StuckAt1)
    }
}

/// The faulty value of `original` (pure; no state). `bits` are the bits the
/// model acts on (ignored by value models), `draw` the fault's random word
/// (used by `random_value`), `int8_scale` the scale of the tensor's golden
/// range (used by int8). Values are f64 so that an int32 word is exact.
/// Returns `None` for a custom model, which only its registered
/// implementation knows.
pub fn corrupt(
    original: f64,
    model: &FaultModel,
    format: NumFormat,
    bits: &[u8],
    draw: u64,
    int8_scale: f32,
) -> Option<f64> {
    let mask = bits
        .iter()
        .filter(|&&b| b < format.width())
        .fold(0u32, |m, &b| m | (1 << b));
    let enc = |v: f64| format.encode(v, int8_scale);
    let dec = |r: u32| format.decode(r, int8_scale);
    Some(match model {
        FaultModel::BitFlip => dec(enc(original) ^ mask),
        FaultModel::StuckAt0 => dec(enc(original) & !mask),
        FaultModel::StuckAt1 => dec(enc(original) | mask),
        FaultModel::Zero => 0.0,
        FaultModel::Constant(c) => format.round(f64::from(*c), int8_scale),
        FaultModel::RandomValue { min, max } => {
            let u = unit_f32(draw);
            format.round(f64::from(min + (max - min) * u), int8_scale)
        }
        FaultModel::Custom(_) => return None,
    })
}

/// A fault's random word as a float in [0, 1] (24 high bits, so the end
/// points are reachable and the mapping is exact).
fn unit_f32(draw: u64) -> f32 {
    ((draw >> 40) as f32) / ((1u32 << 24) - 1) as f32
}
