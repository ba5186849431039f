//! Neural-network building blocks: the seeded parameter store and the layers the models use.
//!
//! Every layer is written from differentiable tensor ops (no fused candle-nn op that would
//! silently stop gradients), so the second backward pass of a gradient penalty goes through.

mod activation;
pub mod attention;
mod batch_norm;
mod layers;
mod norm;
pub mod resample;
mod spectral_norm;
pub mod store;

pub use activation::{Dropout, leaky_relu};
pub use attention::{SelfAttention, self_attention};
pub use batch_norm::{BatchNorm, BatchNormConfig, batch_norm};
pub use layers::{
    Conv2d, Conv2dConfig, ConvTranspose2d, Linear, conv_transpose2d, conv2d, dcgan_init, linear,
};
pub use norm::{LayerNorm, Norm2d, layer_norm, norm2d};
pub use spectral_norm::{SpectralNorm, spectral_norm};
pub use store::ParamStore;

use crate::rng::Rng;

/// Whether a forward pass trains (batch statistics, dropout on) or evaluates.
pub enum Mode<'a> {
    /// Training: batch norm uses and updates batch statistics; dropout draws masks from the RNG.
    Train(&'a mut Rng),
    /// Evaluation: batch norm uses running statistics; dropout is the identity.
    Eval,
}

impl Mode<'_> {
    pub fn is_train(&self) -> bool {
        matches!(self, Mode::Train(_))
    }
}
