//! A folder of images (PNG, JPEG), in name order. Class subfolders give
//! labels: when every subfolder's name is a non-negative integer (ImageNet's
//! `285/`, `967/`), that integer is its class; otherwise the i-th subfolder
//! in name order is class i. A class folder's images are found at any depth
//! below it (in path order); images beside class folders are refused (they
//! would have no class). Images decode one batch at a time; every image is
//! a regular file (a FIFO named `x.png` would block the read forever).

use std::path::{Path, PathBuf};

use image::imageops::{self, FilterType};
use image::DynamicImage;
use tch::Tensor;

use super::{Channels, Preprocess};
use crate::error::{Error, Result};

pub struct ImageFolder {
    pub files: Vec<PathBuf>,
    /// Class index per file, when the folder has class subfolders.
    pub labels: Option<Vec<i64>>,
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
}

fn sorted_entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    Ok(v)
}

/// The class of each class folder (in name order): the number each is
/// named by when all are, else its position.
fn class_labels(classes: &[&PathBuf]) -> Result<Vec<i64>> {
    let names: Vec<&str> = classes
        .iter()
        .map(|p| p.file_name().and_then(|n| n.to_str()).unwrap_or_default())
        .collect();
    let numeric = |n: &&str| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    if !names.iter().all(numeric) {
        return Ok((0..classes.len() as i64).collect());
    }
    classes
        .iter()
        .zip(names)
        .map(|(path, name)| {
            name.parse().map_err(|_| Error::Data {
                path: path.to_path_buf(),
                msg: format!("class folder {name} is too large a class index"),
            })
        })
        .collect()
}

/// Folders below a class folder followed, at most: deeper is a loop of
/// symbolic links, or not a data set.
const MAX_DEPTH: usize = 16;

/// The images at any depth below `dir`, in path order; each a regular file.
fn images_under(dir: &Path, depth: usize) -> Result<Vec<PathBuf>> {
    if depth > MAX_DEPTH {
        return Err(Error::Data {
            path: dir.to_path_buf(),
            msg: format!("folders nest deeper than {MAX_DEPTH} levels (a loop of links?)"),
        });
    }
    let mut files = Vec::new();
    for p in sorted_entries(dir)? {
        if p.is_dir() {
            files.extend(images_under(&p, depth + 1)?);
        } else if is_image(&p) {
            regular(&p)?;
            files.push(p);
        }
    }
    Ok(files)
}

fn regular(path: &Path) -> Result<()> {
    crate::files::regular(path).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        msg: e.to_string(),
    })
}

impl ImageFolder {
    pub fn open(dir: &Path) -> Result<Self> {
        let entries = sorted_entries(dir)?;
        let classes: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        let loose: Vec<&PathBuf> = entries.iter().filter(|p| is_image(p)).collect();
        let (files, labels) = if classes.is_empty() {
            for p in &loose {
                regular(p)?;
            }
            (loose.into_iter().cloned().collect(), None)
        } else if let Some(first) = loose.first() {
            return Err(Error::Data {
                path: dir.to_path_buf(),
                msg: format!(
                    "holds both class folders and images ({} and {} more) that would have no class; move the images into a class folder",
                    first.display(),
                    loose.len() - 1
                ),
            });
        } else {
            let mut files = Vec::new();
            let mut labels = Vec::new();
            for (sub, class) in classes.iter().zip(class_labels(&classes)?) {
                for f in images_under(sub, 1)? {
                    files.push(f);
                    labels.push(class);
                }
            }
            (files, Some(labels))
        };
        if files.is_empty() {
            return Err(Error::Data {
                path: dir.to_path_buf(),
                msg: "no PNG or JPEG images found".into(),
            });
        }
        Ok(ImageFolder { files, labels })
    }

