//! The experiment configuration: one strict TOML file per experiment.
//!
//! Every section and key has a default (documented on its field and in the README), so an
//! empty file is the default experiment. Unknown or misspelt keys are errors that name the
//! key and the valid ones. `--set section.key=value` overrides are applied to the parsed
//! TOML before it is checked, so they are held to the same rules.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::IoContext;
use crate::{Error, Result};

mod families;
mod flat;
pub mod limits;
mod objective;
mod stabilize;

pub use families::{BiganConfig, InfoGanConfig, ProgressiveConfig, SigmaMode, VaeganConfig};
pub use flat::{differences, flatten, flatten_in_use, flatten_toml};
pub use objective::{
    AlphaSchedule, GpConfig, LabelSmoothing, LossKind, LsganConfig, OnNan, PenaltyMode, RampShape,
    WganConfig,
};
pub use stabilize::{
    AugmentConfig, AugmentOp, AugmentPolicy, EmaConfig, InstanceNoiseConfig, PretrainConfig,
    PretrainLoss,
};

/// A whole experiment.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub model: ModelConfig,
    pub data: DataConfig,
    pub train: TrainConfig,
    pub optim: OptimConfig,
    pub log: LogConfig,
    pub checkpoint: CheckpointConfig,
    pub wgan: WganConfig,
    pub gp: GpConfig,
    pub lsgan: LsganConfig,
    pub eval: EvalConfig,
    pub ema: EmaConfig,
    pub augment: AugmentConfig,
    pub instance_noise: InstanceNoiseConfig,
    pub pretrain: PretrainConfig,
    pub infogan: InfoGanConfig,
    pub bigan: BiganConfig,
    pub vaegan: VaeganConfig,
    pub progressive: ProgressiveConfig,
}

/// Evaluation during training (`gankit evaluator train` must have made the evaluator).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Score the generator every this many iterations; 0 = never. Default 0.
    pub every: u64,
    /// Generated (and real) images per evaluation. Default 2000.
    pub n: usize,
    /// The evaluator's name, as `gankit evaluator train --dataset` saved it, "random-features"
    /// (an untrained network, for data without labels), "inception" (pytorch-fid's
    /// Inception-v3, once imported; slow on a CPU: keep `n` small), or "auto": the data
    /// set's own (see `evaluator::default_for`). Default "auto".
    pub evaluator: String,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: 0,
            n: 2000,
            evaluator: "auto".into(),
        }
    }
}

/// Which generator / discriminator pair to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Arch {
    /// Two-layer DCGAN for 28×28 images (4×4 kernels).
    Dcgan28,
    /// Report 000's DCGAN (5×5 kernels, four stride-2 layers) for any power-of-two size ≥ 32.
    Dcgan64,
    /// Report 004's vanilla GAN: four linear layers on each side.
    Mlp,
    /// All-convolutional DCGAN (report 002; report 001's 64×64 networks): 4×4 kernels,
    /// stride 2, padding 1, a transposed convolution from z to the first map and a
    /// convolution from the last map to the score; 28×28 or any power-of-two side ≥ 16.
    Allconv,
    /// Residual blocks (SN-GAN, Miyato et al. 2018; named in reports 002 and 003 §4):
    /// up-sampling blocks in G, down-sampling blocks in D; 28×28 or a power of two ≥ 16.
    Resnet,
    /// Progressive growing (Karras et al. 2018; report 001 §2.4): from 4×4 (7×7 at 28)
    /// to the image side, a block at a time, each faded in (`[progressive]`).
    Progressive,
}

impl Arch {
    /// The side of the first feature map (and of progressive growing's first phase).
    pub fn base_side(image_size: usize) -> usize {
        if image_size == 28 { 7 } else { 4 }
    }
}

