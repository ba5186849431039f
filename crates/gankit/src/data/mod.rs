//! Training data: sources (IDX files, embedded / system Fashion-MNIST, image folders) as an
//! [`ImageSet`] (in memory, or a folder's memory-mapped decoded cache), and a [`Batcher`]
//! that shuffles it every epoch and prepares the next batch on a background thread.

pub mod archive;
mod batcher;
pub mod cache;
pub mod describe;
pub mod fashion;
pub mod folder;
pub mod idx;
pub mod images;
pub mod listing;
mod pixels;
pub mod stream;
pub mod throughput;

use std::path::{Path, PathBuf};

pub use batcher::{Batch, Batcher, ClassPlan, batches_per_epoch};
pub use images::ImageSet;
pub use pixels::Pixels;

use crate::config::{DataConfig, DatasetKind, Split};
use crate::{Error, Result};

/// The class-by-class plan of `cfg` (`data.class_schedule`) over `set`'s classes; `None`
/// without a schedule. A phase lasts `class_steps` iterations of `d_steps` batches.
pub fn class_plan(cfg: &crate::config::Config, set: &ImageSet) -> Option<ClassPlan> {
    use crate::config::ClassSchedule;
    let d = &cfg.data;
    if d.class_schedule == ClassSchedule::None {
        return None;
    }
    let order = if d.class_order.is_empty() {
        let top = set
            .labels
            .as_ref()
            .and_then(|l| l.iter().max().copied())
            .unwrap_or(0);
        (0..=top).collect()
    } else {
        d.class_order.clone()
    };
    Some(ClassPlan {
        order,
        batches_per_phase: d.class_steps * cfg.train.d_steps as u64,
        cumulative: d.class_schedule == ClassSchedule::Curriculum,
    })
}

/// Load the images a config asks for.
pub fn load(cfg: &DataConfig) -> Result<ImageSet> {
    load_with(cfg, &mut |_, _| {})
}

/// [`load`], reporting (decoded, total) to `progress` while a folder is decoded (a cache
/// build: the first run over a folder, or after it changed).
pub fn load_with(cfg: &DataConfig, progress: &mut dyn FnMut(usize, usize)) -> Result<ImageSet> {
    match cfg.dataset {
        DatasetKind::FashionMnist => load_fashion(cfg),
        DatasetKind::Idx => {
            let path = cfg.path.as_deref().expect("validated: idx needs data.path");
            if !path.is_file() {
                return Err(Error::Data(format!(
                    "{} is not a file: set data.path to an IDX image file (raw or .gz)",
                    path.display()
                )));
            }
            let labels = sibling_labels(path);
            load_idx(path, labels.as_deref(), cfg.image_size, cfg.channels)
        }
        DatasetKind::Folder => {
            let path = cfg
                .path
                .as_deref()
                .expect("validated: folder needs data.path");
            let fail = cfg.unreadable == crate::config::Unreadable::Fail;
            let want = cache::Want {
                size: cfg.image_size,
                channels: cfg.channels,
                labels: cfg.labels == crate::config::FolderLabels::Folders,
            };
            let cache_dir = cfg.cache.then(cache::dir);
            folder::load(path, want, fail, cache_dir.as_deref(), progress)
        }
    }
}

fn load_fashion(cfg: &DataConfig) -> Result<ImageSet> {
    let split = cfg.split;
    let found = match &cfg.path {
        Some(dir) => Some(fashion::files_in(dir, split).ok_or_else(|| {
            Error::Data(format!(
                "no Fashion-MNIST {} files (e.g. {}-images-idx3-ubyte.gz) in {}",
                split_name(split),
                if split == Split::Train {
                    "train"
                } else {
                    "t10k"
                },
                dir.display()
            ))
        })?),
        None => fashion::system_files(split),
    };
    match found {
        Some((images, labels)) => load_idx(&images, Some(&labels), cfg.image_size, cfg.channels),
        None => {
            let (images, labels) = fashion::embedded()?;
            let mut set = idx_to_set(
                &images,
                Some(&labels),
                "embedded",
                cfg.image_size,
                cfg.channels,
            )?;
            set.source = format!(
                "embedded Fashion-MNIST test split (install Debian's dataset-fashion-mnist or set data.path for the {} split)",
                split_name(split)
            );
            Ok(set)
        }
    }
}

fn split_name(s: Split) -> &'static str {
    match s {
        Split::Train => "train",
        Split::Test => "test",
    }
}

/// MNIST-style naming: `xxx-images-idx3-ubyte[.gz]` pairs with `xxx-labels-idx1-ubyte[.gz]`.
fn sibling_labels(images: &Path) -> Option<PathBuf> {
    let name = images.file_name()?.to_str()?;
    let candidate = images.with_file_name(name.replace("images-idx3", "labels-idx1"));
    (candidate != images && candidate.is_file()).then_some(candidate)
}

