//! Fault models, number formats, sample sizes, the portable generator and the
//! fault-list files (binary and CSV).

use std::path::Path;
use std::sync::Arc;

use faultsweep::faults::rng::Stream;
use faultsweep::faults::{
    self, corrupt, count, file, int8_scale, Fault, FaultFn, FaultList, FaultModel, Models,
    NumFormat, Samples, Scope, Site, Target,
};

fn flip(v: f32, fmt: NumFormat, bits: &[u8], scale: f32) -> f32 {
    corrupt(f64::from(v), &FaultModel::BitFlip, fmt, bits, 0, scale).unwrap() as f32
}

#[test]
fn fp32_bits_count_from_the_lsb() {
    let f = |bits: &[u8]| flip(1.0, NumFormat::Fp32, bits, 1.0);
    // 1.0 = 0x3f80_0000: sign 31, exponent 30..23 = 127, mantissa 0.
    assert_eq!(f(&[31]), -1.0);
    assert_eq!(f(&[30]), f32::INFINITY, "0x7f80_0000");
    assert_eq!(f(&[23]), 0.5, "exponent 126");
    assert_eq!(f(&[22]), 1.5, "top mantissa bit");
    assert_eq!(f(&[0]).to_bits(), 0x3f80_0001);
    assert_eq!(f(&[31, 23]), -0.5, "two bits at once");
    assert_eq!(f(&[]), 1.0);
    assert_eq!(flip(-2.0, NumFormat::Fp32, &[31], 1.0), 2.0);
}

#[test]
fn fp16_converts_flips_and_widens() {
    let f = |v: f32, bits: &[u8]| flip(v, NumFormat::Fp16, bits, 1.0);
    // 1.0 = 0x3c00: sign 15, exponent 14..10 = 15, mantissa 9..0.
    assert_eq!(f(1.0, &[15]), -1.0);
    assert_eq!(f(1.0, &[14]), f32::INFINITY, "0x7c00");
    assert_eq!(f(1.0, &[10]), 0.5);
    assert_eq!(f(1.0, &[9]), 1.5);
    assert_eq!(f(1.0, &[0]), 1.0 + 1.0 / 1024.0);
    // 0.1 rounds to 0x2e66 = 0.0999755859375 before the flip.
    assert_eq!(f(0.1, &[15]), -0.099_975_586);
    assert_eq!(NumFormat::Fp16.round(0.1, 1.0), 0.099_975_585_937_5);
}

#[test]
fn bf16_converts_flips_and_widens() {
    let f = |v: f32, bits: &[u8]| flip(v, NumFormat::Bf16, bits, 1.0);
    // 1.0 = 0x3f80: sign 15, exponent 14..7 = 127, mantissa 6..0.
    assert_eq!(f(1.0, &[15]), -1.0);
    assert_eq!(f(1.0, &[14]), f32::INFINITY, "0x7f80");
    assert_eq!(f(1.0, &[7]), 0.5);
    assert_eq!(f(1.0, &[6]), 1.5);
    assert_eq!(f(1.0, &[0]), 1.0 + 1.0 / 128.0);
    // 1 + 2^-9 rounds to 1.0 in bf16 (7 mantissa bits) before the flip.
    assert_eq!(f(1.0 + 1.0 / 512.0, &[15]), -1.0);
}