/// What is trained (`model.family`): see the `family` module.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FamilyKind {
    /// A generator and a discriminator, trained with `train.loss`.
    Gan,
    /// InfoGAN: G's latent adds codes that a Q head on D predicts (`[infogan]`).
    Infogan,
    /// BiGAN / ALI: an encoder E and a discriminator of pairs (x, z) (`[bigan]`).
    Bigan,
    /// BigBiGAN: BiGAN with the image, latent and joint scores and the hinge loss.
    Bigbigan,
    /// VAE-GAN: E gives μ and log σ², G decodes, D's features measure the reconstruction
    /// (`[vaegan]`).
    Vaegan,
    /// Three networks and a shared-body parameter group, for the trainer's tests.
    #[cfg(test)]
    ThreeNetTest,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// The model family: "gan", "infogan", "bigan", "bigbigan" or "vaegan". Default "gan".
    pub family: FamilyKind,
    /// Architecture: "dcgan28", "dcgan64", "mlp", "allconv", "resnet" or "progressive".
    /// Default "dcgan28".
    pub arch: Arch,
    /// Length of the noise vector z ~ N(0, I). Default 100.
    pub z_dim: usize,
    /// Generator width: channels of its last hidden layer (doubling towards z). Default 64.
    pub g_width: usize,
    /// Discriminator width: channels of its first layer (doubling with depth). Default 64.
    pub d_width: usize,
    /// Width of the MLP's first generator layer (256 → 512 → 1024). Default 256.
    pub mlp_hidden: usize,
    /// "allconv": extra 3×3 stride-1 layers at G's last hidden map and after D's first
    /// block (the DCGAN code's `n_extra_layers`), to make the networks deeper. Default 0.
    pub extra_layers: usize,
    /// Dropout probability after each hidden layer of the MLP discriminator. Default 0.
    pub d_dropout: f32,
    /// Normalisation in the discriminator's hidden layers: "batch", "layer", "none", or
    /// "auto": batch norm in the DCGAN discriminators, none in report 004's conv critic and
    /// MLP (its §2: batch norm did not help; "batch" adds it to the MLP's hidden layers),
    /// in the residual and progressive ones (as SN-GAN and Karras et al.).
    /// Report 000 uses "layer" for WGAN-GP. Default "auto".
    pub d_norm: Norm,
    /// "default" (the architecture's own discriminator) or "conv4" (report 004's critic: four
    /// 3×3 stride-2 conv blocks, 16 filters doubling, LeakyReLU 0.2). Default "default".
    pub critic: Critic,
    /// Spectrally normalise every layer of the discriminator (Miyato et al. 2018; one
    /// power-iteration step per training pass, u saved in checkpoints). Default false.
    pub spectral_norm: bool,
    /// Spectrally normalise every layer of the generator too (SAGAN, Zhang et al. 2019).
    /// Default false.
    pub g_spectral_norm: bool,
    /// Feature-map sides at which G and D get a self-attention layer (SAGAN; report 003
    /// §5.2), e.g. [14] or [16, 32]; each must be a hidden map side of both networks.
    /// Default [] (none).
    pub attention: Vec<usize>,
    /// "paper" (an N × N map, values of C channels) or "official" (the authors' code: keys
    /// and values max-pooled 2×2, values of C/2 channels and a 1×1 convolution back).
    /// Default "paper".
    pub attention_variant: AttentionVariant,
    /// Networks whose layers are divided by their spectral norm at initialisation, so the
    /// product bound starts at ≤ 1 (report 004 §3.2), e.g. ["d"]. Default [].
    pub normalized_init: Vec<String>,
    /// Classes of a conditional GAN (report 002, "train with labels"): G gets the one-hot
    /// class joined to z, D is a projection discriminator; needs labelled data
    /// (fashion-mnist, or idx with its labels file). 0 = unconditional. Default 0.
    pub classes: usize,
}

/// The self-attention layer's form (`model.attention_variant`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttentionVariant {
    #[default]
    Paper,
    Official,
}

