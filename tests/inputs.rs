//! Hostile inputs (README, "Exit codes"): headers that promise more than the
//! file holds, shapes too large to allocate, special files, paths that are
//! not UTF-8, a closed stdout, cache entries under another key's name.
//! Each gives a clean error with the documented code, or a quiet end;
//! never a panic, a hang or an allocation the file does not back. The
//! files are built here (small, no Python).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use faultsweep::data::{DataSpec, Dataset, Subset};
use tch::{Kind, Tensor};

use crate::common::{fixtures, one_node};

fn spec(path: &Path) -> DataSpec {
    DataSpec {
        path: path.to_path_buf(),
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: 4,
        window: faultsweep::data::default_window(),
        preprocess: Default::default(),
    }
}

/// The error `Dataset::open` (then reading every batch) gives for `path`.
fn data_error(path: &Path) -> faultsweep::Error {
    let read = |d: Dataset| d.batches(4).try_for_each(|b| b.map(|_| ()));
    match Dataset::open(&spec(path)).and_then(read) {
        Ok(()) => panic!("{} was accepted", path.display()),
        Err(e) => e,
    }
}

fn assert_data_error(path: &Path, parts: &[&str]) {
    let e = data_error(path);
    let msg = e.to_string();
    assert_eq!(e.exit_code(), 4, "{msg}");
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    for p in parts {
        assert!(msg.contains(p), "lacks '{p}': {msg}");
    }
}

/// Runs the binary with a deadline: a command that blocks is a failure,
/// not a hung test.
fn faultsweep(args: &[&std::ffi::OsStr]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            panic!("faultsweep {args:?} still runs after 60 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn os(args: &[&str]) -> Vec<std::ffi::OsString> {
    args.iter().map(Into::into).collect()
}

fn run(args: &[&str]) -> Output {
    let args = os(args);
    let refs: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_os_str()).collect();
    faultsweep(&refs)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_clean_failure(o: &Output, code: i32, parts: &[&str]) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(code), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    for p in parts {
        assert!(err.contains(p), "lacks '{p}': {err}");
    }
}

// ---- IDX ----

fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
    let mut b = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        b.extend(d.to_be_bytes());
    }
    b.extend(data);
    b
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

#[test]
fn idx_headers_are_checked_against_the_bytes_the_file_holds() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: Vec<u8>| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let records = vec![7u8; 10 * 784];
    // 255 dimensions of 2: the product overflows (a stride panic before).
    let mut many = vec![0, 0, 0x08, 255];
    many.extend(std::iter::repeat_n(2u32.to_be_bytes(), 255).flatten());
    assert_data_error(&write("many-idx3-ubyte", many), &["255 dimensions"]);
    // 0xFFFFFFFF images of 28 x 28 in a file of ten (34 GB allocated before).
    let count = idx(&[u32::MAX, 28, 28], &records);
    assert_data_error(
        &write("count-idx3-ubyte", count.clone()),
        &["truncated", "4294967295 records of 784 bytes"],
    );
    assert_data_error(
        &write("count-idx3-ubyte.gz", gzip(&count)),
        &["truncated", "4294967295 records of 784 bytes"],
    );
    // One image of 100000 x 100000 (10 GB) in 7 KB.
    let wide = idx(&[1, 100_000, 100_000], &records);
    assert_data_error(&write("wide-idx3-ubyte", wide), &["truncated"]);
    // Labels: the count allocates nothing; what is there is checked.
    let labels = write("labels-idx1-ubyte.gz", gzip(&idx(&[u32::MAX], &[1, 2, 3])));
    let mut with_labels = spec(&write("ok-idx3-ubyte", idx(&[3, 28, 28], &records)));
    with_labels.labels = Some(labels.clone());
    let e = Dataset::open(&with_labels).err().expect("labels accepted");
    assert!(
        e.to_string()
            .contains("promises 4294967295 labels, the file holds 3")
            && e.exit_code() == 4,
        "{e}"
    );
    // An honest file still reads (trailing bytes are allowed, as before).
    let ok = Dataset::open(&spec(&dir.path().join("ok-idx3-ubyte"))).unwrap();
    assert_eq!(ok.len(), 3);
    assert_eq!(ok.batch(0..3).unwrap().inputs[0].size(), [3, 1, 28, 28]);
}

