//! Ground-truth boxes of an image folder (`detection.annotations`): a COCO
//! instances JSON file, or a folder of YOLO text files (`name.txt` for the
//! image `name.jpg`). Annotations meet samples by the image's file name and
//! land in input pixels as the data pipeline resized and cropped the image
//! (`images::placement`). COCO's crowd boxes are left out; a box
//! the crop removes wholly is left out, one it cuts is clipped.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::images::placement;
use super::Dataset;
use crate::classify::detect::Detection;
use crate::error::{Error, Result};

/// Ground truth per sample, by sample id.
pub type Truth = HashMap<usize, Vec<Detection>>;

/// A truth box before placement: corners in the original image's pixels
/// and the model's class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Labelled {
    /// x1, y1, x2, y2.
    pub corners: [f64; 4],
    /// The class index in the model.
    pub class: i64,
}

/// The truth boxes of the selected samples of `data` (an image folder),
/// from the annotations at `path`; with `classes` known, a class beyond
/// the model's is an error.
pub fn read(path: &Path, data: &Dataset, classes: Option<usize>) -> Result<Truth> {
    let coco = match path.is_dir() {
        true => None,
        false => Some(Coco::open(path)?),
    };
    let mut truth = Truth::new();
    for pos in 0..data.len() {
        let Some(photo) = data.image_path(pos) else {
            return Err(bad(path, "the data set is not an image folder"));
        };
        let size = image::image_dimensions(photo).map_err(|e| bad(photo, e.to_string()))?;
        let (labelled, source) = match &coco {
            Some(coco) => (coco.boxes(photo, size)?, path.to_path_buf()),
            None => {
                let txt = yolo_file(path, photo);
                (yolo(&txt, size)?, txt)
            }
        };
        known_classes(&labelled, classes, photo, &source)?;
        let place = placement(&data.spec.preprocess, size.0, size.1).map_err(|m| bad(photo, m))?;
        let boxes = (labelled.iter())
            .filter_map(|b| place.place(size, b.corners).map(|c| truth_box(c, b.class)))
            .collect();
        truth.insert(data.sample(pos).id, boxes);
    }
    Ok(truth)
}

/// An error naming `source` when a box of `photo` has a class beyond the
/// model's `classes`.
fn known_classes(
    boxes: &[Labelled],
    classes: Option<usize>,
    photo: &Path,
    source: &Path,
) -> Result<()> {
    let Some(n) = classes else {
        return Ok(());
    };
    match boxes.iter().find(|b| b.class >= n as i64) {
        Some(b) => Err(bad(
            source,
            format!(
                "an annotation of {} has class {}; the model's classes are 0 to {}",
                photo.display(),
                b.class,
                n.saturating_sub(1)
            ),
        )),
        None => Ok(()),
    }
}

fn truth_box([x1, y1, x2, y2]: [f32; 4], class: i64) -> Detection {
    Detection {
        x1,
        y1,
        x2,
        y2,
        score: 1.0,
        class,
    }
}