/// Normalisation of the discriminator's hidden layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    /// The architecture's own: see [`ModelConfig::d_norm`].
    Auto,
    Batch,
    Layer,
    None,
}

/// Which discriminator to pair with the generator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Critic {
    Default,
    Conv4,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            family: FamilyKind::Gan,
            arch: Arch::Dcgan28,
            z_dim: 100,
            g_width: 64,
            d_width: 64,
            mlp_hidden: 256,
            extra_layers: 0,
            d_dropout: 0.0,
            d_norm: Norm::Auto,
            critic: Critic::Default,
            spectral_norm: false,
            g_spectral_norm: false,
            attention: Vec::new(),
            attention_variant: AttentionVariant::Paper,
            normalized_init: Vec::new(),
            classes: 0,
        }
    }
}

impl ModelConfig {
    /// The discriminator's normalisation with "auto" resolved: batch norm for the DCGAN
    /// discriminators, none for report 004's conv critic and MLP.
    pub fn d_norm(&self) -> Norm {
        match (self.d_norm, self.critic, self.arch) {
            (Norm::Auto, Critic::Conv4, _)
            | (Norm::Auto, _, Arch::Mlp)
            | (Norm::Auto, _, Arch::Resnet | Arch::Progressive) => Norm::None,
            (Norm::Auto, _, _) => Norm::Batch,
            (n, _, _) => n,
        }
    }
}

/// Where the training images come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    /// Fashion-MNIST: `data.path`, else /usr/share/datasets/fashion-mnist, else the 10k test
    /// split embedded in gankit.
    FashionMnist,
    /// Any MNIST-format IDX image file (raw or .gz) at `data.path`.
    Idx,
    /// A folder of PNG / JPEG images at `data.path`, searched recursively.
    Folder,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// "fashion-mnist", "idx" or "folder". Default "fashion-mnist".
    pub dataset: DatasetKind,
    /// File (idx) or directory (fashion-mnist, folder). Default: none (see `dataset`).
    pub path: Option<PathBuf>,
    /// Fashion-MNIST split: "train" or "test". Default "train".
    pub split: Split,
    /// Side of the square images fed to the models, in pixels. Default 28.
    pub image_size: usize,
    /// 1 (grayscale) or 3 (RGB). Default 1.
    pub channels: usize,
    /// Image files of a folder that cannot be read or decoded: "skip" them (counted in the
    /// run's data line; the default) or "fail" on the first.
    pub unreadable: Unreadable,
    /// Train class by class (report 002): "none", "sequential" (phase p draws only class
    /// `class_order[p mod K]`) or "curriculum" (phase p draws classes `class_order[0..=p]`,
    /// one more each phase). Needs labelled data. Default "none".
    pub class_schedule: ClassSchedule,
    /// The classes in schedule order; [] = every class of the data, in label order.
    /// Default [].
    pub class_order: Vec<u8>,
    /// Iterations per phase of the class schedule. Default 1000.
    pub class_steps: u64,
    /// Folders: keep the decoded images in a cache file (`<home>/data-cache`, memory-mapped by
    /// later runs; `data::cache`). false streams them: each image is decoded from its file
    /// when a batch needs it (`data::stream`). Default true.
    pub cache: bool,
    /// Folders: "none", or "folders" to take each image's class from its first sub-folder
    /// (torchvision's ImageFolder convention), for conditional runs. Default "none".
    pub labels: FolderLabels,
}

/// Where a folder's class labels come from (`data.labels`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FolderLabels {
    None,
    Folders,
}

/// Class-by-class training (`data.class_schedule`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClassSchedule {
    None,
    Sequential,
    Curriculum,
}

