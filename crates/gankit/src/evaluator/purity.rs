//! How well a family's categorical code found the data's classes without labels (InfoGAN,
//! Chen et al. 2016): images are generated for each code value, classified by the
//! evaluator, and the best one-to-one mapping of code values to classes (Hungarian
//! algorithm) gives the accuracy of the code as an unsupervised classifier, as ClusterGAN
//! (Mukherjee et al. 2019) reports it. Chance is 1 / classes.

use serde::{Deserialize, Serialize};

use super::Extractor;
use crate::Result;
use crate::metrics::assignment::max_weight_matching;

/// The code-to-class agreement of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CodePurity {
    /// Fraction of images whose class is the one their code value maps to.
    pub purity: f64,
    /// For each code value, the class it maps to (`None` when there are more values than
    /// classes and it got none).
    pub mapping: Vec<Option<usize>>,
    /// counts[v][c]: images of code value v classified as class c.
    pub counts: Vec<Vec<usize>>,
    pub images_per_code: usize,
}

/// Classify `per_code` images of each of the `codes` values (`images(value, n)` draws n
/// images, (n, C, H, W) in [-1, 1]) and map values to classes.
pub fn code_purity(
    ev: &dyn Extractor,
    codes: usize,
    per_code: usize,
    mut images: impl FnMut(u32, usize) -> Result<Vec<f32>>,
) -> Result<CodePurity> {
    let mut counts = Vec::with_capacity(codes);
    for v in 0..codes {
        let x = images(v as u32, per_code)?;
        let (_, probs) = ev.extract(&x, per_code)?;
        let mut row = vec![0usize; probs.ncols()];
        for best in crate::metrics::argmax_rows(&probs) {
            row[best] += 1;
        }
        counts.push(row);
    }
    let weights: Vec<Vec<f64>> = counts
        .iter()
        .map(|r| r.iter().map(|&c| c as f64).collect())
        .collect();
    let (matched, mapping) = max_weight_matching(&weights);
    Ok(CodePurity {
        purity: matched / (codes * per_code).max(1) as f64,
        mapping,
        counts,
        images_per_code: per_code,
    })
}