    /// Decodes, resizes and crops the images `indices` into a u8 tensor
    /// N x C x H x W.
    pub fn read(&self, indices: &[usize], pre: &Preprocess) -> Result<Tensor> {
        let batch = indices
            .iter()
            .map(|&i| {
                let path = &self.files[i];
                let img = geometry(decode(path)?, pre).map_err(|msg| Error::Data {
                    path: path.clone(),
                    msg,
                })?;
                Ok(to_tensor(img, pre.channels))
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let paths: Vec<&PathBuf> = indices.iter().map(|&i| &self.files[i]).collect();
        same_size(&paths, &batch)?;
        Ok(Tensor::stack(&batch, 0))
    }

    /// Whether the first image is stored without colour (gray, with or
    /// without alpha): `auto` reads it as RGB.
    pub fn first_is_gray(&self) -> bool {
        self.files
            .first()
            .and_then(|p| image::ImageReader::open(p).ok()?.with_guessed_format().ok())
            .and_then(|r| r.into_decoder().ok())
            .is_some_and(|d| !image::ImageDecoder::color_type(&d).has_color())
    }
}

fn decode(path: &Path) -> Result<DynamicImage> {
    regular(path)?;
    image::open(path).map_err(|e| Error::Data {
        path: path.to_path_buf(),
        msg: format!("cannot decode image: {e}"),
    })
}

/// One size for the whole batch; otherwise the error names the first image
/// whose size differs from most of the batch's, and one of those.
fn same_size(paths: &[&PathBuf], batch: &[Tensor]) -> Result<()> {
    let sizes: Vec<Vec<i64>> = batch.iter().map(Tensor::size).collect();
    let count = |s: &Vec<i64>| sizes.iter().filter(|t| *t == s).count();
    let Some(common) = sizes.iter().max_by_key(|s| count(s)) else {
        return Ok(());
    };
    let Some(odd) = sizes.iter().position(|s| s != common) else {
        return Ok(());
    };
    let like = sizes.iter().position(|s| s == common).unwrap_or_default();
    Err(Error::Data {
        path: paths[odd].clone(),
        msg: format!(
            "is {} after preprocessing, but {} (like most of its batch) is {}; images of one batch must share a size: set --resize and --center-crop (preprocess.resize and center_crop)",
            describe(&sizes[odd]),
            paths[like].display(),
            describe(common)
        ),
    })
}

/// `[3, 200, 300]` -> "300x200 pixels, 3 channels".
fn describe(chw: &[i64]) -> String {
    match chw {
        [c, h, w] => format!(
            "{w}x{h} pixels, {c} channel{}",
            if *c == 1 { "" } else { "s" }
        ),
        other => format!("{other:?}"),
    }
}

/// Most pixels a resized image may have (a 16384 x 16384 square): a long
/// thin image resized by its short side, or a huge `--resize`, would
/// otherwise allocate without bound.
const MAX_PIXELS: u64 = 1 << 28;

/// Where an image lands in the model input: resized to `resized` (width,
/// height), then the `crop` (left, top, width, height) of that kept.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Placement {
    pub resized: Option<(u32, u32)>,
    pub crop: Option<(u32, u32, u32, u32)>,
}

impl Placement {
    /// The box `[x1, y1, x2, y2]` in the pixels of a `w` x `h` original in
    /// input pixels: the pixel edges scale with the resize (what
    /// `resize_exact` maps), the crop shifts them, and the box is clipped
    /// to the input; `None` when nothing of it is left.
    pub fn place(&self, (w, h): (u32, u32), b: [f64; 4]) -> Option<[f32; 4]> {
        let (rw, rh) = self.resized.unwrap_or((w, h));
        let (sx, sy) = (f64::from(rw) / f64::from(w), f64::from(rh) / f64::from(h));
        let (left, top, cw, ch) = self.crop.unwrap_or((0, 0, rw, rh));
        let x = |v: f64| (v * sx - f64::from(left)).clamp(0.0, f64::from(cw)) as f32;
        let y = |v: f64| (v * sy - f64::from(top)).clamp(0.0, f64::from(ch)) as f32;
        let placed = [x(b[0]), y(b[1]), x(b[2]), y(b[3])];
        (placed[2] > placed[0] && placed[3] > placed[1]).then_some(placed)
    }
}

/// The placement of a `w` x `h` image: `resize_to` squashes it, `resize`
/// scales its short side (keeping the aspect ratio), then `center_crop`
/// (torchvision's rounding).
pub(crate) fn placement(
    pre: &Preprocess,
    w: u32,
    h: u32,
) -> std::result::Result<Placement, String> {
    let mut resized = None;
    if let Some([h, w]) = pre.resize_to {
        if pre.resize.is_some() {
            return Err("give preprocess.resize (short side, keeping the aspect ratio) or resize_to ([height, width]), not both".into());
        }
        if h == 0 || w == 0 || u64::from(h) * u64::from(w) > MAX_PIXELS {
            return Err(format!(
                "preprocess.resize_to [{h}, {w}]: each side at least 1, at most {MAX_PIXELS} pixels"
            ));
        }
        resized = Some((w, h));
    }
    if let Some(short) = pre.resize {
        let (w, h) = (u64::from(w), u64::from(h));
        let short64 = u64::from(short);
        let (nw, nh) = if w <= h {
            (short64, short64 * h / w.max(1))
        } else {
            (short64 * w / h.max(1), short64)
        };
        if short == 0 {
            return Err("preprocess.resize (--resize) is 0; give a side of at least 1".into());
        }
        if nw.saturating_mul(nh) > MAX_PIXELS {
            return Err(format!(
                "resizing this {w}x{h} image to a short side of {short} makes it {nw}x{nh} pixels, more than {MAX_PIXELS}"
            ));
        }
        resized = Some((nw as u32, nh as u32));
    }
    let size = resized.unwrap_or((w, h));
    let crop = pre.center_crop.map(|c| {
        let (w, h) = size;
        let left = ((f64::from(w) - f64::from(c)) / 2.0).round().max(0.0) as u32;
        let top = ((f64::from(h) - f64::from(c)) / 2.0).round().max(0.0) as u32;
        (left, top, c.min(w), c.min(h))
    });
    Ok(Placement { resized, crop })
}

/// Resize (bilinear, antialiased when shrinking as PIL does), then
/// center-crop, as [`placement`] says.
fn geometry(img: DynamicImage, pre: &Preprocess) -> std::result::Result<DynamicImage, String> {
    let mut img = img;
    let place = placement(pre, img.width(), img.height())?;
    if let Some((w, h)) = place.resized {
        img = img.resize_exact(w, h, FilterType::Triangle);
    }
    if let Some((left, top, w, h)) = place.crop {
        img = DynamicImage::from(imageops::crop_imm(&img.to_rgb8(), left, top, w, h).to_image());
    }
    Ok(img)
}

/// HWC bytes to a CHW u8 tensor in the requested channel layout.
fn to_tensor(img: DynamicImage, channels: Channels) -> Tensor {
    let (w, h) = (i64::from(img.width()), i64::from(img.height()));
    match channels {
        Channels::Gray => Tensor::from_slice(img.to_luma8().as_raw()).reshape([1, h, w]),
        Channels::Auto | Channels::Rgb | Channels::Bgr => {
            let t = Tensor::from_slice(img.to_rgb8().as_raw())
                .reshape([h, w, 3])
                .permute([2, 0, 1]);
            if channels == Channels::Bgr {
                t.flip([0])
            } else {
                t
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_follow_the_squash_the_short_side_resize_and_the_crop() {
        let pre = |resize_to, resize, center_crop| Preprocess {
            resize_to,
            resize,
            center_crop,
            ..Default::default()
        };
        let squash = placement(&pre(Some([50, 100]), None, None), 200, 100).unwrap();
        assert_eq!(
            squash.place((200, 100), [20.0, 10.0, 60.0, 30.0]),
            Some([10.0, 5.0, 30.0, 15.0])
        );
        // 200x100 -> 100x50, then the centre 40x40 from (30, 5).
        let cropped = placement(&pre(None, Some(50), Some(40)), 200, 100).unwrap();
        assert_eq!(cropped.crop, Some((30, 5, 40, 40)));
        assert_eq!(
            cropped.place((200, 100), [40.0, 0.0, 100.0, 40.0]),
            Some([0.0, 0.0, 20.0, 15.0])
        );
        // Wholly outside the crop.
        assert_eq!(cropped.place((200, 100), [0.0, 0.0, 50.0, 50.0]), None);
        assert!(placement(&pre(Some([5, 5]), Some(5), None), 10, 10).is_err());
    }

    /// A folder with one 2x2 PNG in each of the class folders `names`.
    fn folder(names: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for name in names {
            let sub = dir.path().join(name);
            std::fs::create_dir(&sub).unwrap();
            image::RgbImage::new(2, 2).save(sub.join("a.png")).unwrap();
        }
        dir
    }

    fn labels(names: &[&str]) -> Result<Vec<i64>> {
        let dir = folder(names);
        Ok(ImageFolder::open(dir.path())?.labels.unwrap())
    }

    /// ImageNet folders named by class index (`285/`, `967/`) are those
    /// classes; any other name makes the folders' name order the classes.
    #[test]
    fn numeric_class_folders_are_class_indices() {
        assert_eq!(labels(&["967", "285", "10"]).unwrap(), [10, 285, 967]);
        assert_eq!(labels(&["0007", "3"]).unwrap(), [7, 3]);
        assert_eq!(labels(&["cat", "7"]).unwrap(), [0, 1]);
        assert_eq!(labels(&["-1", "2"]).unwrap(), [0, 1]);
        let e = labels(&["1", "99999999999999999999"]).unwrap_err();
        assert!(
            e.to_string().contains("99999999999999999999") && e.exit_code() == 4,
            "{e}"
        );
    }
}
