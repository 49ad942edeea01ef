//! ONNX's operator conformance cases (`onnx.backend.test.case.node` of onnx
//! 1.23.2, written by `scripts/make_conformance.py`): every case whose
//! values libtorch holds is loaded, run with all its inputs of their own
//! types, and each output compared with the expected one at the case's
//! tolerance (`|a - b| <= atol + rtol |b|`, NaN where NaN is expected;
//! integers and booleans exactly, and of the same type). No case may give
//! a wrong value or panic; the passing cases may not fall below the count
//! measured when the last op was added. The test prints the table per op
//! and the commonest reasons a case does not run (`--nocapture`); with
//! `CONFORMANCE_FAILED` set, every case a kernel refused, with its reason.

use std::collections::BTreeMap;
use std::io::Read;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::Path;

use faultsweep::error::Error;
use faultsweep::load;
use tch::{Kind, Tensor};

use crate::common::fixtures;

/// Cases where faultsweep follows onnxruntime (and PyTorch, whose exports
/// real models are) where ONNX's reference implementation, which computed
/// the expected values, differs: counted apart, never as passing.
const AS_ONNXRUNTIME: &[(&str, &str)] = &[
    (
        "test_resize_downsample_scales_cubic_align_corners",
        "align_corners divides by the floored output length (2), the reference by 4 x 0.6",
    ),
    (
        "test_resize_downsample_scales_linear_align_corners",
        "align_corners divides by the floored output length (2), the reference by 4 x 0.6",
    ),
    (
        "test_maxunpool_export_with_output_shape",
        "the indices address output_shape (5 x 5), as MaxPool's of a 5 x 5 input do; the \
         reference scatters them into the inferred 4 x 4 and pads that",
    ),
];

/// Cases whose expected values are off the exact result by more than their
/// tolerance (float32 rounding noise of numpy's FFT, 1.9e-7 where the
/// exact value is 0 and atol is 1e-7; onnxruntime is further off): counted
/// apart, as [`AS_ONNXRUNTIME`].
const INEXACT_EXPECTED: &[(&str, &str)] = &[
    (
        "test_dft_inverse",
        "the expected imaginary part at n/2 is numpy's float32 noise, 1.9e-7; exactly 0",
    ),
    (
        "test_dft_inverse_opset19",
        "the expected imaginary part at n/2 is numpy's float32 noise, 1.9e-7; exactly 0",
    ),
];

/// Passing cases when the last op was added: the test fails below it.
const PASSING: usize = 1524;

/// Serialized TensorProtos.
type Protos = Vec<Vec<u8>>;

/// One case of the fixture.
struct Case {
    name: String,
    /// The op it tests.
    op: String,
    /// Why it is left out (empty: it runs).
    reason: String,
    rtol: f64,
    atol: f64,
    model: Vec<u8>,
    /// Per data set: its inputs and expected outputs.
    sets: Vec<(Protos, Protos)>,
}

/// What a case came to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Pass,
    /// An op, attribute or opset faultsweep refuses at load time.
    Refused(String),
    /// A kernel refused the values (a type or mode it does not run).
    Failed(String),
    Wrong(String),
    Panicked,
}

struct Reader {
    bytes: Vec<u8>,
    at: usize,
}

impl Reader {
    fn u32(&mut self) -> usize {
        let v = u32::from_le_bytes(self.bytes[self.at..self.at + 4].try_into().unwrap());
        self.at += 4;
        v as usize
    }

    fn f64(&mut self) -> f64 {
        let v = f64::from_le_bytes(self.bytes[self.at..self.at + 8].try_into().unwrap());
        self.at += 8;
        v
    }

    fn blob(&mut self) -> Vec<u8> {
        let n = self.u32();
        self.at += n;
        self.bytes[self.at - n..self.at].to_vec()
    }

    fn blobs(&mut self) -> Vec<Vec<u8>> {
        (0..self.u32()).map(|_| self.blob()).collect()
    }
}

