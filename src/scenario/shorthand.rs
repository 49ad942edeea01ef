//! Serde for the keys with a short form: `bits` (`30`, `all`, `{range: [lo,
//! hi]}`, `{list: [..]}`) and `per_inference` (`2`, `{uniform: [lo, hi]}`,
//! `{poisson: m}`, `{probability: p, layers: {..}, per: element|inference}`).
//! The long forms are parsed by small structs with `deny_unknown_fields`,
//! so a typo still names the allowed keys.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::spec::{BitsSpec, PerInference, ProbabilityPer};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BitsMap {
    #[serde(default)]
    range: Option<[u8; 2]>,
    #[serde(default)]
    list: Option<Vec<u8>>,
}

struct BitsVisitor;

impl<'de> Visitor<'de> for BitsVisitor {
    type Value = BitsSpec;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a bit number, `all`, `{range: [lo, hi]}` or `{list: [b, ...]}`")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<BitsSpec, E> {
        u8::try_from(v)
            .map(BitsSpec::One)
            .map_err(|_| E::custom(format!("bit {v} is too large")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<BitsSpec, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("bit {v} is negative"))),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<BitsSpec, E> {
        match v {
            "all" => Ok(BitsSpec::All),
            _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
        }
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<BitsSpec, A::Error> {
        Err(de::Error::custom(
            "a bare list is ambiguous: write `{list: [b, ...]}` or `{range: [lo, hi]}`",
        ))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<BitsSpec, A::Error> {
        let m = BitsMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
        match (m.range, m.list) {
            (Some([lo, hi]), None) => Ok(BitsSpec::Range(lo, hi)),
            (None, Some(list)) => Ok(BitsSpec::List(list)),
            _ => Err(de::Error::custom("give exactly one of `range` or `list`")),
        }
    }
}

impl<'de> Deserialize<'de> for BitsSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(BitsVisitor)
    }
}

impl Serialize for BitsSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BitsSpec::All => s.serialize_str("all"),
            BitsSpec::One(b) => s.serialize_u8(*b),
            BitsSpec::Range(lo, hi) => single(s, "range", &[lo, hi]),
            BitsSpec::List(l) => single(s, "list", l),
        }
    }
}

fn single<S: Serializer, T: Serialize + ?Sized>(s: S, key: &str, v: &T) -> Result<S::Ok, S::Error> {
    let mut m = s.serialize_map(Some(1))?;
    m.serialize_entry(key, v)?;
    m.end()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PerInferenceMap {
    #[serde(default)]
    uniform: Option<[u32; 2]>,
    #[serde(default)]
    poisson: Option<f64>,
    #[serde(default)]
    probability: Option<f64>,
    #[serde(default)]
    layers: Option<BTreeMap<String, f64>>,
    #[serde(default)]
    per: Option<ProbabilityPer>,
}

struct PerInferenceVisitor;

impl<'de> Visitor<'de> for PerInferenceVisitor {
    type Value = PerInference;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(
            "a number of faults, `{uniform: [lo, hi]}`, `{poisson: mean}` or `{probability: p}`",
        )
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<PerInference, E> {
        u32::try_from(v)
            .map(PerInference::Fixed)
            .map_err(|_| E::custom(format!("{v} faults per inference is too many")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<PerInference, E> {
        match u64::try_from(v) {
            Ok(v) => self.visit_u64(v),
            Err(_) => Err(E::custom(format!("{v} faults per inference is negative"))),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<PerInference, A::Error> {
        let m = PerInferenceMap::deserialize(de::value::MapAccessDeserializer::new(map))?;
        let layers = m.layers.clone();
        let alone = layers.is_none() && m.per.is_none();
        match (m.uniform, m.poisson, m.probability) {
            (Some([lo, hi]), None, None) if alone => Ok(PerInference::Uniform(lo, hi)),
            (None, Some(mean), None) if alone => Ok(PerInference::Poisson(mean)),
            (None, None, Some(p)) => Ok(PerInference::Probability {
                p,
                layers: layers.unwrap_or_default(),
                per: m.per.unwrap_or_default(),
            }),
            _ => Err(de::Error::custom(
                "give exactly one of `uniform`, `poisson` or `probability` (`layers` and `per` go with `probability`)",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for PerInference {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PerInferenceVisitor)
    }
}

impl Serialize for PerInference {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            PerInference::Fixed(k) => s.serialize_u32(*k),
            PerInference::Uniform(lo, hi) => single(s, "uniform", &[lo, hi]),
            PerInference::Poisson(m) => single(s, "poisson", m),
            PerInference::Probability { p, layers, per } => {
                // `per: element` is the default: left out, so the effective
                // scenarios written before the key existed stay the same.
                let inference = *per == ProbabilityPer::Inference;
                let mut m = s.serialize_map(Some(2 + usize::from(inference)))?;
                m.serialize_entry("probability", p)?;
                m.serialize_entry("layers", layers)?;
                if inference {
                    m.serialize_entry("per", per)?;
                }
                m.end()
            }
        }
    }
}
