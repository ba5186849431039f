//! Where the networks get self-attention layers (SAGAN, Zhang et al. 2019; report 003
//! §5.2): `model.attention` lists feature-map sides, and each network puts one layer
//! (weights `attn{side}.*`) after its hidden map of that side.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Arch, AttentionVariant, Config, Critic};
use crate::nn::{Mode, SelfAttention, self_attention};
use crate::{Error, Result as GResult};

/// Which maps get attention, and its form (from `model.attention*`).
#[derive(Clone, Debug, Default)]
pub struct AttentionSpec {
    pub sides: Vec<usize>,
    pub variant: AttentionVariant,
}

impl AttentionSpec {
    pub fn of(cfg: &Config) -> AttentionSpec {
        AttentionSpec {
            sides: cfg.model.attention.clone(),
            variant: cfg.model.attention_variant,
        }
    }
}

/// One network's attention layers, by the side of the map they follow.
#[derive(Default)]
pub struct Attentions {
    layers: Vec<(usize, SelfAttention)>,
}

impl Attentions {
    /// Layers for the sides `spec` names among `maps` ((channels, side) of the network's
    /// hidden maps, in order), spectrally normalised with `spectral_norm`.
    pub fn build(
        spec: &AttentionSpec,
        maps: &[(usize, usize)],
        spectral_norm: bool,
        vb: &VarBuilder,
    ) -> Result<Attentions> {
        let mut layers = Vec::new();
        for &(channels, side) in maps {
            if spec.sides.contains(&side) {
                let vb = vb.pp(format!("attn{side}"));
                let layer = self_attention(channels, spec.variant, spectral_norm, vb)?;
                layers.push((side, layer));
            }
        }
        Ok(Attentions { layers })
    }

    pub fn is_empty(&self) -> bool {
        self.layers.is_empty()
    }

    /// `h` (a map of side `side`) through the layer at that side, if there is one.
    pub fn apply(&self, h: Tensor, side: usize, mode: &Mode) -> Result<Tensor> {
        match self.layers.iter().find(|(s, _)| *s == side) {
            Some((_, layer)) => layer.forward_t(&h, mode),
            None => Ok(h),
        }
    }

    /// The layer at `side`, if any (for drawing its attention maps).
    pub fn at(&self, side: usize) -> Option<&SelfAttention> {
        self.layers.iter().find(|(s, _)| *s == side).map(|(_, l)| l)
    }
}

/// The hidden map sides of G and of D for `cfg` (where attention layers can go).
pub fn hidden_sides(cfg: &Config) -> (Vec<usize>, Vec<usize>) {
    let s = cfg.data.image_size;
    let g = match cfg.model.arch {
        Arch::Dcgan28 => vec![7, 14],
        Arch::Dcgan64 => vec![s / 16, s / 8, s / 4, s / 2],
        Arch::Allconv => super::allconv::maps(1, s).iter().map(|m| m.1).collect(),
        Arch::Mlp | Arch::Resnet | Arch::Progressive => vec![],
    };
    let d = match (cfg.model.critic, cfg.model.arch) {
        (Critic::Conv4, _) => {
            let mut sides = vec![];
            let mut side = s;
            for _ in 0..4 {
                side = (side + 2 - 3) / 2 + 1;
                sides.push(side);
            }
            sides
        }
        (Critic::Default, Arch::Dcgan28) => vec![14, 7],
        (Critic::Default, Arch::Dcgan64) => vec![s / 2, s / 4, s / 8, s / 16],
        (Critic::Default, Arch::Allconv) => super::allconv::maps(1, s)
            .iter()
            .rev()
            .map(|m| m.1)
            .collect(),
        (Critic::Default, Arch::Mlp | Arch::Resnet | Arch::Progressive) => vec![],
    };
    (g, d)
}

/// `model.attention`'s sides must be hidden maps of both networks, and the layer needs
/// maps of even sides for the official variant's 2×2 pooling.
pub fn check(cfg: &Config) -> GResult<()> {
    let (g, d) = hidden_sides(cfg);
    let both: Vec<usize> = g.iter().copied().filter(|s| d.contains(s)).collect();
    for &side in &cfg.model.attention {
        if !both.contains(&side) {
            return Err(Error::Config(format!(
                "model.attention = {:?}: {side} is not a hidden map side of both G and D here; use some of {both:?}",
                cfg.model.attention
            )));
        }
        if cfg.model.attention_variant == AttentionVariant::Official && side % 2 != 0 {
            return Err(Error::Config(format!(
                "model.attention_variant = \"official\" max-pools keys 2×2, which needs even sides; {side} is odd: use \"paper\" or another side"
            )));
        }
    }
    Ok(())
}
