//! Every op faultsweep runs, as an enum parsed from the node's `op_type` at
//! load time, and what the rest of the program may assume of each op.
//!
//! An op is declared here once: its variant in the `ops!` list below and, when the engine
//! may assume anything of it, its row in [`Op::traits`]. Its kernel and the
//! attributes it honours are its [`ops::OpDef`](super::ops::OpDef) in its
//! family's file. Nothing else in the program names an op by its string:
//! the engine, the bounds, the fault sites and the inspection ask the
//! traits. Every variant has exactly one kernel (checked by a test), so a
//! name that parses is a name that runs.

use std::fmt;

use super::Node;

macro_rules! ops {
    ($($op:ident),* $(,)?) => {
        /// An ONNX op of the default domain that faultsweep has a kernel for;
        /// each variant is named as the op in the ONNX spec.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Op {
            $(#[doc = concat!("ONNX `", stringify!($op), "`.")] $op),*
        }

        impl Op {
            /// Every op, in declaration order.
            pub const ALL: &'static [Op] = &[$(Op::$op),*];

            /// The op's ONNX name.
            pub const fn name(self) -> &'static str {
                match self {
                    $(Op::$op => stringify!($op)),*
                }
            }
        }
    };
}

ops! {
    // detection.rs
    NonMaxSuppression, RoiAlign, GridSample, AffineGrid,
    // recurrent.rs
    LSTM, GRU, RNN,
    // loss.rs
    NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss,
    // index.rs
    Unique,
    // conv.rs
    Col2Im,
    // activation.rs
    Relu, LeakyRelu, PRelu, Elu, Selu, Celu, Sigmoid, HardSigmoid, HardSwish, Tanh, Softplus,
    Softsign, Mish, Gelu, Softmax, LogSoftmax, Hardmax, Clip,
    // conv.rs
    Conv, ConvTranspose,
    // elementwise.rs
    Add, Sub, Mul, Div, Mod, Pow, Sqrt, Neg, Abs, Exp, Log, Reciprocal, Erf, Floor, Ceil, Sign,
    Sin, Cos, Max, Min, Sum, Mean, Equal, Less, LessOrEqual, Greater, GreaterOrEqual, Not, And,
    Or, Xor, Where, Cast, CastLike, Tan, Asin, Acos, Atan, Sinh, Cosh, Asinh, Acosh, Atanh,
    IsNaN, IsInf,
    // index.rs
    Gather, GatherElements, Slice, GatherND, ScatterElements, ScatterND, TopK, NonZero, OneHot,
    Trilu,
    // linear.rs
    Gemm, MatMul, Einsum,
    // norm.rs
    BatchNormalization, InstanceNormalization, LayerNormalization, GroupNormalization, LRN,
    LpNormalization,
    // pool.rs
    MaxPool, AveragePool, GlobalAveragePool, GlobalMaxPool,
    // reduce.rs
    ReduceMean, ReduceSum, ReduceMax, ReduceMin, ReduceProd, ReduceL1, ReduceL2, ReduceSumSquare,
    ReduceLogSum,
    ReduceLogSumExp, ArgMax, ArgMin, CumSum,
    // resize.rs
    Resize, Upsample,
    // shape.rs
    Flatten, Reshape, Transpose, Squeeze, Unsqueeze, Concat, Split, Shape, Size,
    ConstantOfShape, Expand, Tile, Range, Pad, Identity, Dropout, DepthToSpace, SpaceToDepth,
    // attention.rs
    Attention, RMSNormalization, RotaryEmbedding, LinearAttention,
    // activation.rs
    Swish, ThresholdedRelu,
    // elementwise.rs
    Round, BitShift,
    // reduce.rs
    CumProd,
    // pool.rs
    LpPool,
    // index.rs
    Compress,
    // shape.rs
    CenterCropPad,
    // elementwise.rs
    BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot, Shrink,
    // generate.rs
    EyeLike, HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix,
    // index.rs
    Scatter, ReverseSequence, TensorScatter,
    // pool.rs
    MaxUnpool,
    // linear.rs
    Det,
    // norm.rs
    MeanVarianceNormalization,
    // activation.rs
    SwiGLU,
    // quant.rs
    QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, ConvInteger,
    QLinearMatMul, QLinearConv, BitCast,
    // conv.rs
    CausalConvWithState,
    // signal.rs
    DFT, STFT,
    // deform.rs
    DeformConv,
    // text.rs
    TfIdfVectorizer,
}

