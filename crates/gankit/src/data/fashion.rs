//! Fashion-MNIST: the 10k test split embedded in the binary, and the full set on disk.

use std::path::{Path, PathBuf};

use super::idx;
use crate::Result;
use crate::config::Split;

/// Where Debian's `dataset-fashion-mnist` package installs the full set.
pub const SYSTEM_DIR: &str = "/usr/share/datasets/fashion-mnist";

/// The embedded test split (10,000 images, MIT licence: see assets/FASHION-MNIST-LICENSE.txt).
pub const EMBEDDED_IMAGES: &[u8] = include_bytes!("../../assets/t10k-images-idx3-ubyte.gz");
pub const EMBEDDED_LABELS: &[u8] = include_bytes!("../../assets/t10k-labels-idx1-ubyte.gz");

/// Fashion-MNIST's ten class names, by label.
pub const CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// File names of a split, gzip first then raw.
fn file_names(split: Split) -> [(&'static str, &'static str); 2] {
    match split {
        Split::Train => [
            ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
            ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        ],
        Split::Test => [
            ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
            ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
        ],
    }
}

/// The (images, labels) files of `split` in `dir`, if present.
pub fn files_in(dir: &Path, split: Split) -> Option<(PathBuf, PathBuf)> {
    file_names(split).into_iter().find_map(|(i, l)| {
        let (i, l) = (dir.join(i), dir.join(l));
        (i.is_file() && l.is_file()).then_some((i, l))
    })
}

/// The system copy of `split`, if the Debian package is installed.
pub fn system_files(split: Split) -> Option<(PathBuf, PathBuf)> {
    files_in(Path::new(SYSTEM_DIR), split)
}

/// Decode the embedded test split: (images IDX, labels IDX).
pub fn embedded() -> Result<(idx::IdxArray, idx::IdxArray)> {
    let what = "embedded Fashion-MNIST";
    let images = idx::parse(&idx::maybe_gunzip(EMBEDDED_IMAGES, what)?, what)?;
    let labels = idx::parse(&idx::maybe_gunzip(EMBEDDED_LABELS, what)?, what)?;
    Ok((images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_split_is_ten_thousand_labelled_images() {
        let (i, l) = embedded().unwrap();
        assert_eq!(i.dims, vec![10000, 28, 28]);
        let labels = idx::as_labels(&l, 10000, "l").unwrap();
        assert!(labels.iter().all(|&c| c < 10));
        // Every class is present, 1000 each in the test split.
        for c in 0..10u8 {
            assert_eq!(labels.iter().filter(|&&x| x == c).count(), 1000);
        }
    }
}