/// Read an IDX image file and, when given, its label file.
pub fn load_idx(
    images: &Path,
    labels: Option<&Path>,
    size: usize,
    channels: usize,
) -> Result<ImageSet> {
    let img = idx::read(images)?;
    let lab = labels.map(idx::read).transpose()?;
    let mut set = idx_to_set(
        &img,
        lab.as_ref(),
        &images.display().to_string(),
        size,
        channels,
    )?;
    set.source = images.display().to_string();
    Ok(set)
}

fn idx_to_set(
    img: &idx::IdxArray,
    labels: Option<&idx::IdxArray>,
    what: &str,
    size: usize,
    channels: usize,
) -> Result<ImageSet> {
    let (n, rows, cols) = idx::as_images(img, what)?;
    let labels = labels.map(|l| idx::as_labels(l, n, what)).transpose()?;
    let per = rows * cols;
    let pixels: Vec<u8> = if rows == size && cols == size && channels == 1 {
        img.data.clone()
    } else {
        use rayon::prelude::*;
        img.data
            .par_chunks(per)
            .flat_map_iter(|raw| images::gray_to_planes(raw, rows, cols, size, channels))
            .collect()
    };
    Ok(ImageSet {
        pixels: pixels.into(),
        len: n,
        channels,
        size,
        labels,
        source: what.to_string(),
    })
}

/// One line of `gankit datasets`.
#[derive(Clone, Debug)]
pub struct DatasetInfo {
    /// The `data.dataset` value.
    pub name: &'static str,
    pub description: &'static str,
    /// Where it was found, or what to do to get it.
    pub location: String,
}

/// The datasets gankit knows and where each was found.
pub fn known() -> Vec<DatasetInfo> {
    let system = |s| {
        fashion::system_files(s)
            .map(|(i, _)| i.display().to_string())
            .unwrap_or_else(|| {
                "not found (apt-get install dataset-fashion-mnist, or set data.path)".to_string()
            })
    };
    vec![
        DatasetInfo {
            name: "fashion-mnist",
            description: "Fashion-MNIST train split, 60k 28×28 (data.split = \"train\")",
            location: system(Split::Train),
        },
        DatasetInfo {
            name: "fashion-mnist",
            description: "Fashion-MNIST test split, 10k 28×28 (data.split = \"test\")",
            location: system(Split::Test),
        },
        DatasetInfo {
            name: "fashion-mnist",
            description: "embedded copy of the test split, used when no other is found",
            location: "inside the gankit binary (always available)".into(),
        },
        DatasetInfo {
            name: "idx",
            description: "any MNIST-format IDX image file (MNIST, KMNIST, EMNIST), raw or .gz",
            location: "data.path = the images file; labels-idx1 beside it are used".into(),
        },
        DatasetInfo {
            name: "folder",
            description: "PNG / JPEG images under a folder (CelebA, CUFS), recursive",
            location: "data.path = the folder".into(),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fashion_falls_back_to_embedded_when_path_missing_from_system() {
        let cfg = DataConfig {
            split: Split::Test,
            ..DataConfig::default()
        };
        let set = load(&cfg).unwrap();
        assert_eq!((set.len, set.size, set.channels), (10000, 28, 1));
        assert_eq!(set.labels.as_ref().unwrap().len(), 10000);
    }

    #[test]
    fn idx_files_resize_to_rgb_and_find_their_labels() {
        let dir = tempfile::tempdir().unwrap();
        let mut img = vec![0, 0, 8, 3];
        for d in [3u32, 4, 4] {
            img.extend_from_slice(&d.to_be_bytes());
        }
        img.extend(std::iter::repeat_n(200u8, 48));
        let p = dir.path().join("x-images-idx3-ubyte");
        std::fs::write(&p, &img).unwrap();
        let mut lab = vec![0, 0, 8, 1];
        lab.extend_from_slice(&3u32.to_be_bytes());
        lab.extend([1, 2, 3]);
        std::fs::write(dir.path().join("x-labels-idx1-ubyte"), &lab).unwrap();
        let cfg = DataConfig {
            dataset: DatasetKind::Idx,
            path: Some(p),
            image_size: 8,
            channels: 3,
            ..DataConfig::default()
        };
        let set = load(&cfg).unwrap();
        assert_eq!((set.len, set.size, set.channels), (3, 8, 3));
        assert_eq!(set.pixels.bytes().unwrap().len(), 3 * 3 * 64);
        assert_eq!(set.labels, Some(vec![1, 2, 3]));
    }

    #[test]
    fn missing_paths_are_clear_errors() {
        let cfg = DataConfig {
            dataset: DatasetKind::Idx,
            path: Some("/nonexistent/file".into()),
            ..DataConfig::default()
        };
        assert!(
            load(&cfg)
                .unwrap_err()
                .to_string()
                .contains("/nonexistent/file")
        );
        let cfg = DataConfig {
            path: Some("/nonexistent".into()),
            ..DataConfig::default()
        };
        assert!(
            load(&cfg)
                .unwrap_err()
                .to_string()
                .contains("no Fashion-MNIST train files")
        );
    }
}