fn cases() -> Vec<Case> {
    let path = fixtures().join("conformance/cases.bin.zst");
    let mut bytes = Vec::new();
    zstd::Decoder::new(std::fs::File::open(&path).unwrap())
        .unwrap()
        .read_to_end(&mut bytes)
        .unwrap();
    assert!(bytes.starts_with(b"FSCONF1\n"), "not a conformance fixture");
    let mut r = Reader { bytes, at: 8 };
    let mut cases = Vec::new();
    while r.at < r.bytes.len() {
        let name = String::from_utf8(r.blob()).unwrap();
        let op = String::from_utf8(r.blob()).unwrap();
        let reason = String::from_utf8(r.blob()).unwrap();
        let (rtol, atol) = (r.f64(), r.f64());
        let model = r.blob();
        let sets = (0..r.u32()).map(|_| (r.blobs(), r.blobs())).collect();
        cases.push(Case {
            name,
            op,
            reason,
            rtol,
            atol,
            model,
            sets,
        });
    }
    cases
}

/// Whether `got` matches `want` at the tolerances; why not.
fn compare(got: &Tensor, want: &Tensor, rtol: f64, atol: f64) -> Result<(), String> {
    if got.size() != want.size() {
        return Err(format!(
            "shape {:?}, expected {:?}",
            got.size(),
            want.size()
        ));
    }
    if got.kind() != want.kind() {
        return Err(format!("type {:?}, expected {:?}", got.kind(), want.kind()));
    }
    let float = matches!(
        want.kind(),
        Kind::Float | Kind::Double | Kind::Half | Kind::BFloat16
    );
    if !float {
        return match got.equal(want) {
            true => Ok(()),
            false => Err("values differ".into()),
        };
    }
    // Half-precision results are compared to within a few units in their
    // last place: chains of fp16 and bf16 ops (the `_expanded` cases)
    // round at each step, in an order each implementation chooses; a
    // mistake in an op is off by far more.
    let ulps = match want.kind() {
        Kind::Half => 4.0 * 2f64.powi(-10),
        Kind::BFloat16 => 4.0 * 2f64.powi(-7),
        _ => 0.0,
    };
    let (rtol, atol) = (rtol.max(ulps), atol.max(ulps));
    let (g, w) = (got.to_kind(Kind::Double), want.to_kind(Kind::Double));
    let nan = w.isnan();
    if !g.isnan().equal(&nan) {
        return Err("NaN where none is expected, or none where one is".into());
    }
    let (g, w) = (
        g.where_self(&nan.logical_not(), &w),
        w.nan_to_num(0.0, None, None),
    );
    let g = g.nan_to_num(0.0, None, None);
    // Infinities must match exactly.
    let inf = w.isinf();
    if !g.isinf().equal(&inf) || !g.masked_select(&inf).equal(&w.masked_select(&inf)) {
        return Err("infinities differ".into());
    }
    let finite = inf.logical_not();
    let (g, w) = (g.masked_select(&finite), w.masked_select(&finite));
    if w.numel() == 0 {
        return Ok(());
    }
    let excess = ((&g - &w).abs() - (w.abs() * rtol + atol)).max();
    match excess.double_value(&[]) {
        e if e <= 0.0 => Ok(()),
        e => Err(format!("beyond tolerance by {e:e}")),
    }
}

fn run(case: &Case) -> Verdict {
    let origin = Path::new(&case.name).join("model.onnx");
    let graph = match load::from_bytes(&case.model, &origin) {
        Ok(g) => g,
        Err(e @ Error::Unsupported { .. }) => return Verdict::Refused(first_line(&e)),
        Err(e) => return Verdict::Failed(format!("load: {}", first_line(&e))),
    };
    for (inputs, outputs) in &case.sets {
        let tensors = |blobs: &[Vec<u8>]| -> Result<Vec<Tensor>, String> {
            (blobs.iter())
                .map(|b| load::tensor_from_bytes(b, &origin).map_err(|e| first_line(&e)))
                .collect()
        };
        let (inputs, wanted) = match (tensors(inputs), tensors(outputs)) {
            (Ok(i), Ok(o)) => (i, o),
            (Err(e), _) | (_, Err(e)) => return Verdict::Failed(format!("data: {e}")),
        };
        let got = match graph.forward(&inputs) {
            Ok(got) => got,
            Err(e) => return Verdict::Failed(first_line(&e)),
        };
        if got.len() != wanted.len() {
            return Verdict::Wrong(format!("{} outputs, expected {}", got.len(), wanted.len()));
        }
        for (k, (g, w)) in got.iter().zip(&wanted).enumerate() {
            if let Err(why) = compare(g, w, case.rtol, case.atol) {
                return Verdict::Wrong(format!("output {k}: {why}"));
            }
        }
    }
    Verdict::Pass
}

