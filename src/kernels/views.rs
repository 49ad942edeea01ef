//! Slices into the storage of contiguous CPU tensors, and the in-place
//! write of one float32 element: the only places where the crate turns a
//! tensor's data pointer into Rust memory.
//!
//! Input: a tensor handle. Output: `None` where the tensor does not suit
//! (not on the CPU, not contiguous, another kind), else a slice borrowing
//! the handle. Invariant (the module contract of [`super`]): a view is
//! dropped before any handle writes the storage it covers.

use tch::{Device, Kind, Tensor};

/// Whether every tensor given is float32 on the CPU.
pub fn float_cpu(tensors: &[Option<&Tensor>]) -> bool {
    tensors
        .iter()
        .flatten()
        .all(|t| t.kind() == Kind::Float && t.device() == Device::Cpu)
}

/// The number of bytes of a contiguous CPU tensor, `None` for others.
fn cpu_len(t: &Tensor) -> Option<usize> {
    (t.device() == Device::Cpu && t.is_contiguous())
        .then(|| t.numel() * t.kind().elt_size_in_bytes())
}

/// The bytes of a contiguous tensor on the CPU.
pub fn cpu_bytes(t: &Tensor) -> Option<&[u8]> {
    let len = cpu_len(t)?;
    if len == 0 {
        return Some(&[]); // an empty tensor may have no storage at all
    }
    // SAFETY: `t` is a contiguous CPU tensor, so its `len` bytes lie in its
    // storage, which the borrow of `t` keeps alive; by the module contract
    // no handle writes them while the slice lives.
    Some(unsafe { std::slice::from_raw_parts(t.data_ptr() as *const u8, len) })
}

/// The bytes of a contiguous CPU tensor, to write: only for a tensor just
/// created, which no other handle shares.
pub fn cpu_bytes_mut(t: &mut Tensor) -> Option<&mut [u8]> {
    let len = cpu_len(t)?;
    if len == 0 {
        return Some(&mut []);
    }
    // SAFETY: as in `cpu_bytes`; the exclusive borrow of `t`, which the
    // caller created and has not shared, keeps other readers away.
    Some(unsafe { std::slice::from_raw_parts_mut(t.data_ptr() as *mut u8, len) })
}

/// The values of a contiguous float32 CPU tensor.
pub fn floats(t: &Tensor) -> Option<&[f32]> {
    if t.kind() != Kind::Float {
        return None;
    }
    let bytes = cpu_bytes(t)?;
    if bytes.is_empty() {
        return Some(&[]);
    }
    // SAFETY: a float32 tensor's storage holds f32 values, element-aligned
    // (checked); the slice covers the same bytes and borrows `t` as `bytes`
    // does.
    (bytes.as_ptr().align_offset(4) == 0)
        .then(|| unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast(), bytes.len() / 4) })
}

/// The values of a contiguous float32 CPU tensor, to write: only for a
/// tensor just created, which no other handle shares.
pub fn floats_mut(t: &mut Tensor) -> Option<&mut [f32]> {
    if t.kind() != Kind::Float {
        return None;
    }
    let bytes = cpu_bytes_mut(t)?;
    if bytes.is_empty() {
        return Some(&mut []);
    }
    let (ptr, len) = (bytes.as_mut_ptr(), bytes.len() / 4);
    // SAFETY: as in `floats`, from the exclusive view `bytes`, which the
    // new slice replaces.
    (ptr.align_offset(4) == 0).then(|| unsafe { std::slice::from_raw_parts_mut(ptr.cast(), len) })
}

/// Replaces element `index` of a contiguous float32 CPU tensor by
/// `corrupt` of its value, in place; the original and new values, or
/// `None` (leaving `t` as it was) when `t` does not suit or `index` lies
/// outside it.
///
/// This writes the storage through a shared handle, as a fault injection
/// must: `t` is often a view (one row of a batch) whose write is meant to
/// land in the tensor it views, and every handle sharing the storage sees
/// the new value, as after libtorch's in-place ops. No Rust reference to
/// the element is made; by the module contract no view of the storage is
/// alive across the call, and no other thread reads `t` meanwhile.
pub fn replace_float(
    t: &Tensor,
    index: usize,
    corrupt: impl FnOnce(f32) -> f32,
) -> Option<(f32, f32)> {
    let suits = t.kind() == Kind::Float && cpu_len(t).is_some() && index < t.numel();
    if !suits {
        return None;
    }
    // SAFETY: `t` is a contiguous float32 CPU tensor and `index` lies in it
    // (checked above), so the cell is an aligned f32 of its storage.
    let cell = unsafe { (t.data_ptr() as *mut f32).add(index) };
    // SAFETY: as above; the storage is alive while `t` is borrowed, and no
    // reference to it exists (module contract).
    let original = unsafe { cell.read() };
    let faulty = corrupt(original);
    // SAFETY: as for the read.
    unsafe { cell.write(faulty) };
    Some((original, faulty))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn views_cover_contiguous_cpu_tensors_only() {
        let t = Tensor::from_slice(&[1f32, 2., 3., 4.]).view([2, 2]);
        assert_eq!(floats(&t), Some(&[1f32, 2., 3., 4.][..]));
        assert_eq!(cpu_bytes(&t).map(<[u8]>::len), Some(16));
        assert!(cpu_bytes(&t.tr()).is_none(), "a transposed view");
        assert!(floats(&t.to_kind(Kind::Double)).is_none());
        let empty = Tensor::zeros([0, 3], (Kind::Float, Device::Cpu));
        assert_eq!(floats(&empty), Some(&[][..]));
    }

    #[test]
    fn a_replaced_value_lands_in_the_viewed_tensor() {
        let t = Tensor::from_slice(&[1f32, 2., 3., 4.]).view([2, 2]);
        let row = t.get(1);
        assert_eq!(replace_float(&row, 1, |v| -v), Some((4.0, -4.0)));
        assert_eq!(floats(&t), Some(&[1f32, 2., 3., -4.][..]));
        assert_eq!(replace_float(&row, 2, |v| v), None, "outside the row");
    }
}
