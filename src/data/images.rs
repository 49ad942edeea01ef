//! A folder of images (PNG, JPEG), in name order. Class subfolders give
//! labels: when every subfolder's name is a non-negative integer (ImageNet's
//! `285/`, `967/`), that integer is its class; otherwise the i-th subfolder
//! in name order is class i. Images decode one batch at a time.

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

impl ImageFolder {
    pub fn open(dir: &Path) -> Result<Self> {
        let entries = sorted_entries(dir)?;
        let classes: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
        let (files, labels) = if classes.is_empty() {
            (
                entries.iter().filter(|p| is_image(p)).cloned().collect(),
                None,
            )
        } else {
            let mut files = Vec::new();
            let mut labels = Vec::new();
            for (sub, class) in classes.iter().zip(class_labels(&classes)?) {
                for f in sorted_entries(sub)?.into_iter().filter(|p| is_image(p)) {
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
        let mut batch = Vec::with_capacity(indices.len());
        let mut size = None;
        for &i in indices {
            let path = &self.files[i];
            let img = image::open(path).map_err(|e| Error::Data {
                path: path.clone(),
                msg: format!("cannot decode image: {e}"),
            })?;
            let t = to_tensor(geometry(img, pre), pre.channels);
            let s = t.size();
            if size.get_or_insert(s.clone()) != &s {
                return Err(Error::Data {
                    path: path.clone(),
                    msg: format!("size {s:?} differs from the batch's {size:?}; set preprocess.resize and center_crop"),
                });
            }
            batch.push(t);
        }
        Ok(Tensor::stack(&batch, 0))
    }
}

/// Resize the short side (bilinear, antialiased when shrinking as PIL does),
/// then center-crop (torchvision's rounding).
fn geometry(img: DynamicImage, pre: &Preprocess) -> DynamicImage {
    let mut img = img;
    if let Some(short) = pre.resize {
        let (w, h) = (img.width(), img.height());
        let (nw, nh) = if w <= h {
            (
                short,
                (u64::from(short) * u64::from(h) / u64::from(w)) as u32,
            )
        } else {
            (
                (u64::from(short) * u64::from(w) / u64::from(h)) as u32,
                short,
            )
        };
        img = img.resize_exact(nw, nh, FilterType::Triangle);
    }
    if let Some(c) = pre.center_crop {
        let (w, h) = (img.width(), img.height());
        let left = ((f64::from(w) - f64::from(c)) / 2.0).round().max(0.0) as u32;
        let top = ((f64::from(h) - f64::from(c)) / 2.0).round().max(0.0) as u32;
        img = DynamicImage::from(
            imageops::crop_imm(&img.to_rgb8(), left, top, c.min(w), c.min(h)).to_image(),
        );
    }
    img
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
