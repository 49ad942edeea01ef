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
//! fp32 flips the value in place. fp16 and bf16 round the value to the format
//! (nearest, ties to even), change the bits and widen back to f32. int8
//! quantizes symmetrically per tensor: `q = clamp(round_ties_even(v / s),
//! -128, 127)` with `s = max(|min|, |max|) / 127` from the golden range
//! ([`int8_scale`]), changes the bits of the two's-complement byte `q` and
//! returns `q' * s`.

use std::fmt;

use half::{bf16, f16};
use serde::{Deserialize, Serialize};

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
}

impl NumFormat {
    /// Every format, in the order of their tables.
    pub const ALL: [NumFormat; 4] = [Self::Fp32, Self::Fp16, Self::Bf16, Self::Int8];

    /// Width in bits; valid bits are `0..width`.
    pub fn width(self) -> u8 {
        match self {
            Self::Fp32 => 32,
            Self::Fp16 | Self::Bf16 => 16,
            Self::Int8 => 8,
        }
    }

    /// The name in scenarios, CSV and reports (`fp32`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Fp16 => "fp16",
            Self::Bf16 => "bf16",
            Self::Int8 => "int8",
        }
    }

    /// The format named `s` ([`NumFormat::name`]).
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name() == s)
    }

    /// The representation of `v` in this format, in the low `width` bits.
    /// `scale` is used by int8 only.
    pub fn encode(self, v: f32, scale: f32) -> u32 {
        match self {
            Self::Fp32 => v.to_bits(),
            Self::Fp16 => u32::from(f16::from_f32(v).to_bits()),
            Self::Bf16 => u32::from(bf16::from_f32(v).to_bits()),
            Self::Int8 => {
                let q = (v / scale).round_ties_even().clamp(-128.0, 127.0) as i8;
                u32::from(q as u8)
            }
        }
    }

    /// The f32 value of the representation `bits` (low `width` bits).
    pub fn decode(self, bits: u32, scale: f32) -> f32 {
        match self {
            Self::Fp32 => f32::from_bits(bits),
            Self::Fp16 => f16::from_bits(bits as u16).to_f32(),
            Self::Bf16 => bf16::from_bits(bits as u16).to_f32(),
            Self::Int8 => f32::from(bits as u8 as i8) * scale,
        }
    }

    /// `v` as stored in this format (a fault-free round trip).
    pub fn round(self, v: f32, scale: f32) -> f32 {
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
/// range (used by int8). Returns `None` for a custom model, which only its
/// registered implementation knows.
pub fn corrupt(
    original: f32,
    model: &FaultModel,
    format: NumFormat,
    bits: &[u8],
    draw: u64,
    int8_scale: f32,
) -> Option<f32> {
    let mask = bits
        .iter()
        .filter(|&&b| b < format.width())
        .fold(0u32, |m, &b| m | (1 << b));
    let enc = |v: f32| format.encode(v, int8_scale);
    let dec = |r: u32| format.decode(r, int8_scale);
    Some(match model {
        FaultModel::BitFlip => dec(enc(original) ^ mask),
        FaultModel::StuckAt0 => dec(enc(original) & !mask),
        FaultModel::StuckAt1 => dec(enc(original) | mask),
        FaultModel::Zero => 0.0,
        FaultModel::Constant(c) => format.round(*c, int8_scale),
        FaultModel::RandomValue { min, max } => {
            let u = unit_f32(draw);
            format.round(min + (max - min) * u, int8_scale)
        }
        FaultModel::Custom(_) => return None,
    })
}

/// A fault's random word as a float in [0, 1] (24 high bits, so the end
/// points are reachable and the mapping is exact).
fn unit_f32(draw: u64) -> f32 {
    ((draw >> 40) as f32) / ((1u32 << 24) - 1) as f32
}