// ---- .npy ----

/// A .npy file of `descr` with the header's `shape` and `data`.
fn npy(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    let mut header = dict.into_bytes();
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(b' ');
    }
    header.push(b'\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header);
    b.extend(data);
    b
}

fn floats(n: usize) -> Vec<f32> {
    (0..n).map(|i| i as f32 * 0.25 - 3.0).collect()
}

fn le(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

#[test]
fn infer_reads_npy_with_the_one_checked_reader() {
    let dir = tempfile::tempdir().unwrap();
    let model = fixtures().join("errors/good.onnx");
    let model = model.to_str().unwrap();
    let out = dir.path().join("out.npy");
    let infer = |input: &Path| {
        run(&[
            "infer",
            model,
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ])
    };
    // 800,000,000 samples promised by a 25 KB file (memory grew until
    // killed before).
    let x = floats(6400 * 4);
    let huge = dir.path().join("huge.npy");
    std::fs::write(&huge, npy("<f4", "(800000000, 4)", &le(&x))).unwrap();
    assert_clean_failure(&infer(&huge), 4, &["huge.npy", "truncated", "promises"]);
    // Half the bytes of a real array (NaN rows and exit 0 before).
    let half = dir.path().join("half.npy");
    let whole = npy("<f4", "(6400, 4)", &le(&x));
    std::fs::write(&half, &whole[..whole.len() / 2]).unwrap();
    assert_clean_failure(&infer(&half), 4, &["half.npy", "truncated"]);
    // Negative and overflowing shapes.
    for (name, shape) in [("neg", "(-1, 4)"), ("wide", "(2, 4611686018427387904, 4)")] {
        let p = dir.path().join(format!("{name}.npy"));
        std::fs::write(&p, npy("<f4", shape, &le(&x))).unwrap();
        assert_clean_failure(&infer(&p), 4, &[&format!("{name}.npy")]);
    }
    // Big-endian arrays are read (swapped), equal to the little-endian one.
    let be: Vec<u8> = x[..8].iter().flat_map(|v| v.to_be_bytes()).collect();
    let (pb, pl) = (dir.path().join("be.npy"), dir.path().join("le.npy"));
    std::fs::write(&pb, npy(">f4", "(2, 4)", &be)).unwrap();
    std::fs::write(&pl, npy("<f4", "(2, 4)", &le(&x[..8]))).unwrap();
    let a = faultsweep::data::read_npy(&pb).unwrap();
    let b = faultsweep::data::read_npy(&pl).unwrap();
    assert!(a.equal(&b) && a.kind() == Kind::Float, "{a} vs {b}");
    let o = infer(&pb);
    assert!(o.status.success(), "{}", stderr(&o));
}

// ---- inspect ----

/// Protocol-buffer encoding, enough for a one-node ONNX model.
fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn message(field: u64, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3 | 2, &mut out);
    varint(body.len() as u64, &mut out);
    out.extend(body);
    out
}

fn int(field: u64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    varint(field << 3, &mut out);
    varint(v, &mut out);
    out
}

/// A Relu model whose input `x` is declared `[N, dims...]`.
fn relu_model(dims: &[u64]) -> Vec<u8> {
    let mut shape = message(1, &message(2, b"N"));
    for &d in dims {
        shape.extend(message(1, &int(1, d)));
    }
    let tensor = [int(1, 1), message(2, &shape)].concat();
    let value = |name: &[u8]| [message(1, name), message(2, &message(1, &tensor))].concat();
    let node = [
        message(1, b"x"),
        message(2, b"y"),
        message(3, b"r"),
        message(4, b"Relu"),
    ]
    .concat();
    let graph = [
        message(1, &node),
        message(2, b"g"),
        message(11, &value(b"x")),
        message(12, &value(b"y")),
    ]
    .concat();
    [int(1, 8), message(8, &int(2, 17)), message(7, &graph)].concat()
}

