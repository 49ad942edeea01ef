//! The image-folder reader on arbitrary bytes: the first three bytes choose
//! the preprocessing (channels, resize, center crop), the extension and
//! whether a 2 x 2 RGB image sits beside the file; the rest is the image.
//! Any input must give samples or an `Error`, never a panic, a hang or an
//! unbounded allocation.
#![no_main]

use faultsweep::data::{self, Channels, DataSpec, Dataset, Preprocess, Subset};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let [a, b, c, image @ ..] = bytes else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("faultsweep-fuzz-images-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let name = if a & 16 == 16 { "a.jpg" } else { "a.png" };
    std::fs::write(dir.join(name), image).expect("the input is written");
    if a & 32 == 32 {
        image::RgbImage::new(2, 2)
            .save(dir.join("b.png"))
            .expect("a small PNG");
    }
    let channels = [Channels::Auto, Channels::Rgb, Channels::Bgr, Channels::Gray];
    let preprocess = Preprocess {
        resize: (a & 4 == 4).then_some(u32::from(*b)),
        center_crop: (a & 8 == 8).then_some(u32::from(*c)),
        channels: channels[usize::from(a & 3)],
        ..Preprocess::default()
    };
    let spec = DataSpec {
        path: dir.clone(),
        labels: None,
        array: None,
        subset: Subset::All,
        correct_only: false,
        batch_size: 2,
        window: data::default_window(),
        preprocess,
    };
    if let Ok(set) = Dataset::open(&spec) {
        for batch in set.batches(2) {
            if batch.is_err() {
                break;
            }
        }
    }
});