fn first_line(e: &Error) -> String {
    e.to_string().lines().next().unwrap_or_default().to_string()
}

#[test]
fn onnx_conformance_cases_give_no_wrong_value() {
    let cases = cases();
    let mut left_out: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_op: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut bad = Vec::new();
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut passing = 0;
    for case in &cases {
        if !case.reason.is_empty() {
            *left_out.entry(&case.reason).or_default() += 1;
            continue;
        }
        let verdict = catch_unwind(AssertUnwindSafe(|| run(case))).unwrap_or(Verdict::Panicked);
        let apart = (AS_ONNXRUNTIME.iter().map(|c| ("as onnxruntime", c)))
            .chain(
                INEXACT_EXPECTED
                    .iter()
                    .map(|c| ("inexact expected values", c)),
            )
            .find(|(_, (n, _))| *n == case.name);
        if let Some((list, (_, why))) = apart {
            assert!(
                matches!(verdict, Verdict::Wrong(_)),
                "{} now agrees with the expected values: take it off its list",
                case.name
            );
            println!("{list}: {}: {why}", case.name);
            continue;
        }
        let column = match &verdict {
            Verdict::Pass => "pass",
            Verdict::Refused(_) => "refused",
            Verdict::Failed(_) => "failed",
            Verdict::Wrong(_) | Verdict::Panicked => "WRONG",
        };
        passing += usize::from(verdict == Verdict::Pass);
        *per_op
            .entry(case.op.clone())
            .or_default()
            .entry(column)
            .or_default() += 1;
        if let Verdict::Failed(why) = &verdict {
            if std::env::var_os("CONFORMANCE_FAILED").is_some() {
                println!("FAILED {}: {why}", case.name);
            }
        }
        if let Verdict::Refused(why) | Verdict::Failed(why) = &verdict {
            let why = why.rsplit("): ").next().unwrap_or(why).to_string();
            *reasons.entry(why).or_default() += 1;
        }
        if matches!(verdict, Verdict::Wrong(_) | Verdict::Panicked) {
            bad.push(format!("{}: {verdict:?}", case.name));
        }
    }
    let held = cases.len() - left_out.values().sum::<usize>();
    println!(
        "{} cases; {held} of values libtorch holds, {passing} pass",
        cases.len()
    );
    for (reason, n) in &left_out {
        println!("left out: {n:4}  {reason}");
    }
    println!(
        "{:24} {:>5} {:>7} {:>7} {:>5}",
        "op", "pass", "refused", "failed", "WRONG"
    );
    for (op, counts) in &per_op {
        let n = |c: &str| counts.get(c).copied().unwrap_or(0);
        println!(
            "{op:24} {:>5} {:>7} {:>7} {:>5}",
            n("pass"),
            n("refused"),
            n("failed"),
            n("WRONG")
        );
    }
    let mut reasons: Vec<(usize, String)> = reasons.into_iter().map(|(r, n)| (n, r)).collect();
    reasons.sort_unstable_by(|a, b| b.cmp(a));
    for (n, why) in reasons.iter().take(40) {
        println!("{n:4}  {why}");
    }
    assert!(
        bad.is_empty(),
        "wrong values or panics:\n{}",
        bad.join("\n")
    );
    assert!(
        passing >= PASSING,
        "{passing} cases pass, fewer than the {PASSING} that passed before"
    );
}