/// What a folder data set does with files it cannot decode (`data.unreadable`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unreadable {
    Skip,
    Fail,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            dataset: DatasetKind::FashionMnist,
            path: None,
            split: Split::Train,
            image_size: 28,
            channels: 1,
            unreadable: Unreadable::Skip,
            class_schedule: ClassSchedule::None,
            class_order: Vec::new(),
            class_steps: 1000,
            cache: true,
            labels: FolderLabels::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Training iterations (each: `d_steps` D updates then `g_steps` G updates). Default 3000.
    pub steps: u64,
    /// Images per batch. Default 64.
    pub batch_size: usize,
    /// Discriminator updates per iteration, each on a fresh real batch. Default 1.
    pub d_steps: usize,
    /// Generator updates per iteration (report 000 uses 2). Default 1.
    pub g_steps: usize,
    /// The objective: "minimax", "non-saturating", "wgan", "wgan-gp", "lsgan" or "hinge".
    /// Default "non-saturating".
    pub loss: LossKind,
    /// Update G only on every n-th iteration, or in every n-th epoch (report 004 §2 trains G
    /// every second epoch), as `g_every_unit` says. Default 1.
    pub g_every: u64,
    /// "iterations" or "epochs". Default "iterations".
    pub g_every_unit: GEveryUnit,
    /// D's targets: "none", "one-sided" (real 0.9) or "salimans" (real U[0.7, 1.2], fake
    /// U[0, 0.3]; lsgan only). Default "none".
    pub label_smoothing: LabelSmoothing,
    /// Train G to match the mean of D's last hidden features on real data (report 002 eq. 9)
    /// instead of the objective's generator loss. Default false.
    pub feature_matching: bool,
    /// Seed of every random number in the run. Default 0.
    pub seed: u64,
    /// Worker threads for tensor ops; 0 = all cores; at most 1024. Default 0.
    pub threads: usize,
    /// On a NaN or infinite loss or weight: "stop" (default) or "rollback" to the last
    /// checkpoint with lower learning rates.
    pub on_nan: OnNan,
    /// Rollbacks allowed before the run stops anyway. Default 3.
    pub max_rollbacks: u32,
    /// Each rollback multiplies both learning rates by this, in (0, 1). Default 0.5.
    pub rollback_lr_factor: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            steps: 3000,
            batch_size: 64,
            d_steps: 1,
            g_steps: 1,
            loss: LossKind::NonSaturating,
            g_every: 1,
            g_every_unit: GEveryUnit::Iterations,
            label_smoothing: LabelSmoothing::None,
            feature_matching: false,
            seed: 0,
            threads: 0,
            on_nan: OnNan::Stop,
            max_rollbacks: 3,
            rollback_lr_factor: 0.5,
        }
    }
}

/// What `train.g_every` counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GEveryUnit {
    Iterations,
    Epochs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adam,
    Rmsprop,
    Sgd,
}