#[test]
fn int8_quantizes_symmetrically_flips_the_byte_and_dequantizes() {
    let s = int8_scale(-2.54, 1.27);
    assert_eq!(s, 2.54 / 127.0, "max |range| / 127");
    let f = |v: f32, bits: &[u8]| flip(v, NumFormat::Int8, bits, s);
    // 1.0 / 0.02 = 50 = 0b0011_0010.
    assert_eq!(
        f(1.0, &[7]),
        -78.0 * s,
        "50 ^ 0x80 = -78 (two's complement)"
    );
    assert_eq!(f(1.0, &[0]), 51.0 * s);
    assert_eq!(f(1.0, &[6]), 114.0 * s);
    assert_eq!(f(1.0, &[1]), 48.0 * s, "bit 1 of 50 is set");
    assert!((f(1.0, &[7]) + 1.56).abs() < 1e-6);
    // -0.02 -> q = -1 = 0xff; clearing the sign bit gives 127.
    assert_eq!(f(-0.02, &[7]), 127.0 * s);
    // Values beyond the range saturate at -128 / 127.
    assert_eq!(NumFormat::Int8.round(100.0, s), f64::from(127.0 * s));
    assert_eq!(NumFormat::Int8.round(-100.0, s), f64::from(-128.0 * s));
    // Round half to even, as torch.quantize_per_tensor.
    assert_eq!(NumFormat::Int8.round(2.5, 1.0), 2.0);
    assert_eq!(int8_scale(0.0, 0.0), 1.0 / 127.0, "an all-zero range");
}

#[test]
fn stuck_at_and_value_models() {
    let m = |model: FaultModel, v: f32, bits: &[u8]| {
        corrupt(f64::from(v), &model, NumFormat::Fp32, bits, 0, 1.0).unwrap() as f32
    };
    assert_eq!(
        m(FaultModel::StuckAt0, 1.0, &[30]),
        1.0,
        "bit 30 of 1.0 is already 0"
    );
    assert_eq!(m(FaultModel::StuckAt1, 1.0, &[30]), f32::INFINITY);
    assert_eq!(
        m(FaultModel::StuckAt0, 1.0, &[29]),
        2f32.powi(-64),
        "exponent 127 -> 63"
    );
    assert_eq!(m(FaultModel::StuckAt1, 1.0, &[31]), -1.0);
    assert_eq!(m(FaultModel::StuckAt0, -1.0, &[31]), 1.0);
    assert_eq!(m(FaultModel::Zero, 3.5, &[]), 0.0);
    assert_eq!(m(FaultModel::Constant(0.1), 3.5, &[]), 0.1);
    let fp16 = corrupt(
        3.5,
        &FaultModel::Constant(0.1),
        NumFormat::Fp16,
        &[],
        0,
        1.0,
    );
    assert_eq!(
        fp16,
        Some(f64::from(0.099_975_586f32)),
        "the constant as stored in fp16"
    );
    let int8 = corrupt(
        3.5,
        &FaultModel::Constant(0.1),
        NumFormat::Int8,
        &[],
        0,
        0.02,
    );
    assert_eq!(int8, Some(f64::from(5.0f32 * 0.02)));
    let random = |draw: u64| {
        corrupt(
            0.0,
            &FaultModel::RandomValue {
                min: -2.0,
                max: 6.0,
            },
            NumFormat::Fp32,
            &[],
            draw,
            1.0,
        )
        .unwrap()
    };
    assert_eq!(random(0), -2.0);
    assert_eq!(random(u64::MAX), 6.0);
    let mid = random(1 << 63); // 24-bit draw 2^23 / (2^24 - 1), just above 1/2
    assert!(mid > 2.0 && mid < 2.000_001, "{mid}");
    assert_eq!(
        corrupt(
            1.0,
            &FaultModel::Custom("x".into()),
            NumFormat::Fp32,
            &[],
            0,
            1.0
        ),
        None
    );
}

#[test]
fn bit_checks_follow_the_format_width() {
    use faultsweep::faults::check_bits;
    assert!(check_bits(&FaultModel::BitFlip, NumFormat::Fp32, &[31]).is_ok());
    let e = check_bits(&FaultModel::BitFlip, NumFormat::Fp32, &[32]).unwrap_err();
    assert!(e.contains("bit 32") && e.contains("fp32"), "{e}");
    assert!(check_bits(&FaultModel::BitFlip, NumFormat::Int8, &[8])
        .unwrap_err()
        .contains("int8"));
    assert!(check_bits(&FaultModel::BitFlip, NumFormat::Fp16, &[16]).is_err());
    assert!(check_bits(&FaultModel::BitFlip, NumFormat::Bf16, &[3, 3]).is_err());
    assert!(check_bits(&FaultModel::BitFlip, NumFormat::Fp32, &[]).is_err());
    assert!(check_bits(&FaultModel::Zero, NumFormat::Fp32, &[1]).is_err());
}