#[test]
fn inspect_refuses_a_declared_input_too_large_to_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.onnx");
    std::fs::write(&huge, relu_model(&[1, 1_000_000_000, 1_000_000_000])).unwrap();
    let o = run(&["inspect", huge.to_str().unwrap()]);
    assert_clean_failure(&o, 4, &["huge.onnx", "input 'x'", "bytes"]);
    // The same check in the library, for any graph.
    let mut g = one_node("Relu", 17, vec![], vec![], 1);
    g.inputs[0].dims = Some(vec![None, Some(1 << 40), Some(1 << 40)]);
    let e = faultsweep::inspect::inspect(&g).unwrap_err();
    assert!(
        e.to_string().contains("input 'x'") && e.exit_code() == 4,
        "{e}"
    );
    // A small declared input still inspects.
    let small = dir.path().join("small.onnx");
    std::fs::write(&small, relu_model(&[3, 5])).unwrap();
    let o = run(&["inspect", small.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
}

// ---- special files ----

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
}

#[test]
fn fifos_are_refused_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.onnx");
    mkfifo(&model);
    let o = run(&["inspect", model.to_str().unwrap()]);
    assert_clean_failure(&o, 3, &["model.onnx", "not a regular file (a FIFO)"]);
    // A FIFO among the images of a folder.
    let img = dir.path().join("img");
    std::fs::create_dir(&img).unwrap();
    image::GrayImage::new(4, 4).save(img.join("a.png")).unwrap();
    mkfifo(&img.join("b.png"));
    let e = data_error(&img);
    assert!(
        e.to_string().contains("b.png") && e.to_string().contains("a FIFO") && e.exit_code() == 4,
        "{e}"
    );
    // And as an .npy data set, through the CLI.
    let data = dir.path().join("x.npy");
    mkfifo(&data);
    let o = run(&[
        "golden",
        fixtures().join("errors/good.onnx").to_str().unwrap(),
        data.to_str().unwrap(),
    ]);
    assert_clean_failure(&o, 4, &["x.npy", "a FIFO"]);
    // A scenario and fault lists.
    let scenario = dir.path().join("s.yml");
    mkfifo(&scenario);
    let o = run(&[
        "faults",
        "gen",
        scenario.to_str().unwrap(),
        "--out",
        "/dev/null",
    ]);
    assert_clean_failure(&o, 8, &["s.yml", "a FIFO"]);
    for name in ["f.bin", "f.csv"] {
        let list = dir.path().join(name);
        mkfifo(&list);
        let o = run(&["faults", "show", list.to_str().unwrap()]);
        assert_clean_failure(&o, 9, &[name, "a FIFO"]);
    }
}

// ---- paths that are not UTF-8 ----

#[test]
fn run_refuses_paths_that_are_not_utf8_naming_them() {
    use std::os::unix::ffi::OsStrExt;
    let bad = std::ffi::OsStr::from_bytes(b"/tmp/m\xff.onnx");
    for flag in ["--model", "--data", "--out"] {
        let args = [
            std::ffi::OsStr::new("run"),
            std::ffi::OsStr::new("scenarios/fashion_neurons.yml"),
            std::ffi::OsStr::new(flag),
            bad,
        ];
        let o = faultsweep(&args);
        assert_clean_failure(&o, 2, &[flag, "/tmp/m\u{fffd}.onnx", "not UTF-8"]);
    }
}

// ---- a closed stdout ----

