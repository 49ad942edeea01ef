//! The .npy reader on arbitrary bytes, written to a file as `x.npy` and
//! read as a data set (every batch), as an `infer` input and as labels:
//! any input must give samples or an `Error`, never a panic, a hang or an
//! allocation the file does not back.
#![no_main]

use faultsweep::data::{self, DataSpec, Dataset, Subset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let dir = std::env::temp_dir().join(format!("faultsweep-fuzz-npy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("x.npy");
    std::fs::write(&path, bytes).expect("the input is written");
    let spec = DataSpec {
        path: path.clone(),
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
    let _ = data::read_npy(&path);
    let _ = data::read_labels(&path);
});