struct Negate;
impl FaultFn for Negate {
    fn apply(&self, original: f32, site: &Site<'_>) -> f32 {
        -original * site.fault.coord.len() as f32
    }
}

#[test]
fn custom_models_plug_in_by_name() {
    let mut models = Models::default();
    models.register("negate", Arc::new(Negate));
    let mut fault = sample_fault(0);
    fault.model = FaultModel::Custom("negate".into());
    fault.bits.clear();
    let site = Site {
        fault: &fault,
        int8_scale: 1.0,
    };
    assert_eq!(models.apply(2.0, &site), Some(-6.0));
    fault.model = FaultModel::Custom("unknown".into());
    assert_eq!(
        models.apply(
            2.0,
            &Site {
                fault: &fault,
                int8_scale: 1.0
            }
        ),
        None
    );
    fault.model = FaultModel::BitFlip;
    fault.bits = vec![15]; // the sign of the fault's fp16
    assert_eq!(
        models.apply(
            2.0,
            &Site {
                fault: &fault,
                int8_scale: 1.0
            }
        ),
        Some(-2.0)
    );
}

#[test]
fn normal_quantiles() {
    for (c, t) in [
        (0.90, 1.644_853_6),
        (0.95, 1.959_964_0),
        (0.99, 2.575_829_3),
        (0.999, 3.290_526_7),
    ] {
        assert!(
            (count::z_two_sided(c) - t).abs() < 1e-6,
            "{c}: {}",
            count::z_two_sided(c)
        );
    }
    assert!((count::normal_quantile(0.01) + 2.326_347_9).abs() < 1e-6);
}

#[test]
fn leveugle_sample_sizes_match_worked_values() {
    // Worked values of n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p))), p = 0.5;
    // the first three are the classic Krejcie-Morgan table entries.
    for (population, margin, confidence, n) in [
        (100u128, 0.05, 0.95, 80u64),
        (1_000, 0.05, 0.95, 278),
        (10_000, 0.05, 0.95, 370),
        (1_000_000_000_000, 0.01, 0.95, 9604),
        (1_000_000_000_000, 0.01, 0.99, 16588),
        (144, 0.05, 0.95, 105),
        (1, 0.05, 0.95, 1),
        (0, 0.05, 0.95, 0),
    ] {
        let s = count::leveugle(population, margin, confidence, 0.5);
        assert_eq!(s.n, n, "N = {population}, e = {margin}, c = {confidence}");
        assert!(
            s.margin <= margin + 1e-12,
            "achieved margin {} > {margin}",
            s.margin
        );
    }
    let s = count::leveugle(10_000, 0.05, 0.95, 0.5);
    assert!((s.margin - 0.049_97).abs() < 1e-4, "{}", s.margin);
    // A smaller p (fewer expected failures) needs fewer samples.
    assert!(count::leveugle(10_000, 0.05, 0.95, 0.1).n < 370);
}

#[test]
fn the_stream_is_pinned() {
    let mut a = Stream::new(42, 0);
    let words: Vec<u64> = (0..3).map(|_| a.word()).collect();
    let mut b = Stream::new(42, 0);
    assert_eq!(words, (0..3).map(|_| b.word()).collect::<Vec<_>>());
    assert_ne!(Stream::new(42, 1).word(), words[0], "streams differ");
    assert_ne!(Stream::new(43, 0).word(), words[0], "seeds differ");
    let mut c = Stream::new(7, 0);
    let draws: Vec<u64> = (0..5).map(|_| c.below(1000)).collect();
    assert_eq!(
        draws, PINNED_BELOW,
        "ChaCha8 + splitmix seeding + Lemire must not change"
    );
}

const PINNED_BELOW: [u64; 5] = [400, 774, 507, 67, 534];