/// Runs `args` with stdout a pipe whose reader is already gone.
fn with_closed_stdout(args: &[&str]) -> Output {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_faultsweep"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .unwrap()
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let model = fixtures().join("errors/good.onnx");
    for args in [
        vec!["inspect", model.to_str().unwrap()],
        vec!["cache", "ls", "--cache-dir", cache],
    ] {
        let o = with_closed_stdout(&args);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert_eq!(stderr(&o), "", "{args:?}");
    }
}

// ---- cache entries under another key's name ----

fn golden(cache: &Path) -> Output {
    let c = cache.to_str().unwrap();
    run(&[
        "golden",
        "models/fashion_cnn.onnx",
        "data/fashion-mnist/t10k-1000-images-idx3-ubyte.gz",
        "--first",
        "20",
        "--cuts",
        "3,9",
        "--cache-dir",
        c,
    ])
}

#[test]
fn a_cache_entry_copied_under_another_key_is_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path();
    let o = golden(cache);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "fsc"))
        .collect();
    entries.sort();
    assert_eq!(entries.len(), 2);
    std::fs::copy(&entries[0], &entries[1]).unwrap();
    let c = cache.to_str().unwrap();
    let o = run(&["cache", "verify", "--cache-dir", c]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert_eq!(o.status.code(), Some(7), "{text}");
    let victim = entries[1].display().to_string();
    assert!(
        text.contains(&victim) && text.contains("another name"),
        "{text}"
    );
    // A rerun treats it as corrupt: rebuilt, with a warning, no backtrace.
    let o = golden(cache);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("rebuilding"), "{}", stderr(&o));
    assert!(run(&["cache", "verify", "--cache-dir", c]).status.success());
}

// ---- image folders ----

fn png(path: &Path, w: u32, h: u32, gray: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    if gray {
        image::GrayImage::new(w, h).save(path).unwrap();
    } else {
        image::RgbImage::new(w, h).save(path).unwrap();
    }
}

#[test]
fn image_folders_name_the_odd_image_and_find_nested_ones() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("img");
    png(&img.join("big.png"), 300, 200, false);
    for i in 0..3 {
        png(&img.join(format!("img{i}.png")), 28, 28, false);
    }
    let e = data_error(&img).to_string();
    assert!(
        e.starts_with(&img.join("big.png").display().to_string())
            && e.contains("300x200 pixels, 3 channels")
            && e.contains("img0.png")
            && e.contains("28x28 pixels")
            && e.contains("--resize"),
        "{e}"
    );
    // Images below a class folder's subfolders belong to that class.
    let nested = dir.path().join("nested");
    png(&nested.join("c0/sub/a.png"), 4, 4, false);
    png(&nested.join("c0/b.png"), 4, 4, false);
    png(&nested.join("c1/c.png"), 4, 4, false);
    let d = Dataset::open(&spec(&nested)).unwrap();
    let found: Vec<(String, Option<i64>)> = (0..d.len())
        .map(|i| (d.sample(i).source, d.sample(i).label))
        .collect();
    let at = |rel: &str| nested.join(rel).display().to_string();
    assert_eq!(
        found,
        [
            (at("c0/b.png"), Some(0)),
            (at("c0/sub/a.png"), Some(0)),
            (at("c1/c.png"), Some(1))
        ]
    );
    // A resize whose image would not fit in memory (4 TB before).
    let mut huge = spec(&nested);
    huge.preprocess.resize = Some(1_000_000);
    let e = Dataset::open(&huge)
        .and_then(|d| d.batch(0..1))
        .err()
        .unwrap();
    assert!(
        e.to_string().contains("1000000x1000000 pixels") && e.exit_code() == 4,
        "{e}"
    );
    // Images beside class folders would have no class: refused.
    png(&nested.join("loose.png"), 4, 4, false);
    assert_data_error(&nested, &["loose.png", "class folder"]);
}

