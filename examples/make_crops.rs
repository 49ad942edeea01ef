//! Builds the cache benchmark's data set: random 224x224 crops of photos,
//! ImageNet-normalized, as one float32 `.npy` of shape [N, 3, 224, 224].
//!
//! Each crop takes a random area of 50% to 100% of its photo with an aspect
//! ratio between 3/4 and 4/3 (torchvision's RandomResizedCrop with scale
//! 0.5-1), resized bilinearly to 224x224, and is flipped left-right with
//! probability 1/2. The seed is fixed, so the file is the same on every
//! machine.
//!
//! ```text
//! cargo run --release --example make_crops -- OUT.npy [N] [PHOTO_DIR...]
//! ```
//! Defaults: 200 crops of the photos in ../shared/images and
//! ../shared/detection/images.

use std::io::Write;
use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SIDE: u32 = 224;
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
const STD: [f32; 3] = [0.229, 0.224, 0.225];
const SEED: u64 = 20261206;

/// Any error of the example, printed by `main`.
type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let out = PathBuf::from(
        args.first()
            .ok_or("usage: make_crops OUT.npy [N] [PHOTO_DIR...]")?,
    );
    let n: usize = args.get(1).map_or(Ok(200), |s| s.parse())?;
    let dirs: Vec<PathBuf> = match args.len() > 2 {
        true => args[2..].iter().map(PathBuf::from).collect(),
        false => ["../shared/images", "../shared/detection/images"]
            .map(PathBuf::from)
            .to_vec(),
    };
    let photos = load_photos(&dirs)?;
    if photos.is_empty() {
        return Err(format!("no photos in {dirs:?}").into());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let mut values = Vec::with_capacity(n * 3 * (SIDE * SIDE) as usize);
    for i in 0..n {
        let crop = random_crop(&photos[i % photos.len()], &mut rng);
        values.extend(normalized(&crop));
    }
    write_npy(&out, &[n, 3, SIDE as usize, SIDE as usize], &values)?;
    println!("{}: {n} crops of {} photos", out.display(), photos.len());
    Ok(())
}

/// Every .png and .jpg of `dirs`, by name, as RGB.
fn load_photos(dirs: &[PathBuf]) -> Result<Vec<RgbImage>> {
    let mut paths = Vec::new();
    for dir in dirs {
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
            if ["png", "jpg", "jpeg"].contains(&ext.to_ascii_lowercase().as_str()) {
                paths.push(path);
            }
        }
    }
    paths.sort();
    paths
        .iter()
        .map(|p| Ok(image::open(p)?.to_rgb8()))
        .collect()
}

/// A RandomResizedCrop (area 0.5 to 1, aspect 3/4 to 4/3, ten tries, then
/// the central square) with a random left-right flip.
fn random_crop(photo: &RgbImage, rng: &mut ChaCha8Rng) -> RgbImage {
    let (w, h) = (photo.width() as f64, photo.height() as f64);
    let mut rect = None;
    for _ in 0..10 {
        let area = w * h * rng.random_range(0.5..1.0);
        let aspect = rng.random_range((3f64 / 4.0).ln()..(4f64 / 3.0).ln()).exp();
        let (cw, ch) = ((area * aspect).sqrt(), (area / aspect).sqrt());
        if cw <= w && ch <= h {
            let x = rng.random_range(0.0..=w - cw);
            let y = rng.random_range(0.0..=h - ch);
            rect = Some((x as u32, y as u32, cw as u32, ch as u32));
            break;
        }
    }
    let side = w.min(h);
    let (x, y, cw, ch) = rect.unwrap_or((
        ((w - side) / 2.0) as u32,
        ((h - side) / 2.0) as u32,
        side as u32,
        side as u32,
    ));
    let cropped = imageops::crop_imm(photo, x, y, cw.max(1), ch.max(1)).to_image();
    let mut resized = imageops::resize(&cropped, SIDE, SIDE, FilterType::Triangle);
    if rng.random_bool(0.5) {
        imageops::flip_horizontal_in_place(&mut resized);
    }
    resized
}

/// Channel-major floats, scaled to 0..1 and ImageNet-normalized.
fn normalized(img: &RgbImage) -> Vec<f32> {
    let mut out = Vec::with_capacity(3 * img.len());
    for c in 0..3 {
        out.extend(
            img.pixels()
                .map(|p| (p[c] as f32 / 255.0 - MEAN[c]) / STD[c]),
        );
    }
    out
}

/// A version 1.0 `.npy` of little-endian float32.
fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
    let mut header = format!(
        "{{'descr': '<f4', 'fortran_order': False, 'shape': ({},), }}",
        dims.join(", ")
    );
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    f.write_all(b"\x93NUMPY\x01\x00")?;
    f.write_all(&(header.len() as u16).to_le_bytes())?;
    f.write_all(header.as_bytes())?;
    for v in values {
        f.write_all(&v.to_le_bytes())?;
    }
    f.flush()?;
    Ok(())
}
