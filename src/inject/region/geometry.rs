//! Box geometry: which positions a box covers, the outputs of a
//! convolution a box reaches, and a row's values over a box (its window).

use super::*;

/// Positions a 1x1 box of other kinds than float32 (computed by libtorch as
/// a matrix product) covers at least. A product over fewer positions runs
/// other code, which sums in another order: a matrix-vector product for one
/// position, MKL's small-matrix kernel below 12. Float32 boxes are chains
/// (`graph/ops/chain.rs`) that sum alike over any number of positions, so
/// they are not widened. The kernel check still guards whatever other CPUs
/// do.
pub(super) const MIN_POINTWISE: i64 = 16;

/// Widens a 1x1 box to [`MIN_POINTWISE`] positions, or as many as the value
/// (of spatial lengths `lens`) has: from the last axis back, toward the end
/// first. The added positions' outputs are golden.
pub(super) fn widen(span: &mut Span, lens: &[i64]) {
    for axis in (0..span.len()).rev() {
        let (a, b) = span[axis];
        let others = positions(span) / (b - a);
        let want = ((MIN_POINTWISE + others - 1) / others).min(lens[axis]);
        let end = (a + want).max(b).min(lens[axis]);
        span[axis] = ((end - want).min(a), end);
        if positions(span) >= MIN_POINTWISE {
            return;
        }
    }
}

/// The outputs of a Conv of geometry `shape`, on an input of spatial
/// lengths `lens`, that read some position of `span`, the input positions
/// those outputs read (reaching into the padding at the edges), and the
/// output's lengths; `None` when no output reads `span` (a stride skips it).
pub(super) fn conv_reach(
    shape: &ConvShape,
    lens: &[i64],
    span: &Span,
) -> Option<(Span, Span, Vec<i64>)> {
    let (mut out_span, mut reach, mut out_lens) = (Span::new(), Span::new(), Vec::new());
    for (i, &(begin, end)) in span.iter().enumerate() {
        let (s, e, (pad, pad_end)) = (shape.strides[i], shape.extent[i], shape.pads[i]);
        let out_len = (lens[i] + pad + pad_end - e) / s + 1;
        // Outputs o whose window [o*s - pad, o*s - pad + e) meets the span.
        let first = begin + pad - e + 1;
        let lo = first.div_euclid(s) + i64::from(first.rem_euclid(s) != 0);
        let (lo, hi) = (lo.max(0), ((end - 1 + pad).div_euclid(s) + 1).min(out_len));
        if lo >= hi {
            return None;
        }
        out_span.push((lo, hi));
        reach.push((lo * s - pad, (hi - 1) * s - pad + e));
        out_lens.push(out_len);
    }
    Some((out_span, reach, out_lens))
}

/// The view of `t` (`[N, C, spatial...]`) over `span`.
pub(super) fn narrow_to(t: &Tensor, span: &Span) -> std::result::Result<Tensor, tch::TchError> {
    let mut view = t.shallow_clone();
    for (i, &(begin, end)) in span.iter().enumerate() {
        view = view.f_narrow(2 + i as i64, begin, end - begin)?;
    }
    Ok(view)
}

/// The share of a value's positions (`lens` per axis) that `span` covers.
pub(super) fn share(span: &Span, lens: &[i64]) -> f64 {
    positions(span) as f64 / lens.iter().product::<i64>() as f64
}

/// Row `row` of the batch value `t` as a block covering the whole value,
/// if `t` lies contiguous on the CPU.
pub(super) fn row_block(t: &Tensor, row: usize) -> Option<(&[u8], Span)> {
    let bytes = cpu_bytes(t)?;
    let size = t.size();
    let len = bytes.len() / usize::try_from(size[0]).ok().filter(|&n| n > 0)?;
    Some((&bytes[row * len..(row + 1) * len], whole(t)))
}

/// The span of every position of `t` (`[N, C, spatial...]`).
pub(super) fn whole(t: &Tensor) -> Span {
    t.size()[2..].iter().map(|&l| (0, l)).collect()
}

/// Row `row` of the batch value `t` over `span`, zero where `span` reaches
/// past the value's edges, with `delta` written in: a new `[1, C, lens...]`
/// tensor. `None` if `t` does not lie contiguous on the CPU.
pub(super) fn window(
    t: &Tensor,
    row: usize,
    span: &Span,
    delta: Option<&Delta>,
) -> std::result::Result<Option<Tensor>, tch::TchError> {
    if let Some(d) = delta.filter(|d| d.span == *span) {
        return Ok(Some(d.values.shallow_clone()));
    }
    let Some((_, full)) = row_block(t, row) else {
        return Ok(None);
    };
    let mut shape = vec![1, t.size()[1]];
    shape.extend(span.iter().map(|(a, b)| b - a));
    let options = (t.kind(), t.device());
    let mut out = match intersect(span, &full).as_ref() == Some(span) {
        true => Tensor::f_empty(shape.as_slice(), options)?,
        false => Tensor::f_zeros(shape.as_slice(), options)?,
    };
    let dst = cpu_bytes_mut(&mut out).expect("a new CPU tensor is contiguous");
    fill_window(t, row, span, delta, dst);
    Ok(Some(out))
}

/// Writes row `row` of the batch value `t` (contiguous on the CPU) over
/// `span`, with `delta` written in, into `dst`, a block covering `span`
/// (left as it is where `span` reaches past the value's edges).
pub(super) fn fill_window(
    t: &Tensor,
    row: usize,
    span: &Span,
    delta: Option<&Delta>,
    dst: &mut [u8],
) {
    let (golden, full) = row_block(t, row).expect("checked by the caller");
    let (channels, elt) = (t.size()[1], t.kind().elt_size_in_bytes());
    if let Some(inside) = intersect(span, &full) {
        let src = Block {
            bytes: golden,
            span: &full,
        };
        copy_region(channels, elt, dst, span, &src, &inside);
    }
    if let Some(d) = delta {
        if let (Some(region), Some(bytes)) = (intersect(span, &d.span), cpu_bytes(&d.values)) {
            let src = Block {
                bytes,
                span: &d.span,
            };
            copy_region(channels, elt, dst, span, &src, &region);
        }
    }
}
