//! Generators and discriminators. Each architecture is a pair of structs built from the
//! config by [`build`]; the trainer only sees the [`Generator`] and [`Discriminator`] traits.

pub mod allconv;
pub mod attention;
mod conv_critic;
mod conv_discriminator;
mod dcgan28;
mod dcgan64;
pub mod encoder;
pub mod joint;
mod mlp;
pub mod progressive;
mod projection;
pub mod resnet;

pub use conv_discriminator::ConvDiscriminator;
pub use dcgan28::Dcgan28Generator;
pub use dcgan64::Dcgan64Generator;
pub use mlp::{MlpDiscriminator, MlpGenerator};
pub use projection::Projection;

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use crate::config::{Arch, Config, Critic, Norm};
use crate::nn::{Mode, ParamStore};

/// Maps noise z (batch, z_dim) to images (batch, C, H, W) in [-1, 1].
pub trait Generator: Send {
    fn forward(&self, z: &Tensor, mode: &mut Mode) -> Result<Tensor>;
    /// The hidden activations (channels, side) after the input layer and after every
    /// upsampling block but the last, coarse to fine: the stages of progressive pretraining
    /// (report 001 §4.3). Empty for architectures without them.
    fn stages(&self) -> Vec<(usize, usize)> {
        Vec::new()
    }
    /// The hidden activations of stage `stage` (an index into [`Generator::stages`]).
    fn forward_stage(&self, _z: &Tensor, _stage: usize, _mode: &mut Mode) -> Result<Tensor> {
        candle_core::bail!("this generator has no pretraining stages")
    }
    /// In evaluation mode: the images of `z` and the attention map β (n, N, N_keys) of the
    /// self-attention layer after the hidden map of side `side`; `None` without one there.
    fn attention_map(&self, _z: &Tensor, _side: usize) -> Result<Option<(Tensor, Tensor)>> {
        Ok(None)
    }
}

/// What a discriminator returns for a batch.
pub struct DOutput {
    /// One unbounded score per image (logit or critic value), shape (batch).
    pub logits: Tensor,
    /// The activations feeding the last layer, (batch, features): for feature matching.
    pub features: Tensor,
}

/// Scores images (batch, C, H, W).
pub trait Discriminator: Send {
    /// `labels` (batch, u32) are the images' classes in a conditional run (the projection
    /// discriminator uses them); unconditional discriminators ignore them.
    fn forward(&self, x: &Tensor, labels: Option<&Tensor>, mode: &mut Mode) -> Result<DOutput>;

    /// The outputs of the hidden blocks (VAE-GAN's feature reconstruction reads one);
    /// empty for discriminators without blocks.
    fn hidden(&self, _x: &Tensor, _mode: &mut Mode) -> Result<Vec<Tensor>> {
        Ok(Vec::new())
    }

    /// ∂(Σ D(x))/∂x built forward from differentiable ops, without a backward pass, when
    /// this critic can (the gradient penalty then differentiates a graph of a few fused ops
    /// instead of candle's backward pass and its bookkeeping); None: the caller runs a
    /// backward pass.
    fn input_gradient(
        &self,
        _x: &Tensor,
        _labels: Option<&Tensor>,
        _mode: &mut Mode,
    ) -> Result<Option<Tensor>> {
        Ok(None)
    }
}

/// The image shape the models produce and consume.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageShape {
    pub channels: usize,
    pub size: usize,
}

impl ImageShape {
    pub fn of(cfg: &Config) -> Self {
        ImageShape {
            channels: cfg.data.channels,
            size: cfg.data.image_size,
        }
    }

    pub fn numel(&self) -> usize {
        self.channels * self.size * self.size
    }
}

/// What the networks of one run share: progressive growing's schedule.
#[derive(Clone, Default)]
pub struct Shared {
    pub progress: Option<progressive::Progress>,
}

impl Shared {
    /// The shared state `cfg`'s networks need.
    pub fn of(cfg: &Config) -> Shared {
        Shared {
            progress: (cfg.model.arch == Arch::Progressive)
                .then(|| progressive::Progress::new(cfg)),
        }
    }

