//! Config sections of the GAN objectives: the loss, WGAN's clipping, the gradient penalty,
//! LSGAN's α schedule and label smoothing.

use serde::{Deserialize, Serialize};

/// The GAN objective (`train.loss`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LossKind {
    /// BCE; G minimises E[log(1 − D(G(z)))] (the original, saturating minimax game).
    Minimax,
    /// BCE; G maximises E[log D(G(z))] (Goodfellow's non-saturating heuristic).
    NonSaturating,
    /// Wasserstein critic with weight clipping to [−c, c] (`[wgan]`).
    Wgan,
    /// Wasserstein critic with a gradient penalty (`[gp]`).
    WganGp,
    /// Least squares (report 001 eqs. 8–10), with the regularising factor α (`[lsgan.alpha]`).
    Lsgan,
    /// Hinge loss (BigGAN / BigBiGAN).
    Hinge,
}

impl LossKind {
    /// True for the losses on probabilities (binary cross-entropy).
    pub fn is_bce(self) -> bool {
        matches!(self, LossKind::Minimax | LossKind::NonSaturating)
    }
}

/// Label smoothing of D's targets (`train.label_smoothing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabelSmoothing {
    None,
    /// Real target 0.9 (Salimans et al. 2016, one-sided).
    OneSided,
    /// Random targets per sample: real ~ U[0.7, 1.2], fake ~ U[0, 0.3] (report 001).
    Salimans,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WganConfig {
    /// Every critic weight is clipped to [−clip, clip] after each critic step; 0 leaves the
    /// critic unconstrained (report 004 Fig. 2a: its Lipschitz bound grows without end).
    /// Default 0.01.
    pub clip: f64,
    /// Report 001 §4.2's regularising factor, tried on WGAN too: the critic minimises
    /// (1 − α)·E[D(G(z))] − E[D(x)], so α moves the fakes' target towards the reals' (0:
    /// plain WGAN; 1: fakes ignored). gankit's reading of "α on the fake target" for a
    /// loss without targets; scheduled like LSGAN's. Default: off.
    pub alpha: AlphaSchedule,
}

impl Default for WganConfig {
    fn default() -> Self {
        WganConfig {
            clip: 0.01,
            alpha: AlphaSchedule::default(),
        }
    }
}

/// How the gradient penalty is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PenaltyMode {
    /// (‖∇x̂ D(x̂)‖₂ − 1)², exactly, through a second backward pass.
    Exact,
    /// Report 003 eq. 21: (|D(x₁) − D(x₂)| / ‖x₁ − x₂‖ − 1)² for two interpolates per sample.
    FiniteDifference,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpConfig {
    /// Weight λ of the penalty. Default 10.
    pub lambda: f64,
    /// "exact" or "finite-difference". Default "exact".
    pub mode: PenaltyMode,
    /// The gradient norm K the penalty pulls towards: E[(‖∇x̂ D‖ − K)²] (report 003 eq. 18;
    /// Gulrajani et al. 2017 use 1). Default 1.
    pub target: f64,
}

impl Default for GpConfig {
    fn default() -> Self {
        GpConfig {
            lambda: 10.0,
            mode: PenaltyMode::Exact,
            target: 1.0,
        }
    }
}

/// Shape of α's ramp from 0 (at `start`) to `max` (at `end`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RampShape {
    Linear,
    /// A staircase of `levels` equal steps.
    Step,
    /// 3u² − 2u³.
    SmoothStep,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlphaSchedule {
    /// "linear", "step" or "smooth-step". Default "linear".
    pub shape: RampShape,
    /// Iteration until which α = 0. Default 0.
    pub start: u64,
    /// Iteration at which α reaches `max` (and stays). Default 0.
    pub end: u64,
    /// Final α: 0 disables the regulariser (report 001 tries 0.3, 0.5, 0.9). Default 0.
    pub max: f64,
    /// Number of steps of the "step" shape. Default 4.
    pub levels: u32,
}

impl Default for AlphaSchedule {
    fn default() -> Self {
        AlphaSchedule {
            shape: RampShape::Linear,
            start: 0,
            end: 0,
            max: 0.0,
            levels: 4,
        }
    }
}

impl AlphaSchedule {
    /// α at iteration `t`.
    pub fn at(&self, t: u64) -> f64 {
        if self.max == 0.0 || t <= self.start {
            return 0.0;
        }
        if t >= self.end {
            return self.max;
        }
        let u = (t - self.start) as f64 / (self.end - self.start) as f64;
        let shaped = match self.shape {
            RampShape::Linear => u,
            RampShape::Step => (u * self.levels as f64).floor() / self.levels as f64,
            RampShape::SmoothStep => u * u * (3.0 - 2.0 * u),
        };
        self.max * shaped
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LsganConfig {
    /// The regularising factor α on the fake target (report 001 eq. 10).
    pub alpha: AlphaSchedule,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_follows_each_shape_at_start_middle_and_end() {
        let mk = |shape| AlphaSchedule {
            shape,
            start: 100,
            end: 300,
            max: 0.5,
            levels: 4,
        };
        for shape in [RampShape::Linear, RampShape::Step, RampShape::SmoothStep] {
            let a = mk(shape);
            assert_eq!(a.at(0), 0.0);
            assert_eq!(a.at(100), 0.0, "{shape:?} is 0 at start");
            assert_eq!(a.at(300), 0.5, "{shape:?} reaches max at end");
            assert_eq!(a.at(10_000), 0.5);
        }
        assert!((mk(RampShape::Linear).at(200) - 0.25).abs() < 1e-12);
        assert!((mk(RampShape::Linear).at(150) - 0.125).abs() < 1e-12);
        assert!((mk(RampShape::SmoothStep).at(200) - 0.25).abs() < 1e-12);
        // smooth-step at u = 1/4: 3/16 − 2/64 = 0.15625 of max.
        assert!((mk(RampShape::SmoothStep).at(150) - 0.5 * 0.15625).abs() < 1e-12);
        // four stairs: u = 0.5 → 2/4; u = 0.49 → 1/4.
        assert!((mk(RampShape::Step).at(200) - 0.25).abs() < 1e-12);
        assert!((mk(RampShape::Step).at(199) - 0.125).abs() < 1e-12);
        assert_eq!(AlphaSchedule::default().at(5), 0.0);
    }
}

/// What training does when a loss or a weight becomes NaN or infinite (`train.on_nan`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnNan {
    /// Stop with an error naming the iteration and the value; the last checkpoint is kept.
    Stop,
    /// Reload the last checkpoint, multiply both learning rates by
    /// `train.rollback_lr_factor` and go on, at most `train.max_rollbacks` times.
    Rollback,
}
