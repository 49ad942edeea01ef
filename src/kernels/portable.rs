//! Off x86-64, in place of the AVX-512 kernels (`avx512/`): every call is
//! declined, so libtorch computes the op, as on an x86-64 CPU without
//! AVX-512.

/// 1x1 convolutions: see the x86-64 module.
pub mod pointwise {
    use tch::Tensor;

    /// Always `None` here: libtorch runs the convolution.
    pub fn convolve(_x: &Tensor, _w: &Tensor, _b: Option<&Tensor>) -> Option<Tensor> {
        None
    }
}

/// Depthwise convolutions: see the x86-64 module.
pub mod depthwise {
    use tch::Tensor;

    use crate::graph::ops::ConvShape;

    /// Always `None` here: libtorch runs the convolution.
    pub fn convolve(
        _shape: &ConvShape,
        _x: &Tensor,
        _w: &Tensor,
        _b: Option<&Tensor>,
    ) -> Option<Tensor> {
        None
    }
}
