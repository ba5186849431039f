//! What a run writes for people and other tools: metrics.csv, the loss-curve PNG, sample
//! grids and their GIF, weight histograms, TensorBoard event files and NumPy arrays.
//! (Evaluation metrics such as FID plug in beside these.)

pub mod attention;
pub mod gif;
pub mod grid;
pub mod histogram;
pub mod metrics;
pub mod npy;
pub mod plot;
pub mod tensorboard;