    fn progress(&self, cfg: &Config) -> progressive::Progress {
        self.progress
            .clone()
            .unwrap_or_else(|| progressive::Progress::new(cfg))
    }
}

/// Build the generator and discriminator of `cfg`, creating their weights in the two stores.
pub fn build(
    cfg: &Config,
    g_store: &ParamStore,
    d_store: &ParamStore,
) -> Result<(Box<dyn Generator>, Box<dyn Discriminator>)> {
    build_shared(cfg, &Shared::default(), g_store, d_store)
}

/// [`build`] with the state the run's networks share.
pub fn build_shared(
    cfg: &Config,
    shared: &Shared,
    g_store: &ParamStore,
    d_store: &ParamStore,
) -> Result<(Box<dyn Generator>, Box<dyn Discriminator>)> {
    let m = &cfg.model;
    Ok((
        generator_in(cfg, m.z_dim + m.classes, shared, g_store.var_builder())?,
        discriminator_in(cfg, shared, d_store.var_builder())?,
    ))
}

/// The generator of `cfg`, its weights created through `vb`. A conditional one
/// (`model.classes` > 0) takes z joined to the one-hot class, so its first layer learns the
/// class embedding.
pub fn build_generator(cfg: &Config, vb: VarBuilder) -> Result<Box<dyn Generator>> {
    let m = &cfg.model;
    generator_with_input(cfg, m.z_dim + m.classes, vb)
}

/// The generator of `cfg`'s architecture taking inputs of `input` values (a family that
/// joins codes to the noise, such as InfoGAN, sizes it).
pub fn generator_with_input(
    cfg: &Config,
    input: usize,
    vb: VarBuilder,
) -> Result<Box<dyn Generator>> {
    generator_in(cfg, input, &Shared::default(), vb)
}

/// [`generator_with_input`] with the state the run's networks share.
pub fn generator_in(
    cfg: &Config,
    input: usize,
    shared: &Shared,
    vb: VarBuilder,
) -> Result<Box<dyn Generator>> {
    let (m, shape) = (&cfg.model, ImageShape::of(cfg));
    Ok(match m.arch {
        Arch::Dcgan28 => Box::new(dcgan28::generator(input, cfg, vb)?),
        Arch::Dcgan64 => Box::new(dcgan64::generator(input, cfg, vb)?),
        Arch::Allconv => Box::new(allconv::generator(input, cfg, vb)?),
        Arch::Resnet => Box::new(resnet::generator(input, cfg, vb)?),
        Arch::Progressive => Box::new(progressive::generator(
            input,
            cfg,
            shared.progress(cfg),
            vb,
        )?),
        Arch::Mlp => Box::new(mlp::generator(
            input,
            m.mlp_hidden,
            m.g_spectral_norm,
            shape,
            vb,
        )?),
    })
}

/// The discriminator of `cfg` (`model.critic` picks the architecture's own or report 004's),
/// wrapped in a projection discriminator when the run is conditional.
pub fn build_discriminator(cfg: &Config, vb: VarBuilder) -> Result<Box<dyn Discriminator>> {
    discriminator_in(cfg, &Shared::default(), vb)
}

/// [`build_discriminator`] with the state the run's networks share.
pub fn discriminator_in(
    cfg: &Config,
    shared: &Shared,
    vb: VarBuilder,
) -> Result<Box<dyn Discriminator>> {
    let (d, features) = features_in(cfg, shared, vb.clone())?;
    let m = &cfg.model;
    if m.classes == 0 {
        return Ok(d);
    }
    Ok(Box::new(projection::projection(
        d, m.classes, features, vb,
    )?))
}

/// The unconditional discriminator of `cfg` and the width of its features (the
/// activations feeding its last layer, `DOutput::features`), for heads built on them.
pub fn discriminator_and_features(
    cfg: &Config,
    vb: VarBuilder,
) -> Result<(Box<dyn Discriminator>, usize)> {
    features_in(cfg, &Shared::default(), vb)
}

