//! ONNX `TensorProto` to tch tensors (raw little-endian data, typed fields, or
//! external data next to the model file).

use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path};

use tch::{Kind, Tensor};

use super::proto::{TensorProto, ValueInfoProto};
use crate::error::{Error, Result};
use crate::graph::onnx_kind;

pub fn from_proto(t: &TensorProto, model: &Path) -> Result<Tensor> {
    let bad = |msg: String| Error::InvalidModel {
        path: model.to_path_buf(),
        msg: format!("tensor '{}': {msg}", t.name),
    };
    let (kind, elem) = onnx_kind(t.data_type)
        .ok_or_else(|| bad(format!("data type {} is not supported", t.data_type)))?;
    if t.dims.iter().any(|&d| d < 0) {
        return Err(bad(format!("negative dimension in {:?}", t.dims)));
    }
    let numel = t
        .dims
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d as usize))
        .filter(|n| {
            n.checked_mul(elem)
                .is_some_and(|b| b <= isize::MAX as usize)
        })
        .ok_or_else(|| bad(format!("shape {:?}: too many elements", t.dims)))?;
    let external;
    let raw: Option<&[u8]> = if t.data_location == 1 {
        external = read_external(t, model, numel * elem)?;
        Some(&external)
    } else if !t.raw_data.is_empty() || numel == 0 {
        Some(&t.raw_data)
    } else {
        None
    };
    let tensor = match raw {
        Some(bytes) => {
            if bytes.len() != numel * elem {
                return Err(bad(format!(
                    "holds {} bytes, its shape {:?} needs {}",
                    bytes.len(),
                    t.dims,
                    numel * elem
                )));
            }
            Tensor::f_from_data_size(bytes, &t.dims, kind)
        }
        None => typed(t, kind, numel).map_err(bad)?,
    };
    tensor.map_err(|e| bad(e.to_string()))
}

/// Data stored in the typed repeated fields instead of `raw_data`.
fn typed(
    t: &TensorProto,
    kind: Kind,
    numel: usize,
) -> std::result::Result<tch::Result<Tensor>, String> {
    let check = |n: usize| {
        if n == numel {
            Ok(())
        } else {
            Err(format!(
                "holds {n} values, its shape {:?} needs {numel}",
                t.dims
            ))
        }
    };
    let flat = match kind {
        Kind::Float => {
            check(t.float_data.len())?;
            Tensor::from_slice(&t.float_data)
        }
        Kind::Double => {
            check(t.double_data.len())?;
            Tensor::from_slice(&t.double_data)
        }
        Kind::Int64 => {
            check(t.int64_data.len())?;
            Tensor::from_slice(&t.int64_data)
        }
        Kind::Half | Kind::BFloat16 => {
            // 16-bit floats travel as their bit patterns in int32_data.
            check(t.int32_data.len())?;
            let bits: Vec<u8> = t
                .int32_data
                .iter()
                .flat_map(|&b| (b as u16).to_le_bytes())
                .collect();
            return Ok(Tensor::f_from_data_size(&bits, &t.dims, kind));
        }
        _ => {
            check(t.int32_data.len())?;
            Tensor::from_slice(&t.int32_data)
        }
    };
    Ok(flat.f_to_kind(kind).and_then(|f| f.f_reshape(&t.dims)))
}

/// The bytes of a tensor stored outside the model: `location` is a file
/// relative to the model's folder (as the ONNX checker requires: no absolute
/// path, no `..`), read from `offset` for `length` bytes (default: to the
/// end). Only the tensor's `want` bytes are read, so a bad location (a
/// device, a huge file) fails fast instead of being read whole.
fn read_external(t: &TensorProto, model: &Path, want: usize) -> Result<Vec<u8>> {
    let get = |k: &str| {
        t.external_data
            .iter()
            .find(|e| e.key == k)
            .map(|e| e.value.as_str())
    };
    let bad = |msg: String| Error::InvalidModel {
        path: model.to_path_buf(),
        msg: format!("tensor '{}': external data: {msg}", t.name),
    };
    let location = get("location").ok_or_else(|| bad("no location".into()))?;
    let relative = Path::new(location);
    if location.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err(bad(format!(
            "location '{location}' must be a relative path inside the model's folder"
        )));
    }
    let num = |k: &str| -> Result<Option<u64>> {
        get(k)
            .map(|v| {
                v.parse()
                    .map_err(|_| bad(format!("{k} '{v}' is not a number")))
            })
            .transpose()
    };
    let (offset, length) = (num("offset")?.unwrap_or(0), num("length")?);
    let file = model.parent().unwrap_or(Path::new(".")).join(relative);
    let io = |e| Error::io(&file, e);
    let mut f = std::fs::File::open(&file).map_err(io)?;
    let size = f.metadata().map_err(io)?;
    if !size.is_file() {
        return Err(bad(format!("{} is not a regular file", file.display())));
    }
    let end = length.map_or(Some(size.len()), |l| offset.checked_add(l));
    let Some(len) = end
        .filter(|&e| e <= size.len() && offset <= e)
        .map(|e| e - offset)
    else {
        return Err(bad(format!(
            "{} ({} bytes) is shorter than offset {offset} + length {}",
            file.display(),
            size.len(),
            length.map_or("(to the end)".into(), |l| l.to_string())
        )));
    };
    if len != want as u64 {
        return Err(bad(format!(
            "holds {len} bytes, its shape {:?} needs {want}",
            t.dims
        )));
    }
    let mut bytes = vec![0; want];
    f.seek(SeekFrom::Start(offset))
        .and_then(|_| f.read_exact(&mut bytes))
        .map_err(io)?;
    Ok(bytes)
}

/// The declared element type of a graph input (float32 when none is
/// declared), or the ONNX type number libtorch does not hold.
pub fn kind_of(vi: &ValueInfoProto) -> std::result::Result<Kind, i32> {
    let declared = (vi.r#type.as_ref())
        .and_then(|t| t.tensor_type.as_ref())
        .map_or(0, |t| t.elem_type);
    match declared {
        0 => Ok(Kind::Float),
        t => onnx_kind(t).map(|(kind, _)| kind).ok_or(t),
    }
}

/// Declared dimensions of a graph input; `None` entries are symbolic.
pub fn dims_of(vi: &ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let shape = vi.r#type.as_ref()?.tensor_type.as_ref()?.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| d.dim_value.filter(|&v| v > 0))
            .collect(),
    )
}