fn bad(path: &Path, msg: impl Into<String>) -> Error {
    Error::Data {
        path: path.to_path_buf(),
        msg: msg.into(),
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[derive(Deserialize)]
struct CocoFile {
    images: Vec<CocoImage>,
    annotations: Vec<CocoAnnotation>,
    categories: Vec<CocoCategory>,
}

#[derive(Deserialize)]
struct CocoImage {
    id: i64,
    file_name: String,
    width: u32,
    height: u32,
}

#[derive(Deserialize)]
struct CocoAnnotation {
    image_id: i64,
    bbox: [f64; 4],
    category_id: i64,
    #[serde(default)]
    iscrowd: u8,
}

#[derive(Deserialize)]
struct CocoCategory {
    id: i64,
}

/// A COCO instances file, its boxes grouped by image file name.
pub struct Coco {
    path: PathBuf,
    /// Per file name: the image's width and height and its boxes.
    images: HashMap<String, ((u32, u32), Vec<Labelled>)>,
}

impl Coco {
    /// Reads the file; a category's class is its rank by `id`.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let file: CocoFile = serde_json::from_slice(&text)
            .map_err(|e| bad(path, format!("not a COCO instances file: {e}")))?;
        let mut ids: Vec<i64> = file.categories.iter().map(|c| c.id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut names = HashMap::new();
        let mut images = HashMap::new();
        for image in &file.images {
            let name = file_name(Path::new(&image.file_name));
            if images
                .insert(name.clone(), ((image.width, image.height), Vec::new()))
                .is_some()
            {
                return Err(bad(path, format!("two images are named {name}")));
            }
            names.insert(image.id, name);
        }
        for (i, a) in file.annotations.iter().enumerate() {
            let Some(name) = names.get(&a.image_id) else {
                let msg = format!("annotations[{i}]: image_id {} is not in images", a.image_id);
                return Err(bad(path, msg));
            };
            let Ok(class) = ids.binary_search(&a.category_id) else {
                let id = a.category_id;
                let msg = format!("annotations[{i}]: category_id {id} is not in categories");
                return Err(bad(path, msg));
            };
            if a.iscrowd != 0 {
                continue;
            }
            let [x, y, w, h] = a.bbox;
            let b = Labelled {
                corners: [x, y, x + w, y + h],
                class: class as i64,
            };
            images.get_mut(name).expect("named above").1.push(b);
        }
        Ok(Coco {
            path: path.to_path_buf(),
            images,
        })
    }

    /// The boxes of `image`, whose size is `size`: one the file does not
    /// list, or lists at another size, is an error (its AP would be wrong).
    pub fn boxes(&self, image: &Path, size: (u32, u32)) -> Result<Vec<Labelled>> {
        let name = file_name(image);
        let Some((listed, boxes)) = self.images.get(&name) else {
            let msg = format!("images lists no {name} (the sample {})", image.display());
            return Err(bad(&self.path, msg));
        };
        if *listed != size {
            let msg = format!(
                "images gives {name} as {}x{} pixels, but {} is {}x{}",
                listed.0,
                listed.1,
                image.display(),
                size.0,
                size.1
            );
            return Err(bad(&self.path, msg));
        }
        Ok(boxes.clone())
    }
}

/// The YOLO file of `image` in the folder `dir`: its name with `.txt`.
fn yolo_file(dir: &Path, image: &Path) -> PathBuf {
    let stem = image.file_stem().unwrap_or_default();
    dir.join(Path::new(stem).with_extension("txt"))
}

/// The boxes of a YOLO file (`class cx cy w h` a line, normalized by the
/// image's `size`); no file: no object (YOLO's background images).
pub fn yolo(path: &Path, size: (u32, u32)) -> Result<Vec<Labelled>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let (w, h) = (f64::from(size.0), f64::from(size.1));
    let mut boxes = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((class, [cx, cy, bw, bh])) = yolo_line(line) else {
            let msg = format!("line {}: `{line}` is not `class cx cy w h` (a class index and four numbers in [0, 1])", i + 1);
            return Err(bad(path, msg));
        };
        let (cx, cy, bw, bh) = (cx * w, cy * h, bw * w, bh * h);
        boxes.push(Labelled {
            corners: [cx - bw / 2.0, cy - bh / 2.0, cx + bw / 2.0, cy + bh / 2.0],
            class,
        });
    }
    Ok(boxes)
}

fn yolo_line(line: &str) -> Option<(i64, [f64; 4])> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let [class, rest @ ..] = &fields[..] else {
        return None;
    };
    let class: i64 = class.parse().ok().filter(|c| *c >= 0)?;
    let numbers: Vec<f64> = (rest.iter())
        .map(|f| f.parse::<f64>().ok().filter(|v| (0.0..=1.0).contains(v)))
        .collect::<Option<_>>()?;
    Some((class, numbers.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yolo_lines_are_a_class_and_four_fractions() {
        assert_eq!(
            yolo_line("2 0.5 0.5 0.2 0.4"),
            Some((2, [0.5, 0.5, 0.2, 0.4]))
        );
        assert_eq!(yolo_line("2 0.5 0.5 0.2"), None);
        assert_eq!(yolo_line("2 0.5 0.5 0.2 0.4 0.9"), None);
        assert_eq!(yolo_line("-1 0.5 0.5 0.2 0.4"), None);
        assert_eq!(yolo_line("a 0.5 0.5 0.2 0.4"), None);
        assert_eq!(yolo_line("0 1.5 0.5 0.2 0.4"), None);
    }
}
