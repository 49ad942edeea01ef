//! Data sets: where samples come from, which of them, and how they are
//! turned into model inputs. Every sample keeps a stable id, its source and
//! its label when known, so a single result row can be traced back.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The `data` section of a scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSpec {
    /// An IDX file (raw or gzipped), a folder of images (class subfolders give
    /// labels), or a .npy/.npz tensor file.
    pub path: PathBuf,
    /// Labels: an IDX or .npy file; for .npz the array name. Optional.
    #[serde(default)]
    pub labels: Option<PathBuf>,
    /// Which samples to use (default: all).
    #[serde(default)]
    pub subset: Subset,
    /// Samples per forward pass in the golden run.
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    #[serde(default)]
    pub preprocess: Preprocess,
}

fn default_batch_size() -> usize {
    32
}

/// A subset of the data set, by position in its natural order.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Subset {
    #[default]
    All,
    /// The first N samples.
    First(usize),
    /// Samples `start..end`.
    Range { start: usize, end: usize },
    /// N samples drawn without replacement with a seed, kept in data-set order.
    Random { count: usize, seed: u64 },
}

/// Turning a decoded image (or array) into a model input, in this order:
/// resize the short side, center-crop, divide by `scale`, subtract `mean`
/// and divide by `std` per channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocess {
    /// Resize so the shorter side has this many pixels (bilinear).
    #[serde(default)]
    pub resize: Option<u32>,
    /// Center-crop to this square size after resizing.
    #[serde(default)]
    pub center_crop: Option<u32>,
    /// Pixel values are divided by this (255 maps bytes to [0, 1]).
    #[serde(default = "default_scale")]
    pub scale: f32,
    /// Per-channel mean subtracted after scaling (empty: none).
    #[serde(default)]
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by after the mean (empty: none).
    #[serde(default)]
    pub std: Vec<f32>,
    /// Channel layout of the model input.
    #[serde(default)]
    pub channels: Channels,
}

fn default_scale() -> f32 {
    255.0
}

impl Default for Preprocess {
    fn default() -> Self {
        Preprocess {
            resize: None,
            center_crop: None,
            scale: default_scale(),
            mean: vec![],
            std: vec![],
            channels: Channels::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channels {
    /// As stored: gray images stay 1 channel, colour images are RGB.
    #[default]
    Auto,
    Rgb,
    Bgr,
    Gray,
}