fn features_in(
    cfg: &Config,
    shared: &Shared,
    vb: VarBuilder,
) -> Result<(Box<dyn Discriminator>, usize)> {
    let (m, shape) = (&cfg.model, ImageShape::of(cfg));
    let sn = m.spectral_norm;
    let att = attention::AttentionSpec::of(cfg);
    let v = vb;
    let (d, features): (Box<dyn Discriminator>, usize) = match (m.critic, m.arch) {
        (Critic::Conv4, _) => boxed(conv_critic::critic(m.d_norm(), sn, shape, &att, v)?),
        (Critic::Default, Arch::Dcgan28 | Arch::Dcgan64) => {
            let (chans, kernel) = dcgan_layout(cfg).expect("a DCGAN arch");
            boxed(conv_discriminator::conv_discriminator(
                &chans, kernel, m.d_norm, sn, shape.size, &att, v,
            )?)
        }
        (Critic::Default, Arch::Allconv) => {
            let d = allconv::discriminator(cfg, v)?;
            let f = d.feature_dim();
            (Box::new(d), f)
        }
        (Critic::Default, Arch::Resnet) => {
            let d = resnet::discriminator(cfg, v)?;
            let f = d.feature_dim();
            (Box::new(d), f)
        }
        (Critic::Default, Arch::Progressive) => {
            let d = progressive::discriminator(cfg, shared.progress(cfg), v)?;
            let f = d.feature_dim();
            (Box::new(d), f)
        }
        (Critic::Default, Arch::Mlp) => {
            let bn = m.d_norm() == Norm::Batch;
            let d = mlp::discriminator(m.mlp_hidden, m.d_dropout, sn, bn, shape, v)?;
            let f = d.feature_dim();
            (Box::new(d), f)
        }
    };
    Ok((d, features))
}

/// What the models refuse in a config: options an architecture does not have.
pub fn check(cfg: &Config) -> crate::Result<()> {
    let m = &cfg.model;
    let bad = |msg: String| Err(crate::Error::Config(msg));
    match (m.arch, m.critic, m.d_norm()) {
        (Arch::Mlp, Critic::Default, Norm::Layer) => {
            return bad(
                "model.d_norm = \"layer\": the mlp discriminator takes \"batch\" or \"none\""
                    .into(),
            );
        }
        (Arch::Resnet | Arch::Progressive, Critic::Default, Norm::Batch | Norm::Layer) => {
            return bad(format!(
                "model.arch = {:?} has no normalisation in D: set model.d_norm = \"none\" (or \"auto\")",
                m.arch
            ));
        }
        _ => {}
    }
    if m.extra_layers > 0 && m.arch != Arch::Allconv {
        return bad("model.extra_layers deepens the \"allconv\" networks only".into());
    }
    if m.extra_layers > 16 {
        return bad(format!(
            "model.extra_layers = {} must be at most 16",
            m.extra_layers
        ));
    }
    attention::check(cfg)
}

/// The conv blocks of `cfg`'s discriminator (dcgan28 / dcgan64 layouts, `d_width` wide)
/// with normalisation `norm` and no score layer: the image body of an encoder or of a joint
/// discriminator.
pub fn image_body(
    cfg: &Config,
    norm: Norm,
    spectral_norm: bool,
    vb: VarBuilder,
) -> Result<ConvDiscriminator> {
    let Some((chans, kernel)) = dcgan_layout(cfg) else {
        candle_core::bail!("image bodies are convolutional: use dcgan28 or dcgan64")
    };
    conv_discriminator::conv_body(
        &chans,
        kernel,
        norm,
        spectral_norm,
        cfg.data.image_size,
        &attention::AttentionSpec::of(cfg),
        0,
        vb,
    )
}