#[test]
fn grayscale_images_for_a_one_channel_model_suggest_channels_gray() {
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("gray");
    for i in 0..2 {
        png(&img.join(format!("{i}.png")), 28, 28, true);
    }
    let golden = |extra: &[&str]| {
        let mut args = vec![
            "golden",
            "models/fashion_cnn.onnx",
            img.to_str().unwrap(),
            "--cache-dir",
            dir.path().to_str().unwrap(),
        ];
        args.extend(extra);
        run(&args)
    };
    assert_clean_failure(&golden(&[]), 4, &["grayscale", "--channels gray"]);
    let o = golden(&["--channels", "gray"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Labels read through the same readers (`infer --labels` uses them too).
#[test]
fn npy_labels_and_integer_arrays_still_read() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("l.npy");
    Tensor::from_slice(&[3i64, 1, 2]).write_npy(&p).unwrap();
    assert_eq!(faultsweep::data::read_labels(&p).unwrap(), [3, 1, 2]);
}

/// A .npz archive holding `member` compressed, with every header's
/// uncompressed size set to `declared` (a lie when it differs).
fn npz_declaring(member: &[u8], declared: u32) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("x.npy", options).unwrap();
    zip.write_all(member).unwrap();
    let mut bytes = zip.finish().unwrap().into_inner();
    // Local header: size at 22; central directory: size at 24.
    for (signature, offset) in [(0x0403_4b50u32, 22), (0x0201_4b50, 24)] {
        let at = (0..bytes.len() - 4)
            .find(|&i| bytes[i..i + 4] == signature.to_le_bytes())
            .unwrap();
        bytes[at + offset..at + offset + 4].copy_from_slice(&declared.to_le_bytes());
    }
    bytes
}

#[test]
fn a_compressed_npz_member_is_not_inflated_past_its_declared_size() {
    let dir = tempfile::tempdir().unwrap();
    let array = npy("<f4", "(1000, 4)", &le(&floats(4000)));
    // Honest sizes read as they are.
    let honest = dir.path().join("honest.npz");
    std::fs::write(&honest, npz_declaring(&array, array.len() as u32)).unwrap();
    let d = Dataset::open(&spec(&honest)).unwrap();
    assert_eq!(d.len(), 1000);
    // A member that inflates past what it declares is refused, named.
    let bomb = dir.path().join("bomb.npz");
    std::fs::write(&bomb, npz_declaring(&array, 512)).unwrap();
    assert_data_error(&bomb, &["x.npy", "inflates past the 512 bytes"]);
}

/// A model of two inputs of different types (int64 token ids, float32
/// scales) and two outputs: `infer` reads a .npz with an array per input
/// name and writes every output by name in its own type, equal to
/// onnxruntime's; a .npy for it, a missing array and a lossy type are
/// refused, named.
#[test]
fn infer_runs_several_inputs_of_any_type_from_a_npz() {
    let dir = tempfile::tempdir().unwrap();
    let models = fixtures().join("models");
    let model = models.join("two_inputs.onnx");
    let input = models.join("two_inputs.input.npz");
    let out = dir.path().join("out.npz");
    let o = run(&[
        "infer",
        model.to_str().unwrap(),
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected = models.join("two_inputs.expected.npz");
    let read = |p: &Path, name: &str| faultsweep::data::read_npz(p, name).unwrap();
    let (y, want) = (read(&out, "y"), read(&expected, "y"));
    assert_eq!(y.kind(), tch::Kind::Float);
    assert!(y.allclose(&want, 1e-6, 1e-6, false));
    let best = read(&out, "best");
    assert_eq!(best.kind(), tch::Kind::Int64);
    assert!(best.equal(&read(&expected, "best")));
    // The wrong forms of input, each refused naming what is wrong.
    let tokens = dir.path().join("tokens.npy");
    faultsweep::output::write_npy(&tokens, &read(&input, "tokens")).unwrap();
    let floats = dir.path().join("floats.npz");
    let as_float = [
        (
            "tokens".to_string(),
            read(&input, "tokens").to_kind(tch::Kind::Float),
        ),
        ("scale".to_string(), read(&input, "scale")),
    ];
    faultsweep::output::write_npz(&floats, &as_float).unwrap();
    let missing = dir.path().join("missing.npz");
    faultsweep::output::write_npz(&missing, &as_float[1..]).unwrap();
    for (bad, what) in [
        (&tokens, "give a .npz with one array per input name"),
        (&floats, "input 'tokens' takes int64 values; float32 values"),
        (&missing, "no array 'tokens'"),
    ] {
        let o = run(&[
            "infer",
            model.to_str().unwrap(),
            bad.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert_clean_failure(&o, 4, &[what]);
    }
}

/// A model of int64 token ids runs a campaign: the ids reach it as they
/// are (no scaling), its golden top-1 is onnxruntime's, neuron faults on
/// the embedding and the Gemm layers and weight faults on the Gemm layers
/// give the full forward pass's outcomes (`--verify`); scaling index data
/// is refused, named.
#[test]
fn a_campaign_runs_on_int64_token_ids() {
    let dir = tempfile::tempdir().unwrap();
    let (f, cache) = (fixtures(), dir.path().join("cache"));
    let yaml = |target: &str, extra: &str| {
        format!(
            "name: tokens\nseed: 5\nmodel:\n  path: {}\ndata:\n  path: {}\n  labels: {}\n  batch_size: 8\n{extra}targets:\n  target: {target}\n  layers:\n    ops: [Gather, Gemm]\nfault:\n  model: bit_flip\n  dtype: fp32\n  bits: all\ncounts:\n  injections: 400\n",
            f.join("models/tokens_classifier.onnx").display(),
            f.join("data/tokens.npy").display(),
            f.join("data/tokens_labels.npy").display(),
        )
    };
    for target in ["neuron", "weight"] {
        let sc = dir.path().join(format!("{target}.yml"));
        std::fs::write(&sc, yaml(target, "")).unwrap();
        let out = dir.path().join(target);
        let rows = crate::common::run_verified(&sc, &out, &cache, 40);
        assert!(rows.len() > 400, "{target}: {} rows", rows.len());
    }
    // The golden top-1 of every sample is onnxruntime's.
    let logits = crate::common::read_npy(&f.join("data/tokens_logits.npy"));
    let want = logits.argmax(1, false);
    let golden = crate::common::csv_rows(&dir.path().join("neuron/golden.csv"));
    let col = golden[0].iter().position(|c| c == "top1_class").unwrap();
    let got: Vec<i64> = golden[1..]
        .iter()
        .map(|r| r[col].parse().unwrap())
        .collect();
    assert_eq!(Tensor::from_slice(&got), want);
    // Index data is never scaled.
    let sc = dir.path().join("scaled.yml");
    let scaled = "  preprocess:\n    scale: 2.0\n";
    std::fs::write(&sc, yaml("neuron", scaled)).unwrap();
    let o = crate::common::run_campaign(&sc, &dir.path().join("scaled"), &[], &cache);
    assert_clean_failure(&o, 4, &["tokens.npy", "int64 indices", "preprocess.scale"]);
}

/// A model of three inputs (BERT's input_ids, attention_mask and
/// token_type_ids, padded sequences) runs neuron campaigns from the cache
/// and from the input and a weight campaign on a .npz holding one array per
/// input name (labels: an array of it), every injection equal to the full
/// forward pass and the golden top-1 onnxruntime's; a data set without an
/// array per input is refused, named.
#[test]
fn a_campaign_feeds_a_model_of_several_inputs_from_a_npz() {
    let dir = tempfile::tempdir().unwrap();
    let (f, cache) = (fixtures(), dir.path().join("cache"));
    let yaml = |target: &str, ops: &str, cached: bool, data: &Path| {
        format!(
            "name: masked\nseed: 5\nmodel:\n  path: {}\ndata:\n  path: {}\n  labels: labels\n  batch_size: 8\ntargets:\n  target: {target}\n  layers:\n    ops: {ops}\nfault:\n  model: bit_flip\n  dtype: fp32\n  bits: all\ncounts:\n  injections: 300\ncache:\n  enabled: {cached}\n",
            f.join("models/bert_tiny_masked_ts17.onnx").display(),
            data.display(),
        )
    };
    let data = f.join("data/bert_inputs.npz");
    let runs = [
        ("neuron", "[MatMul, Add, Softmax, Gemm]", true),
        ("neuron", "[MatMul, Add, Softmax, Gemm]", false),
        ("weight", "[MatMul, Gemm]", true),
    ];
    for (target, ops, cached) in runs {
        let name = format!("{target}_{cached}");
        let sc = dir.path().join(format!("{name}.yml"));
        std::fs::write(&sc, yaml(target, ops, cached, &data)).unwrap();
        let rows = crate::common::run_verified(&sc, &dir.path().join(&name), &cache, 300);
        assert_eq!(rows.len(), 301, "{name}");
    }
    let logits = crate::common::read_npy(&f.join("data/bert_tiny_masked_ts17_logits.npy"));
    let golden = crate::common::csv_rows(&dir.path().join("neuron_true/golden.csv"));
    let col = golden[0].iter().position(|c| c == "top1_class").unwrap();
    let got: Vec<i64> = (golden[1..].iter())
        .map(|r| r[col].parse().unwrap())
        .collect();
    assert_eq!(Tensor::from_slice(&got), logits.argmax(1, false));
    // A .npy holds one input only; a .npz must hold every input's array.
    let tokens = f.join("data/bert_tokens.npy");
    let partial = dir.path().join("partial.npz");
    let ids = crate::common::read_npy(&tokens);
    faultsweep::output::write_npz(&partial, &[("input_ids".to_string(), ids)]).unwrap();
    for (data, words) in [
        (
            &tokens,
            "give a .npz data set with one array per input name",
        ),
        (&partial, "no array 'attention_mask'"),
    ] {
        let sc = dir.path().join("bad.yml");
        std::fs::write(&sc, yaml("neuron", "[Gemm]", true, data)).unwrap();
        let o = crate::common::run_campaign(&sc, &dir.path().join("bad"), &[], &cache);
        assert_clean_failure(&o, 4, &[words]);
    }
}

/// A float16 model (float16 input, weights and output) takes float32 data
/// converted to float16 as read: its golden top-1 and scores are
/// onnxruntime's (to float16 rounding), and a campaign of fp16 neuron and
/// weight faults equals the full forward pass.
#[test]
fn a_float16_model_runs_a_campaign_on_float32_data() {
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures();
    let sc = dir.path().join("half.yml");
    let yaml = format!(
        "name: half\nseed: 5\nmodel:\n  path: {}\ndata:\n  path: {}\ntargets:\n  target: both\nfault:\n  model: bit_flip\n  dtype: fp16\n  bits: all\ncounts:\n  injections: 300\n",
        f.join("models/half_cnn.onnx").display(),
        f.join("data/half.npy").display(),
    );
    std::fs::write(&sc, yaml).unwrap();
    let out = dir.path().join("out");
    let rows = crate::common::run_verified(&sc, &out, &dir.path().join("cache"), 300);
    assert_eq!(rows.len(), 301);
    let logits = crate::common::read_npy(&f.join("data/half_logits.npy"));
    let golden = crate::common::csv_rows(&out.join("golden.csv"));
    let col = |name: &str| golden[0].iter().position(|c| c == name).unwrap();
    let (class, score) = (col("top1_class"), col("top1_score"));
    for (i, r) in golden[1..].iter().enumerate() {
        let want = logits.get(i as i64);
        assert_eq!(
            r[class].parse::<i64>().unwrap(),
            want.argmax(0, false).int64_value(&[])
        );
        let got: f64 = r[score].parse().unwrap();
        let max = want.max().double_value(&[]);
        assert!(
            (got - max).abs() <= 2e-3 * max.abs().max(1.0),
            "sample {i}: {got} vs {max}"
        );
    }
}
