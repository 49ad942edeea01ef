//! The IDX reader on arbitrary bytes: the first byte chooses raw or
//! gzipped (compressed here, so the header logic behind the decoder is
//! what gets explored) and images or labels; the rest is the file. Any
//! input must give samples or an `Error`, never a panic, a hang or an
//! allocation the file does not back.
#![no_main]

use std::io::Write;

use faultsweep::data::{self, DataSpec, Dataset, Subset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Some((&mode, body)) = bytes.split_first() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("faultsweep-fuzz-idx-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let (path, file) = if mode & 1 == 1 {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(body).expect("gzip in memory");
        (
            dir.join("x-idx3-ubyte.gz"),
            gz.finish().expect("gzip in memory"),
        )
    } else {
        (dir.join("x-idx3-ubyte"), body.to_vec())
    };
    std::fs::write(&path, file).expect("the input is written");
    if mode & 2 == 2 {
        let _ = data::read_labels(&path);
        return;
    }
    let spec = DataSpec {
        path,
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: 3,
        window: data::default_window(),
        preprocess: Default::default(),
    };
    if let Ok(set) = Dataset::open(&spec) {
        for batch in set.batches(3) {
            if batch.is_err() {
                break;
            }
        }
    }
});