/// One optimiser (`[optim.g]` or `[optim.d]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimizerConfig {
    /// "adam", "rmsprop" or "sgd" (with momentum). Default "adam".
    pub kind: OptimizerKind,
    /// Learning rate. Default 0.0002.
    pub lr: f64,
    /// Adam β₁. Default 0.5.
    pub beta1: f64,
    /// Adam β₂. Default 0.999.
    pub beta2: f64,
    /// Adam / RMSProp ε. Default 1e-8.
    pub eps: f64,
    /// RMSProp smoothing constant. Default 0.99.
    pub alpha: f64,
    /// Momentum of SGD and RMSProp. Default 0.
    pub momentum: f64,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        OptimizerConfig {
            kind: OptimizerKind::Adam,
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
            alpha: 0.99,
            momentum: 0.0,
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OptimConfig {
    /// The generator's optimiser.
    pub g: OptimizerConfig,
    /// The discriminator's optimiser.
    pub d: OptimizerConfig,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Write a metrics.csv row every this many iterations. Default 1.
    pub every: u64,
    /// Write samples/step_XXXXXX.png every this many iterations (and at the end). Default 250.
    pub sample_every: u64,
    /// Images in each sample grid (from one fixed noise batch). Default 64.
    pub grid: usize,
    /// Log the norm of G's parameter gradient at each G step (`g_grad_norm`; reports 000,
    /// 002, 003 §1: the minimax loss's saturation shows there). Default false.
    pub g_grad_norm: bool,
    /// Every this many iterations, log D's Lipschitz upper bound (product of its layers'
    /// spectral norms) and the max ‖∇x D‖ on interpolates (report 004 §3.2); 0 = never.
    /// Default 0.
    pub lipschitz_every: u64,
    /// Write per-layer weight histograms of every network at these iterations (0 = before
    /// training) to histograms/step_XXXXXX.png (report 003 §2, Figs. 1–2). Default none.
    pub histograms: Vec<u64>,
    /// Also write TensorBoard event files to RUN/tensorboard/: the metrics.csv values, the
    /// sample grids and the weight histograms (`tensorboard --logdir RUN/tensorboard`).
    /// Default false.
    pub tensorboard: bool,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            every: 1,
            sample_every: 250,
            grid: 64,
            g_grad_norm: false,
            lipschitz_every: 0,
            histograms: Vec::new(),
            tensorboard: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    /// Save a checkpoint every this many iterations (and at the end). Default 500.
    pub every: u64,
    /// How many checkpoints to keep (the newest). Default 3.
    pub keep: usize,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        CheckpointConfig {
            every: 500,
            keep: 3,
        }
    }
}

/// SHA-256 of a config text, leading comment lines left out.
pub fn fingerprint(text: &str) -> String {
    let mut rest = text;
    while rest.starts_with('#') {
        rest = rest.split_once('\n').map_or("", |(_, r)| r);
    }
    hex(&Sha256::digest(rest.as_bytes()))
}