/// What the program may assume of an op. The default (an op of no row in
/// [`Op::traits`]) assumes nothing: the engine then runs the op on whole
/// rows and scans its outputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Traits {
    /// Its outputs are finite whenever its inputs are: it selects, moves or
    /// bounds values, or maps them into a bounded range. The engine skips
    /// the NaN/Inf scan of a finite row after such an op.
    pub keeps_finite: bool,
    /// How a regional row (a box of positions, `inject::region`) runs
    /// through it.
    pub on_a_box: OnABox,
    /// The bound on its outputs' magnitude it derives from its inputs'
    /// (`inject::bounds`).
    pub bound: BoundRule,
    /// Its weights, the fault sites besides its output.
    pub weights: Option<Weights>,
    /// Its sliding window, whose attributes the loader checks.
    pub window: Option<Window>,
    /// Each run draws new values, so the loader never evaluates it once
    /// although its inputs are constants. No op with a kernel does today;
    /// a kernel of Bernoulli, Multinomial or the RandomNormal and
    /// RandomUniform ops must set it, or it is folded into one fixed draw.
    pub random: bool,
}

/// How a box of positions where a faulty row differs passes an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnABox {
    /// The row joins the batch as a whole row before the op.
    Join,
    /// Computed position by position, and the result at a position does
    /// not depend on how the kernel blocks or vectorizes the tensor (one
    /// correctly rounded operation, or a selection such as a Concat of
    /// channels): the op over the union of its inputs' boxes holds exactly
    /// the full tensor's values there.
    /// Transcendental ops (Sigmoid, Tanh, Exp, ...) and fused multiply-adds
    /// (BatchNormalization) are not: their vector and scalar code paths may
    /// round differently.
    Elementwise,
    /// A convolution over the outputs the box reaches: bitwise the full
    /// layer's values when it is depthwise or 1x1 (each output one chain
    /// whatever is computed beside it); other shapes join.
    Convolution,
    /// A global pool, which sums up each row: run on the row with its boxes
    /// written in, it leaves the row regional when its output is bitwise
    /// the golden row's (a small change may round away in a mean), and the
    /// row joins the batch at the next node otherwise.
    WholeRow,
}

/// The magnitude bound an op's outputs get from its inputs' bounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BoundRule {
    /// None is known.
    Unknown,
    /// At most this, whatever the inputs (Sigmoid, Tanh: 1).
    Fixed(f64),
    /// The larger absolute value of its limits (Clip).
    Limits,
    /// At most its first input's.
    Input,
    /// At most the largest of its inputs' (Concat).
    LargestInput,
    /// At most the sum of its two inputs' (Add, Sub).
    SumOfInputs,
    /// Its input's bound times the largest absolute row sum of its weights,
    /// plus its bias's largest value (Conv, Gemm).
    Weighted,
}

/// An op's weights: constant input 1 (and a bias) combined with its data
/// input by multiply-adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weights {
    /// Conv: filters `[M, C/group, k...]` (input 1) and a bias `[M]`
    /// (input 2), one slice per output channel along axis 0.
    Filters,
    /// Gemm: `B` (input 1, transposed under `transB`) and `C` (input 2),
    /// one column of `B` per output column.
    Columns,
    /// MatMul: `B` (input 1), no bias.
    Matrix,
}

/// An op's sliding window: `kernel_shape`, `strides`, `pads`, `dilations`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Window {
    /// The kernel's extent comes from the filters; `kernel_shape` optional.
    Filters,
    /// A pool: `kernel_shape` is required.
    Pool,
}

impl Traits {
    /// Nothing assumed.
    pub const NONE: Traits = Traits {
        keeps_finite: false,
        on_a_box: OnABox::Join,
        bound: BoundRule::Unknown,
        weights: None,
        window: None,
        random: false,
    };

    const fn finite(self) -> Self {
        Traits {
            keeps_finite: true,
            ..self
        }
    }

    const fn on_a_box(self, on_a_box: OnABox) -> Self {
        Traits { on_a_box, ..self }
    }

    const fn elementwise(self) -> Self {
        self.on_a_box(OnABox::Elementwise)
    }

    const fn bound(self, bound: BoundRule) -> Self {
        Traits { bound, ..self }
    }

    const fn weights(self, weights: Weights) -> Self {
        Traits {
            weights: Some(weights),
            ..self
        }
    }

    const fn window(self, window: Window) -> Self {
        Traits {
            window: Some(window),
            ..self
        }
    }
}

