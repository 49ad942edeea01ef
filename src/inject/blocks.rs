//! Boxes of positions in one row of a value `[N, C, spatial...]`, and
//! copying and comparing them byte by byte between blocks: a block is a
//! contiguous `[C, lens...]` run of memory covering a span of positions (a
//! whole batch row, or a box). Done in place with slices, these are the
//! regional rows' hot loop, where a libtorch call per small box would cost
//! more than the work.

/// Positions: a `[begin, end)` range per spatial axis.
pub(super) type Span = Vec<(i64, i64)>;

/// The positions in both spans, if any.
pub(super) fn intersect(a: &[(i64, i64)], b: &[(i64, i64)]) -> Option<Span> {
    let both: Span = a
        .iter()
        .zip(b)
        .map(|(&(a0, a1), &(b0, b1))| (a0.max(b0), a1.min(b1)))
        .collect();
    both.iter().all(|(lo, hi)| lo < hi).then_some(both)
}

/// The number of positions in `span`.
pub(super) fn positions(span: &[(i64, i64)]) -> i64 {
    span.iter().map(|(a, b)| b - a).product()
}

/// Calls `visit` with the byte offsets, in a block covering `a` and in one
/// covering `b` (both of `channels`), of each run along the last axis that
/// makes up `region` (inside both), in order, while `visit` returns true.
/// Returns whether every run was visited.
fn each_run(
    channels: i64,
    elt: usize,
    a: &[(i64, i64)],
    b: &[(i64, i64)],
    region: &[(i64, i64)],
    mut visit: impl FnMut(usize, usize) -> bool,
) -> bool {
    let d = region.len();
    let (stride_a, plane_a) = strides(a);
    let (stride_b, plane_b) = strides(b);
    let outer = &region[..d - 1];
    // The runs' offsets within a channel, the same in every channel.
    let mut runs = Vec::with_capacity(positions(outer) as usize);
    let mut at: Vec<i64> = region.iter().map(|r| r.0).collect();
    for _ in 0..positions(outer) {
        let within = |span: &[(i64, i64)], stride: &[i64]| -> i64 {
            (0..d).map(|j| (at[j] - span[j].0) * stride[j]).sum()
        };
        runs.push((within(a, &stride_a), within(b, &stride_b)));
        for j in (0..d - 1).rev() {
            at[j] += 1;
            if at[j] < outer[j].1 {
                break;
            }
            at[j] = outer[j].0;
        }
    }
    for c in 0..channels {
        let (base_a, base_b) = (c * plane_a, c * plane_b);
        for &(ra, rb) in &runs {
            if !visit((base_a + ra) as usize * elt, (base_b + rb) as usize * elt) {
                return false;
            }
        }
    }
    true
}

/// Row-major strides of a block covering `span`, and its positions.
fn strides(span: &[(i64, i64)]) -> (Vec<i64>, i64) {
    let mut strides = vec![1; span.len()];
    for j in (0..span.len().saturating_sub(1)).rev() {
        strides[j] = strides[j + 1] * (span[j + 1].1 - span[j + 1].0);
    }
    (strides, positions(span))
}

/// A block of `channels` covering `span`, as bytes of `elt`-byte values.
pub(super) struct Block<'a> {
    pub bytes: &'a [u8],
    pub span: &'a [(i64, i64)],
}

/// Copies `region` (inside both blocks) from `src` into `dst`, which covers
/// `dst_span`.
pub(super) fn copy_region(
    channels: i64,
    elt: usize,
    dst: &mut [u8],
    dst_span: &[(i64, i64)],
    src: &Block,
    region: &[(i64, i64)],
) {
    let Some(&(a, b)) = region.last() else { return };
    let run = (b - a) as usize * elt;
    each_run(channels, elt, dst_span, src.span, region, |t, f| {
        dst[t..t + run].copy_from_slice(&src.bytes[f..f + run]);
        true
    });
}

/// Whether the two blocks hold the same bytes over `region` (inside both).
pub(super) fn equal_region(
    channels: i64,
    elt: usize,
    x: &Block,
    y: &Block,
    region: &[(i64, i64)],
) -> bool {
    let Some(&(a, b)) = region.last() else {
        return true;
    };
    let run = (b - a) as usize * elt;
    each_run(channels, elt, x.span, y.span, region, |i, j| {
        x.bytes[i..i + run] == y.bytes[j..j + run]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block of 2 channels over `span`, each byte naming its channel and
    /// absolute position.
    fn block(span: &[(i64, i64)]) -> Vec<u8> {
        let mut out = Vec::new();
        for c in 0..2u8 {
            for y in span[0].0..span[0].1 {
                for x in span[1].0..span[1].1 {
                    out.push(c * 100 + (y * 10 + x) as u8);
                }
            }
        }
        out
    }

    #[test]
    fn copies_and_compares_a_region_between_blocks_at_different_origins() {
        let full_span = vec![(0, 5), (0, 6)];
        let full = block(&full_span);
        let box_span = vec![(1, 4), (2, 5)];
        let mut dst = vec![0; 2 * 9];
        let src = Block {
            bytes: &full,
            span: &full_span,
        };
        copy_region(2, 1, &mut dst, &box_span, &src, &box_span);
        assert_eq!(dst, block(&box_span));
        let boxed = Block {
            bytes: &dst,
            span: &box_span,
        };
        assert!(equal_region(2, 1, &src, &boxed, &box_span));
        dst[7] ^= 1;
        let boxed = Block {
            bytes: &dst,
            span: &box_span,
        };
        assert!(!equal_region(2, 1, &src, &boxed, &box_span));
        assert!(equal_region(2, 1, &src, &boxed, &[(1, 2), (2, 5)]));
    }

    #[test]
    fn intersections() {
        assert_eq!(
            intersect(&[(0, 4), (2, 6)], &[(3, 9), (0, 3)]),
            Some(vec![(3, 4), (2, 3)])
        );
        assert_eq!(intersect(&[(0, 4)], &[(4, 9)]), None);
        assert_eq!(positions(&[(1, 3), (0, 5)]), 10);
    }
}