impl Config {
    /// Parse and check a TOML text, applying `--set` style overrides (`section.key=value`).
    pub fn from_toml_str(text: &str, origin: &str, overrides: &[String]) -> Result<Config> {
        let mut table: toml::Table = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!(" line {}:", text[..s.start].lines().count().max(1)))
                .unwrap_or_default();
            Error::Config(format!("{origin}:{line} {}", e.message().trim()))
        })?;
        for o in overrides {
            apply_override(&mut table, o)?;
        }
        let cfg: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let path = e.path().to_string();
                let at = if path == "." {
                    String::new()
                } else {
                    format!(" {path}:")
                };
                Error::Config(format!("{origin}:{at} {}", e.inner().message().trim()))
            })?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Read a config file (see [`Config::from_toml_str`]).
    pub fn load(path: &Path, overrides: &[String]) -> Result<Config> {
        let text = std::fs::read_to_string(path).at(path)?;
        Config::from_toml_str(&text, &path.display().to_string(), overrides)
    }

    /// The resolved config as TOML, every field written out.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serialises")
    }

    /// SHA-256 of the resolved config as TOML ([`fingerprint`] of [`Config::to_toml`]).
    pub fn hash(&self) -> String {
        fingerprint(&self.to_toml())
    }

    /// Check value ranges and combinations; the error says what to change.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let (m, d, t) = (&self.model, &self.data, &self.train);
        if m.z_dim == 0 || m.g_width == 0 || m.d_width == 0 || m.mlp_hidden == 0 {
            return bad("model.z_dim, g_width, d_width and mlp_hidden must be at least 1".into());
        }
        if !(0.0..1.0).contains(&m.d_dropout) {
            return bad(format!(
                "model.d_dropout = {} must be in [0, 1)",
                m.d_dropout
            ));
        }
        if d.channels != 1 && d.channels != 3 {
            return bad(format!(
                "data.channels = {} must be 1 (grayscale) or 3 (RGB)",
                d.channels
            ));
        }
        match m.arch {
            Arch::Dcgan28 if d.image_size != 28 => {
                return bad(format!(
                    "model.arch = \"dcgan28\" needs data.image_size = 28 (got {}); use \"dcgan64\" for other sizes",
                    d.image_size
                ));
            }
            Arch::Dcgan64 if d.image_size < 32 || !d.image_size.is_power_of_two() => {
                return bad(format!(
                    "model.arch = \"dcgan64\" needs data.image_size to be a power of two ≥ 32 (got {})",
                    d.image_size
                ));
            }
            Arch::Allconv | Arch::Resnet | Arch::Progressive
                if !(d.image_size == 28
                    || (d.image_size >= 16 && d.image_size.is_power_of_two())) =>
            {
                return bad(format!(
                    "model.arch = {:?} needs data.image_size = 28 or a power of two ≥ 16 (got {})",
                    m.arch, d.image_size
                ));
            }
            _ => {}
        }
        if d.image_size == 0 || d.image_size > 1024 {
            return bad(format!(
                "data.image_size = {} must be in 1..=1024",
                d.image_size
            ));
        }
        if matches!(d.dataset, DatasetKind::Idx | DatasetKind::Folder) && d.path.is_none() {
            return bad(format!(
                "data.dataset = \"{}\" needs data.path",
                if d.dataset == DatasetKind::Idx {
                    "idx"
                } else {
                    "folder"
                }
            ));
        }
        if !(t.rollback_lr_factor > 0.0 && t.rollback_lr_factor < 1.0) {
            return bad(format!(
                "train.rollback_lr_factor = {} must be in (0, 1)",
                t.rollback_lr_factor
            ));
        }
        if d.class_schedule != ClassSchedule::None {
            let mut seen = d.class_order.clone();
            seen.sort();
            seen.dedup();
            if d.class_steps == 0 || seen.len() != d.class_order.len() {
                return bad("data.class_steps must be at least 1 and data.class_order must not repeat a class".into());
            }
        }
        if t.steps == 0 || t.batch_size == 0 || t.d_steps == 0 || t.g_steps == 0 || t.g_every == 0 {
            return bad(
                "train.steps, batch_size, d_steps, g_steps and g_every must be at least 1".into(),
            );
        }
        self.validate_objective()?;
        for (name, o) in [("g", &self.optim.g), ("d", &self.optim.d)] {
            if !(o.lr > 0.0 && o.lr.is_finite()) {
                return bad(format!(
                    "optim.{name}.lr = {} must be a positive number",
                    o.lr
                ));
            }
            if !(0.0..1.0).contains(&o.beta1) || !(0.0..1.0).contains(&o.beta2) {
                return bad(format!("optim.{name}.beta1 and beta2 must be in [0, 1)"));
            }
            if !(o.eps > 0.0) {
                return bad(format!("optim.{name}.eps must be positive"));
            }
            if !(0.0..1.0).contains(&o.alpha) || !(0.0..1.0).contains(&o.momentum) {
                return bad(format!("optim.{name}.alpha and momentum must be in [0, 1)"));
            }
        }
        if self.log.every == 0 || self.log.sample_every == 0 || self.checkpoint.every == 0 {
            return bad(
                "log.every, log.sample_every and checkpoint.every must be at least 1".into(),
            );
        }
        if self.eval.every > 0 && self.eval.n < 10 {
            return bad(format!(
                "eval.n = {} is too few images to score (at least 10)",
                self.eval.n
            ));
        }
        if self.log.grid == 0 || self.checkpoint.keep == 0 {
            return bad("log.grid and checkpoint.keep must be at least 1".into());
        }
        self.validate_stabilize()?;
        limits::check(self)
    }

    fn validate_stabilize(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let classes = self.model.classes;
        if classes > 256 {
            return bad(format!(
                "model.classes = {classes}: labels are bytes, so at most 256 classes"
            ));
        }
        let folder = self.data.dataset == DatasetKind::Folder;
        if classes > 0 && folder && self.data.labels == FolderLabels::None {
            return bad("model.classes > 0 trains with labels: set data.labels = \"folders\" to take them from the folder's class sub-folders, or set model.classes = 0".into());
        }
        if self.data.labels == FolderLabels::Folders && !folder {
            return bad("data.labels = \"folders\" is for data.dataset = \"folder\"; IDX and Fashion-MNIST labels come from their labels file".into());
        }
        if !(0.0..1.0).contains(&self.ema.decay) {
            return bad(format!(
                "ema.decay = {} must be in [0, 1) (0 = off; 0.999 is typical)",
                self.ema.decay
            ));
        }
        let a = &self.augment;
        if !(0.0..=0.5).contains(&a.translation) || !(0.0..=1.0).contains(&a.cutout) {
            return bad(format!(
                "augment.translation = {} must be in [0, 0.5] and augment.cutout = {} in [0, 1]",
                a.translation, a.cutout
            ));
        }
        let n = &self.instance_noise;
        if !(n.std >= 0.0 && n.std.is_finite()) {
            return bad(format!("instance_noise.std = {} must be ≥ 0", n.std));
        }
        let p = &self.pretrain;
        if p.enabled() && !(p.lr > 0.0 && p.lr.is_finite()) {
            return bad(format!("pretrain.lr = {} must be a positive number", p.lr));
        }
        Ok(())
    }
}