#[test]
fn weighted_choice_follows_the_weights() {
    let mut rng = Stream::new(1, 0);
    let cum = [10u64, 40, 100];
    let mut hits = [0u32; 3];
    let n = 200_000;
    for _ in 0..n {
        hits[rng.weighted(&cum)] += 1;
    }
    for (h, want) in hits.iter().zip([0.1, 0.3, 0.6]) {
        let got = f64::from(*h) / f64::from(n);
        assert!((got - want).abs() < 0.005, "{hits:?}");
    }
    let picked = rng.choose(&[1u8, 2, 3, 4], 3);
    assert_eq!(picked.len(), 3);
    assert!(picked.iter().all(|x| (1..=4).contains(x)));
    let mut sorted = picked.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), 3, "distinct");
}

#[test]
fn fault_count_distributions_have_the_right_means() {
    let mut rng = Stream::new(9, 0);
    let n = 20_000;
    let mean = |f: &mut dyn FnMut() -> u64| (0..n).map(|_| f()).sum::<u64>() as f64 / n as f64;
    // Zero-truncated Poisson(2): E = 2 / (1 - e^-2) = 2.3130.
    let m = mean(&mut || rng.poisson_nonzero(2.0));
    assert!((m - 2.313).abs() < 0.03, "{m}");
    // 10000 elements with p = 0.01: about 100 faulty, all distinct, in range.
    let mut rng = Stream::new(9, 1);
    let m = mean(&mut || {
        let pos = rng.bernoulli_positions(10_000, 0.01);
        assert!(pos.windows(2).all(|w| w[0] < w[1]) && pos[pos.len() - 1] < 10_000);
        pos.len() as u64
    });
    assert!((m - 100.0).abs() < 1.0, "{m}");
    // A tiny p still gives at least one.
    let mut rng = Stream::new(9, 2);
    assert!((0..100).all(|_| !rng.bernoulli_positions(50, 1e-9).is_empty()));
}

/// A fault with every field set to something non-default.
fn sample_fault(id: u64) -> Fault {
    Fault {
        fault_id: id,
        injection: id / 2,
        sample: Samples::One(id * 3),
        target: Target::Neuron,
        node: 2,
        layer: "conv, \"first\"".into(),
        tensor: "conv_out".into(),
        coord: vec![3, 1, 4],
        model: FaultModel::BitFlip,
        dtype: NumFormat::Fp16,
        bits: vec![14, 3],
        scope: Scope::Transient,
        sweep: 1,
        draw: u64::MAX - id,
    }
}

/// Rows covering every variant, with floats that need exact printing.
fn varied_list() -> FaultList {
    let mut faults = vec![];
    let models = [
        FaultModel::BitFlip,
        FaultModel::StuckAt0,
        FaultModel::StuckAt1,
        FaultModel::RandomValue {
            min: -1e-40,
            max: 3.402_823_5e38,
        },
        FaultModel::Zero,
        FaultModel::Constant(0.1),
        FaultModel::Constant(f32::NEG_INFINITY),
        FaultModel::Custom("mine".into()),
    ];
    let samples = [
        Samples::One(7),
        Samples::Range { start: 0, end: 32 },
        Samples::All,
    ];
    for (i, model) in models.into_iter().enumerate() {
        let mut f = sample_fault(i as u64);
        f.bits = if model.uses_bits() {
            vec![15, 0]
        } else {
            vec![]
        };
        f.model = model;
        f.sample = samples[i % 3];
        f.scope = Scope::ALL[i % 4];
        f.target = if i % 2 == 0 {
            Target::Neuron
        } else {
            Target::Weight
        };
        f.coord = (0..i as u32).collect();
        faults.push(f);
    }
    FaultList {
        meta: Default::default(),
        faults,
    }
}

