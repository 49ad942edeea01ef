//! Node attributes with typed getters. A getter fails when the attribute has
//! the wrong type, so a malformed file is reported, not misread.

use std::collections::BTreeMap;
use tch::Tensor;

use super::ops::KernelError;

#[derive(Debug)]
pub enum Attr {
    Float(f32),
    Int(i64),
    Str(String),
    Tensor(Tensor),
    Floats(Vec<f32>),
    Ints(Vec<i64>),
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

#[derive(Debug, Default, Clone)]
pub struct Attrs(pub BTreeMap<String, Attr>);

type KResult<T> = Result<T, KernelError>;

fn wrong(name: &str, want: &str, got: &Attr) -> KernelError {
    KernelError(format!(
        "attribute '{name}' should be {want}, found {got:?}"
    ))
}

impl Attrs {
    pub fn has(&self, name: &str) -> bool {
        self.0.contains_key(name)
    }

    pub fn int(&self, name: &str, default: i64) -> KResult<i64> {
        match self.0.get(name) {
            None => Ok(default),
            Some(Attr::Int(i)) => Ok(*i),
            Some(a) => Err(wrong(name, "an int", a)),
        }
    }

    pub fn float(&self, name: &str, default: f32) -> KResult<f32> {
        match self.0.get(name) {
            None => Ok(default),
            Some(Attr::Float(f)) => Ok(*f),
            Some(a) => Err(wrong(name, "a float", a)),
        }
    }

    pub fn string(&self, name: &str, default: &str) -> KResult<String> {
        match self.0.get(name) {
            None => Ok(default.to_string()),
            Some(Attr::Str(s)) => Ok(s.clone()),
            Some(a) => Err(wrong(name, "a string", a)),
        }
    }

    pub fn ints(&self, name: &str) -> KResult<Option<Vec<i64>>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Ints(v)) => Ok(Some(v.clone())),
            Some(a) => Err(wrong(name, "a list of ints", a)),
        }
    }

    pub fn floats(&self, name: &str) -> KResult<Option<Vec<f32>>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Floats(v)) => Ok(Some(v.clone())),
            Some(a) => Err(wrong(name, "a list of floats", a)),
        }
    }

    pub fn tensor(&self, name: &str) -> KResult<Option<&Tensor>> {
        match self.0.get(name) {
            None => Ok(None),
            Some(Attr::Tensor(t)) => Ok(Some(t)),
            Some(a) => Err(wrong(name, "a tensor", a)),
        }
    }
}