impl Config {
    /// The objectives' own fields' ranges (the rules that combine them with the models
    /// are the objectives', in `objectives::check`).
    fn validate_objective(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        if !(self.wgan.clip >= 0.0 && self.wgan.clip.is_finite()) {
            return bad(format!(
                "wgan.clip = {} must be ≥ 0 (0 = no clipping)",
                self.wgan.clip
            ));
        }
        if !(self.gp.target >= 0.0 && self.gp.target.is_finite()) {
            return bad(format!("gp.target = {} must be ≥ 0", self.gp.target));
        }
        if !(self.gp.lambda >= 0.0 && self.gp.lambda.is_finite()) {
            return bad(format!("gp.lambda = {} must be ≥ 0", self.gp.lambda));
        }
        for (section, a) in [("lsgan", &self.lsgan.alpha), ("wgan", &self.wgan.alpha)] {
            if !(0.0..=1.0).contains(&a.max) {
                return bad(format!("{section}.alpha.max = {} must be in [0, 1]", a.max));
            }
            if a.max > 0.0 && a.end <= a.start {
                return bad(format!(
                    "{section}.alpha.end = {} must be after {section}.alpha.start = {}",
                    a.end, a.start
                ));
            }
            if a.levels == 0 {
                return bad(format!("{section}.alpha.levels must be at least 1"));
            }
        }
        Ok(())
    }
}