/// The channels and kernel of the DCGAN discriminators' conv blocks, `d_width` wide; `None`
/// for the other architectures.
fn dcgan_layout(cfg: &Config) -> Option<(Vec<usize>, crate::nn::Conv2dConfig)> {
    let (w, shape) = (cfg.model.d_width, ImageShape::of(cfg));
    match cfg.model.arch {
        Arch::Dcgan28 => Some(dcgan28::d_layout(w, shape)),
        Arch::Dcgan64 => Some(dcgan64::d_layout(w, shape)),
        _ => None,
    }
}

fn boxed(d: ConvDiscriminator) -> (Box<dyn Discriminator>, usize) {
    let f = d.feature_dim();
    (Box::new(d), f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use candle_core::{DType, Device};

    fn shapes(arch: &str, size: usize, channels: usize) -> (Vec<usize>, Vec<usize>, usize) {
        let sets = vec![
            format!("model.arch={arch}"),
            format!("data.image_size={size}"),
            format!("data.channels={channels}"),
            "model.g_width=8".into(),
            "model.d_width=8".into(),
            "model.mlp_hidden=16".into(),
        ];
        let cfg = Config::from_toml_str("", "t", &sets).unwrap();
        let gs = ParamStore::new(Rng::new(0, 1), &Device::Cpu);
        let ds = ParamStore::new(Rng::new(0, 2), &Device::Cpu);
        let (g, d) = build(&cfg, &gs, &ds).unwrap();
        let z = Tensor::randn(0f32, 1.0, (3, 100), &Device::Cpu).unwrap();
        let mut rng = Rng::new(0, 0);
        let x = g.forward(&z, &mut Mode::Train(&mut rng)).unwrap();
        let out = d.forward(&x, None, &mut Mode::Train(&mut rng)).unwrap();
        let (lo, hi) = (
            x.min_all().unwrap().to_scalar::<f32>().unwrap(),
            x.max_all().unwrap().to_scalar::<f32>().unwrap(),
        );
        assert!(lo >= -1.0 && hi <= 1.0, "tanh output in [-1, 1]");
        assert_eq!(out.logits.dtype(), DType::F32);
        (
            x.dims().to_vec(),
            out.logits.dims().to_vec(),
            out.features.dim(0).unwrap(),
        )
    }

    #[test]
    fn output_shapes_for_several_sizes() {
        assert_eq!(shapes("dcgan28", 28, 1).0, vec![3, 1, 28, 28]);
        for (size, c) in [(32, 1), (64, 3), (128, 1)] {
            let (x, logits, feats) = shapes("dcgan64", size, c);
            assert_eq!(x, vec![3, c, size, size]);
            assert_eq!(logits, vec![3]);
            assert_eq!(feats, 3);
        }
        assert_eq!(shapes("mlp", 28, 1).0, vec![3, 1, 28, 28]);
        for arch in ["allconv", "resnet"] {
            for (size, c) in [(28, 1), (16, 3), (64, 1)] {
                let (x, logits, _) = shapes(arch, size, c);
                assert_eq!(x, vec![3, c, size, size], "{arch} {size}");
                assert_eq!(logits, vec![3], "{arch} {size}");
            }
        }
        assert_eq!(shapes("mlp", 16, 3).1, vec![3]);
    }

    #[test]
    fn critics_with_every_norm_give_one_score_per_image() {
        for (arch, size) in [("dcgan28", 28), ("dcgan64", 64)] {
            for extra in [
                ["model.d_norm=layer", "model.critic=default"],
                ["model.d_norm=none", "model.critic=conv4"],
                ["model.d_norm=batch", "model.critic=conv4"],
            ] {
                let mut sets: Vec<String> = vec![
                    format!("model.arch={arch}"),
                    format!("data.image_size={size}"),
                    "model.g_width=4".into(),
                    "model.d_width=4".into(),
                ];
                sets.extend(extra.iter().map(|s| s.to_string()));
                let cfg = Config::from_toml_str("", "t", &sets).unwrap();
                let gs = ParamStore::new(Rng::new(0, 1), &Device::Cpu);
                let ds = ParamStore::new(Rng::new(0, 2), &Device::Cpu);
                let (_, d) = build(&cfg, &gs, &ds).unwrap();
                let x = Tensor::zeros((2, 1, size, size), DType::F32, &Device::Cpu).unwrap();
                let out = d.forward(&x, None, &mut Mode::Eval).unwrap();
                assert_eq!(out.logits.dims(), &[2], "{arch} {extra:?}");
                let names: Vec<String> = ds.vars().keys().cloned().collect();
                let want = if extra[0].ends_with("layer") {
                    "ln2.weight"
                } else if extra[0].ends_with("batch") {
                    "bn2.weight"
                } else {
                    "conv2.bias"
                };
                assert!(
                    names.iter().any(|n| n == want),
                    "{arch} {extra:?}: {names:?}"
                );
            }
        }
    }

    #[test]
    fn the_projection_discriminator_adds_the_class_embedding_times_the_features() {
        let sets: Vec<String> = ["model.classes=3", "model.d_width=4", "model.g_width=4"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let cfg = Config::from_toml_str("", "t", &sets).unwrap();
        let gs = ParamStore::new(Rng::new(0, 1), &Device::Cpu);
        let ds = ParamStore::new(Rng::new(0, 2), &Device::Cpu);
        let (_, d) = build(&cfg, &gs, &ds).unwrap();
        assert_eq!(
            gs.tensors()["fc.weight"].dims()[1],
            100 + 3,
            "z joined to the one-hot"
        );
        let embed = ds.tensors()["embed.weight"].clone();
        assert_eq!(embed.dims(), &[3, 8 * 7 * 7]);
        let x = Tensor::randn(0f32, 1.0, (2, 1, 28, 28), &Device::Cpu).unwrap();
        let labels = Tensor::new(&[2u32, 0], &Device::Cpu).unwrap();
        let out = d.forward(&x, Some(&labels), &mut Mode::Eval).unwrap();
        // The unconditional part: the inner discriminator over the same weights.
        let plain = Config::from_toml_str(
            "",
            "t",
            &["model.d_width=4".to_string(), "model.g_width=4".to_string()],
        )
        .unwrap();
        let inner = build_discriminator(&plain, ds.var_builder()).unwrap();
        let base = inner.forward(&x, None, &mut Mode::Eval).unwrap();
        let e = embed.index_select(&labels, 0).unwrap();
        let want = (base.logits + (e * &base.features).unwrap().sum(1).unwrap()).unwrap();
        let (got, want) = (
            out.logits.to_vec1::<f32>().unwrap(),
            want.to_vec1::<f32>().unwrap(),
        );
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() < 1e-5, "{got:?} vs {want:?}");
        }
        let other = Tensor::new(&[1u32, 1], &Device::Cpu).unwrap();
        let moved = d.forward(&x, Some(&other), &mut Mode::Eval).unwrap();
        assert_ne!(
            moved.logits.to_vec1::<f32>().unwrap(),
            got,
            "the class matters"
        );
        let e = d
            .forward(&x, None, &mut Mode::Eval)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("classes"), "{e}");
    }

    #[test]
    fn weights_have_readable_names() {
        let cfg = Config::from_toml_str(
            "",
            "t",
            &["model.arch=dcgan64".into(), "data.image_size=64".into()],
        )
        .unwrap();
        let gs = ParamStore::new(Rng::new(0, 1), &Device::Cpu);
        let ds = ParamStore::new(Rng::new(0, 2), &Device::Cpu);
        build(&cfg, &gs, &ds).unwrap();
        let g: Vec<String> = gs.vars().keys().cloned().collect();
        assert!(g.contains(&"fc.weight".to_string()), "{g:?}");
        assert!(g.contains(&"deconv1.weight".to_string()), "{g:?}");
        assert!(g.contains(&"bn1.running_mean".to_string()), "{g:?}");
        let d = ds.tensors();
        assert_eq!(d["conv4.weight"].dims(), &[512, 256, 5, 5]);
        assert_eq!(d["fc.weight"].dims(), &[1, 512 * 4 * 4]);
    }
}