#[test]
fn binary_and_csv_round_trip_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let list = varied_list();
    let bin = dir.path().join("list.bin");
    let csv = dir.path().join("list.csv");
    faults::save(&list, &bin).unwrap();
    assert_eq!(faults::load(&bin, None, None).unwrap(), list);
    faults::save(&list, &csv).unwrap();
    let back = faults::load(&csv, None, None).unwrap();
    assert_eq!(back.faults, list.faults);
    for (a, b) in back.faults.iter().zip(&list.faults) {
        if let (FaultModel::Constant(x), FaultModel::Constant(y)) = (&a.model, &b.model) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
    }
    // CSV -> binary -> CSV gives the same text.
    let bin2 = dir.path().join("again.bin");
    let csv2 = dir.path().join("again.csv");
    faults::save(&back, &bin2).unwrap();
    faults::save(&faults::load(&bin2, None, None).unwrap(), &csv2).unwrap();
    assert_eq!(std::fs::read(&csv).unwrap(), std::fs::read(&csv2).unwrap());
}

#[test]
fn csv_has_the_documented_columns_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("l.csv");
    let mut list = varied_list();
    list.faults.truncate(6);
    faults::save(&list, &path).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "fault_id,sample,target,layer,tensor,coord,fault_model,dtype,bit,value,injection,scope,sweep,node,draw"
    );
    assert_eq!(lines.next().unwrap(), "0,7,neuron,\"conv, \"\"first\"\"\",conv_out,,bit_flip,fp16,\"15,0\",-,0,transient,1,2,18446744073709551615");
    assert!(
        text.contains(",\"0,1,2\",random_value,fp16,-,\"[-1e-40,3.4028235e38]\","),
        "{text}"
    );
    assert!(text.contains(",constant,fp16,-,0.1,"), "{text}");
    assert!(text.contains(",0..32,weight,"), "{text}");
}

fn header_error(bytes: &[u8]) -> String {
    file::decode(bytes, Path::new("x.bin"))
        .unwrap_err()
        .to_string()
}

#[test]
fn binary_header_mismatches_name_the_field() {
    let good = file::encode(&varied_list());
    let mut bad = good.clone();
    bad[0] = b'X';
    assert!(
        header_error(&bad).contains("magic"),
        "{}",
        header_error(&bad)
    );
    let mut bad = good.clone();
    bad[8] = 2;
    assert!(header_error(&bad).contains("format version: file has 2, this build reads 1"));
    let mut bad = good.clone();
    bad[12] = 99;
    assert!(header_error(&bad).contains("row count: header says 99, payload holds 8"));
    assert!(header_error(&good[..good.len() - 3]).contains("payload"));
    assert!(header_error(&good[..5]).contains("header"));
    let mut long = good.clone();
    long.push(0);
    assert!(header_error(&long).contains("payload"));
    let e = file::decode(&good[..good.len() - 3], Path::new("x.bin")).unwrap_err();
    assert_eq!(e.exit_code(), 9);
}

#[test]
fn a_listed_fault_the_model_cannot_take_is_a_fault_list_error() {
    // A CSV list naming an unregistered custom model: exit 9, naming the
    // fault, before any injection runs.
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let sc = crate::common::root().join("scenarios/fashion_neurons.yml");
    let (bin, csv) = (dir.path().join("l.bin"), dir.path().join("l.csv"));
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    for args in [
        vec![
            "faults".into(),
            "gen".into(),
            s(&sc),
            "--out".into(),
            s(&bin),
        ],
        vec!["faults".into(), "convert".into(), s(&bin), s(&csv)],
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(crate::common::faultsweep(&args, &cache).status.success());
    }
    let text = std::fs::read_to_string(&csv).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| match i {
            5 => l.replacen(",bit_flip,", ",custom:nobody,", 1),
            _ => l.to_string(),
        })
        .collect();
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, edited.join("\n") + "\n").unwrap();
    let out = dir.path().join("out");
    let r = crate::common::faultsweep(
        &["run", &s(&sc), "--faults", &s(&bad), "--out", &s(&out)],
        &cache,
    );
    let err = String::from_utf8_lossy(&r.stderr);
    assert_eq!(r.status.code(), Some(9), "{err}");
    assert!(
        err.contains("fault 4") && err.contains("'nobody' is not registered"),
        "{err}"
    );
    assert!(
        !out.join("injections.csv").exists()
            || std::fs::read_to_string(out.join("injections.csv"))
                .unwrap()
                .lines()
                .count()
                <= 1
    );
}