/// Lower-case hexadecimal of bytes.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Apply one `section.key=value` override. The value is read as a TOML value when it parses
/// as one (numbers, booleans, quoted strings, arrays) and as a bare string otherwise.
fn apply_override(table: &mut toml::Table, item: &str) -> Result<()> {
    let (key, raw) = item.split_once('=').ok_or_else(|| {
        Error::Config(format!(
            "--set {item:?}: expected section.key=value, e.g. train.steps=300"
        ))
    })?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(Error::Config(format!("--set {item:?}: empty key segment")));
    }
    if raw.trim().is_empty() {
        // `section.key=` takes the key out: its default applies (an optional path unset).
        let (last, sections) = parts.split_last().expect("split yields one part at least");
        let mut cur = Some(table);
        for s in sections {
            cur = cur
                .and_then(|t| t.get_mut(*s))
                .and_then(|v| v.as_table_mut());
        }
        if let Some(t) = cur {
            t.remove(*last);
        }
        return Ok(());
    }
    let value = toml::from_str::<toml::Table>(&format!("v = {}", raw.trim()))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.trim().to_string()));
    let (last, sections) = parts.split_last().expect("split yields one part at least");
    let mut cur = table;
    for s in sections {
        let entry = cur
            .entry(s.to_string())
            .or_insert_with(|| toml::Value::Table(Default::default()));
        cur = entry.as_table_mut().ok_or_else(|| {
            Error::Config(format!("--set {item:?}: `{s}` is a value, not a section"))
        })?;
    }
    cur.insert(last.to_string(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str, sets: &[&str]) -> String {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        Config::from_toml_str(text, "t.toml", &sets)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn empty_file_is_the_default() {
        assert_eq!(
            Config::from_toml_str("", "x", &[]).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn an_empty_override_restores_the_default() {
        let text = "[data]\ndataset = \"folder\"\npath = \"faces\"\n";
        let sets = [
            "data.dataset=fashion-mnist".to_string(),
            "data.path=".to_string(),
        ];
        let c = Config::from_toml_str(text, "t.toml", &sets).unwrap();
        assert_eq!(c.data.path, None);
        // A key that was never set, or a missing section, is no error.
        let sets = ["data.path=".to_string(), "nowhere.key=".to_string()];
        assert_eq!(
            Config::from_toml_str("", "t.toml", &sets).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn shipped_default_config_is_the_default() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../configs/dcgan-fashion.toml");
        assert_eq!(Config::load(&p, &[]).unwrap(), Config::default());
    }

    #[test]
    fn unknown_keys_name_the_key_and_the_valid_ones() {
        let e = err("[optim.g]\nlrr = 0.1\n", &[]);
        assert!(
            e.contains("optim.g") && e.contains("lrr") && e.contains("`lr`"),
            "{e}"
        );
        let e = err("[trian]\nsteps = 3\n", &[]);
        assert!(e.contains("trian") && e.contains("`train`"), "{e}");
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let e = err("[train]\nsteps = = 3\n", &[]);
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn overrides_apply_and_are_checked() {
        let c = Config::from_toml_str(
            "",
            "x",
            &[
                "train.steps=7".into(),
                "model.arch=mlp".into(),
                "optim.d.lr=1e-3".into(),
            ],
        )
        .unwrap();
        assert_eq!(
            (c.train.steps, c.model.arch, c.optim.d.lr),
            (7, Arch::Mlp, 1e-3)
        );
        let e = err("", &["train.stesp=3"]);
        assert!(e.contains("stesp"), "{e}");
        let e = err("", &["train.steps"]);
        assert!(e.contains("section.key=value"), "{e}");
        let e = err("", &["train.steps=\"many\""]);
        assert!(e.contains("train.steps"), "{e}");
    }

    #[test]
    fn out_of_range_values_are_refused() {
        assert!(err("", &["optim.g.lr=-1"]).contains("optim.g.lr"));
        assert!(err("", &["train.d_steps=0"]).contains("d_steps"));
        assert!(err("", &["model.arch=dcgan64", "data.image_size=48"]).contains("power of two"));
        assert!(err("", &["data.image_size=32"]).contains("dcgan28"));
        assert!(err("", &["data.channels=2"]).contains("channels"));
        assert!(err("", &["data.dataset=folder"]).contains("data.path"));
    }

    #[test]
    fn fingerprint_skips_the_header_comment_only() {
        let body = Config::default().to_toml();
        let file = format!("# Resolved configuration\n# of this run\n{body}");
        assert_eq!(fingerprint(&file), Config::default().hash());
        let edited = file.replace("seed = 0", "seed = 1");
        assert_ne!(fingerprint(&edited), Config::default().hash());
    }

    #[test]
    fn resolved_config_round_trips_and_hash_is_stable() {
        let c = Config::default();
        let back = Config::from_toml_str(&c.to_toml(), "x", &[]).unwrap();
        assert_eq!(back, c);
        assert_eq!(back.hash(), c.hash());
        let mut d = c.clone();
        d.train.seed = 1;
        assert_ne!(d.hash(), c.hash());
    }
}