impl Op {
    /// The op named `name` (case-sensitive, as ONNX spells it).
    pub fn parse(name: &str) -> Option<Op> {
        Op::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// What the program may assume of the op: one row per op of which
    /// anything is assumed.
    pub const fn traits(self) -> Traits {
        use BoundRule::*;
        use Op::*;
        const NONE: Traits = Traits::NONE;
        match self {
            Relu | ThresholdedRelu => NONE.finite().elementwise().bound(Input),
            Round => NONE.finite().elementwise(),
            Clip => NONE.finite().elementwise().bound(Limits),
            LeakyRelu | Neg | Abs | Sqrt | Reciprocal | Mul | Div | Max | Min => NONE.elementwise(),
            Add | Sub => NONE.elementwise().bound(SumOfInputs),
            Identity => NONE.finite().elementwise().bound(Input),
            Sigmoid | Tanh => NONE.finite().bound(Fixed(1.0)),
            MaxPool => NONE.finite().bound(Input).window(Window::Pool),
            AveragePool => NONE.bound(Input).window(Window::Pool),
            LpPool => NONE.window(Window::Pool),
            GlobalAveragePool | GlobalMaxPool => NONE.bound(Input).on_a_box(OnABox::WholeRow),
            ReduceMean | ReduceMax | ReduceMin => NONE.bound(Input),
            Flatten | Reshape | Squeeze | Unsqueeze | Transpose | Slice | Split | Gather
            | GatherND | DepthToSpace | SpaceToDepth | Trilu | Compress | CenterCropPad => {
                NONE.finite().bound(Input)
            }
            Hardmax => NONE.finite().bound(Fixed(1.0)),
            Concat => NONE.finite().elementwise().bound(LargestInput),
            Conv => NONE
                .on_a_box(OnABox::Convolution)
                .bound(Weighted)
                .weights(Weights::Filters)
                .window(Window::Filters),
            ConvTranspose | ConvInteger | QLinearConv | DeformConv => NONE.window(Window::Filters),
            Gemm => NONE.bound(Weighted).weights(Weights::Columns),
            MatMul => NONE.weights(Weights::Matrix),
            _ => NONE,
        }
    }

    /// Whether its outputs are finite whenever its inputs are.
    pub const fn keeps_finite(self) -> bool {
        self.traits().keeps_finite
    }

    /// Whether one row's result depends on the other rows of its batch:
    /// DynamicQuantizeLinear takes one scale over the whole tensor.
    pub const fn couples_rows(self) -> bool {
        matches!(self, Op::DynamicQuantizeLinear)
    }

    /// Whether the op writes the integer words of a quantized model (its
    /// first output is a neuron site).
    pub const fn is_quantized(self) -> bool {
        matches!(
            self,
            Op::QuantizeLinear
                | Op::DynamicQuantizeLinear
                | Op::QLinearConv
                | Op::QLinearMatMul
                | Op::ConvInteger
                | Op::MatMulInteger
        )
    }

    /// The inputs of a quantized op that hold its integer weights (and an
    /// int32 bias) when they are initializers.
    pub const fn word_inputs(self) -> &'static [usize] {
        match self {
            Op::QLinearConv => &[3, 8],
            Op::QLinearMatMul => &[0, 3],
            Op::ConvInteger => &[1],
            Op::MatMulInteger => &[0, 1],
            _ => &[],
        }
    }

    /// Its weights, if it has any.
    pub const fn weights(self) -> Option<Weights> {
        self.traits().weights
    }
}

impl Weights {
    /// The input holding the bias, if the op has one.
    pub const fn bias_input(self) -> Option<usize> {
        match self {
            Weights::Filters | Weights::Columns => Some(2),
            Weights::Matrix => None,
        }
    }

    /// Whether a faulty weight changes one output channel only, so that the
    /// engine recomputes that channel alone (`inject::weights`).
    pub const fn per_channel(self) -> bool {
        matches!(self, Weights::Filters | Weights::Columns)
    }

    /// Multiply-adds of `node` per sample, from the shape of its input 1
    /// (the weights) and its output elements.
    pub fn macs(self, node: &Node, weights: &[i64], out_elems: i64) -> i64 {
        match self {
            // Each output element sums over C/group x kernel inputs.
            Weights::Filters => out_elems * weights.iter().skip(1).product::<i64>(),
            Weights::Columns | Weights::Matrix => {
                let trans_b =
                    self == Weights::Columns && node.attrs.int("transB", 0).unwrap_or(0) != 0;
                let k = if trans_b {
                    weights.last()
                } else {
                    weights.iter().rev().nth(1)
                };
                out_elems * k.copied().unwrap_or(1)
            }
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Op {
    type Err = String;

    fn from_str(s: &str) -> Result<Op, String> {
        Op::parse(s).ok_or_else(|| format!("op {s} has no kernel in faultsweep"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every op has exactly one kernel, under its own name.
    #[test]
    fn every_op_has_one_kernel() {
        for &op in Op::ALL {
            assert_eq!(super::super::ops::def(op).op, op);
            assert_eq!(Op::parse(op.name()), Some(op));
        }
        let defs = super::super::ops::all().count();
        assert_eq!(defs, Op::ALL.len(), "an OpDef per op and no more");
    }

    #[test]
    fn names_are_case_sensitive() {
        assert_eq!(Op::parse("Conv"), Some(Op::Conv));
        assert_eq!(Op::parse("conv"), None);
        assert_eq!(Op::parse("Bernoulli"), None);
    }
}
