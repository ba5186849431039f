//! Batch normalisation over (n, c) or (n, c, h, w) in fused passes: statistics, the affine
//! map, and a backward pass of two passes (per-channel sums, then the input gradient).
//!
//! Composed from candle ops, batch norm took a dozen passes forward and reduced its
//! gradients with candle's generic strided sums. Here the per-channel mean and inverse
//! standard deviation are computed once (f64 accumulators, two passes for the variance)
//! and travel with the op, so the backward pass reuses them.
//!
//! The backward pass is first-order only: batch norm never sits under a gradient penalty
//! (a batch-norm critic with a penalty is refused by the config), so no second derivative
//! of these ops is ever taken.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use multiversion::multiversion;

use super::cpu::Element;
use super::lanes;
use super::leaky_relu::{leaky_in_place, leaky_relu_grad};
use super::parallel;
use super::storage::{CHUNK, Kernel1, Kernel2, Kernel3, apply1, apply2, apply3, ncs};

/// Per-channel mean and biased variance of x (n, c[, h, w]): ([mean], [var]) in f64.
pub fn channel_moments(x: &Tensor) -> Result<(Vec<f64>, Vec<f64>)> {
    let m = x.contiguous()?.apply_op1_no_bwd(&Moments)?;
    let m = m.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
    let mut it = m.into_iter();
    Ok((it.next().unwrap_or_default(), it.next().unwrap_or_default()))
}

/// y = (x − mean[c]) · inv_std[c] · gamma[c] + beta[c], then LeakyReLU with negative-side
/// slope `activation` when given (0 for ReLU) in the same pass.
///
/// With batch statistics the backward pass differentiates through them; running statistics
/// (evaluation mode) are constants.
pub fn normalize(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    stats: Statistics,
    activation: Option<f64>,
) -> Result<Tensor> {
    x.contiguous()?.apply_op3(
        &gamma.contiguous()?,
        &beta.contiguous()?,
        Normalize { stats, activation },
    )
}

/// The per-channel statistics a batch norm normalises with.
#[derive(Clone, Debug)]
pub struct Statistics {
    pub mean: Vec<f64>,
    pub inv_std: Vec<f64>,
    /// The batch's own (from [`channel_moments`]), or fixed running statistics.
    pub batch: bool,
}

/// Per-channel reductions: `f(channels, out)` fills the `width` results of each channel of a
/// block (out holds them channel after channel); channels are split in fixed blocks across
/// threads, each channel summed in one fixed order.
fn per_channel(
    (n, c, s): (usize, usize, usize),
    width: usize,
    f: impl Fn(std::ops::Range<usize>, &mut [f64]) + Sync,
) -> Vec<f64> {
    let block = (CHUNK / (n * s).max(1)).clamp(1, c.max(1));
    let mut out = vec![0f64; c * width];
    parallel::chunks_mut(&mut out, block * width, |bi, dst| {
        let first = bi * block;
        f(first..first + dst.len() / width, dst);
    });
    out
}

/// Per-channel sums over the batch of f(g, x) for (n, c) inputs (one value per channel and
/// sample): added row by row, the channels of a block side by side (contiguous reads,
/// vectorised), for channels `range`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn row_sums<T: Element>(
    (n, c): (usize, usize),
    range: std::ops::Range<usize>,
    a: &[T],
    b: &[T],
    f: impl Fn(usize, T, T) -> f64,
) -> Vec<f64> {
    let mut acc = vec![0f64; range.len()];
    for ni in 0..n {
        let r = ni * c + range.start..ni * c + range.end;
        for (j, ((t, &av), &bv)) in acc.iter_mut().zip(&a[r.clone()]).zip(&b[r]).enumerate() {
            *t += f(range.start + j, av, bv);
        }
    }
    acc
}

/// (c, 2) interleaved f64 results → (2, c) tensor data.
fn two_rows<T: Element>(v: &[f64], c: usize) -> Vec<T> {
    (0..2)
        .flat_map(|r| (0..c).map(move |ci| T::from_f64(v[2 * ci + r])))
        .collect()
}

/// x → (2, c): per-channel mean and biased variance.
struct Moments;

impl Kernel1 for Moments {
    fn run<T: Element>(&self, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        let (n, c, s) = ncs(sx)?;
        let count = (n * s) as f64;
        let planes = |ci: usize| (0..n).map(move |ni| &x[(ni * c + ci) * s..][..s]);
        let mv = per_channel((n, c, s), 2, |range, dst| {
            if s == 1 {
                let means: Vec<f64> = row_sums((n, c), range.clone(), x, x, |_, v, _| v.to_f64())
                    .into_iter()
                    .map(|t| t / count)
                    .collect();
                let vars = row_sums((n, c), range.clone(), x, x, |ci, v, _| {
                    (v.to_f64() - means[ci - range.start]).powi(2)
                });
                for ((d, m), v) in dst.chunks_mut(2).zip(means).zip(vars) {
                    d[0] = m;
                    d[1] = v / count;
                }
                return;
            }
            for (ci, d) in range.zip(dst.chunks_mut(2)) {
                let mean = planes(ci).map(lanes::sum).sum::<f64>() / count;
                let var = planes(ci)
                    .map(|p| lanes::squared_deviations(p, mean))
                    .sum::<f64>()
                    / count;
                d[0] = mean;
                d[1] = var;
            }
        });
        Ok((two_rows(&mv, c), Shape::from((2, c))))
    }
}

impl CustomOp1 for Moments {
    fn name(&self) -> &'static str {
        "gankit-bn-moments"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }
}

/// (x, gamma, beta) → y, with the statistics fixed in the op.
struct Normalize {
    stats: Statistics,
    activation: Option<f64>,
}

impl Kernel3 for Normalize {
    fn run<T: Element>(
        &self,
        x: &[T],
        sx: &Shape,
        gamma: &[T],
        _: &Shape,
        beta: &[T],
        _: &Shape,
    ) -> Result<(Vec<T>, Shape)> {
        let (_, c, s) = ncs(sx)?;
        let Statistics { mean, inv_std, .. } = &self.stats;
        if gamma.len() != c || beta.len() != c || mean.len() != c {
            candle_core::bail!("batch norm over {c} channels got parameters of another size");
        }
        // y = x·scale + shift per channel.
        let scale: Vec<T> = (0..c)
            .map(|i| T::from_f64(gamma[i].to_f64() * inv_std[i]))
            .collect();
        let shift: Vec<T> = (0..c)
            .map(|i| T::from_f64(beta[i].to_f64() - mean[i] * gamma[i].to_f64() * inv_std[i]))
            .collect();
        let slope = self.activation.map(T::from_f64);
        let y = parallel::filled(x.len(), c * s, |i, row| {
            normalize_sample(row, &x[i * c * s..], &scale, &shift, s, slope)
        });
        Ok((y, sx.clone()))
    }
}

impl CustomOp3 for Normalize {
    fn name(&self) -> &'static str {
        "gankit-batch-norm"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        apply3(self, s1, l1, s2, l2, s3, l3)
    }
    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        _beta: &Tensor,
        y: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        // Through the activation first: y > 0 exactly where its input is.
        let g = match self.activation {
            Some(slope) => leaky_relu_grad(g, y, slope)?,
            None => g.contiguous()?,
        };
        let stats = Stats {
            mean: self.stats.mean.clone(),
            inv_std: self.stats.inv_std.clone(),
        };
        // sums (2, c): Σ g and Σ g·x̂ per channel = dβ and dγ.
        let sums = x.apply_op2_no_bwd(&g, &stats)?;
        let sums_host = sums.to_dtype(candle_core::DType::F64)?.to_vec2::<f64>()?;
        let gamma_host = gamma.to_dtype(candle_core::DType::F64)?.to_vec1::<f64>()?;
        let dx = x.apply_op2_no_bwd(
            &g,
            &InputGrad {
                mean: self.stats.mean.clone(),
                inv_std: self.stats.inv_std.clone(),
                gamma: gamma_host,
                sum_g: sums_host[0].clone(),
                sum_gx: sums_host[1].clone(),
                batch_stats: self.stats.batch,
            },
        )?;
        Ok((Some(dx), Some(sums.get(1)?), Some(sums.get(0)?)))
    }
}

/// (x, g) → (2, c): Σ g and Σ g·x̂ per channel, x̂ = (x − mean)·inv_std.
struct Stats {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
}

impl Kernel2 for Stats {
    fn run<T: Element>(&self, x: &[T], sx: &Shape, g: &[T], sg: &Shape) -> Result<(Vec<T>, Shape)> {
        if sx != sg {
            candle_core::bail!("batch-norm gradient {sg:?} for input {sx:?}");
        }
        let (n, c, s) = ncs(sx)?;
        let sums = per_channel((n, c, s), 2, |range, dst| {
            if s == 1 {
                let sg = row_sums((n, c), range.clone(), g, g, |_, gv, _| gv.to_f64());
                let sgx = row_sums((n, c), range.clone(), g, x, |ci, gv, xv| {
                    gv.to_f64() * (xv.to_f64() - self.mean[ci]) * self.inv_std[ci]
                });
                for ((d, a), b) in dst.chunks_mut(2).zip(sg).zip(sgx) {
                    d[0] = a;
                    d[1] = b;
                }
                return;
            }
            for (ci, d) in range.zip(dst.chunks_mut(2)) {
                let (m, is) = (self.mean[ci], self.inv_std[ci]);
                let (mut sg_, mut sgx) = (0f64, 0f64);
                for ni in 0..n {
                    let at = (ni * c + ci) * s;
                    let (xp, gp) = (&x[at..at + s], &g[at..at + s]);
                    sg_ += lanes::sum(gp);
                    sgx += lanes::dot_deviations(gp, xp, m) * is;
                }
                d[0] = sg_;
                d[1] = sgx;
            }
        });
        Ok((two_rows(&sums, c), Shape::from((2, c))))
    }
}

impl CustomOp2 for Stats {
    fn name(&self) -> &'static str {
        "gankit-batch-norm-grad-sums"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        apply2(self, s1, l1, s2, l2)
    }
}

/// (x, g) → dx = γ·inv_std·(g − Σg/N − x̂·Σ(g·x̂)/N) with batch statistics, or γ·inv_std·g.
struct InputGrad {
    mean: Vec<f64>,
    inv_std: Vec<f64>,
    gamma: Vec<f64>,
    sum_g: Vec<f64>,
    sum_gx: Vec<f64>,
    batch_stats: bool,
}

impl Kernel2 for InputGrad {
    fn run<T: Element>(&self, x: &[T], sx: &Shape, g: &[T], _: &Shape) -> Result<(Vec<T>, Shape)> {
        let (n, c, s) = ncs(sx)?;
        let count = (n * s) as f64;
        // dx = g·a + x·b + k per channel, folded from the formula above.
        let mut a = vec![T::zero(); c];
        let mut b = vec![T::zero(); c];
        let mut k = vec![T::zero(); c];
        for ci in 0..c {
            let gi = self.gamma[ci] * self.inv_std[ci];
            if self.batch_stats {
                let beta_ = self.sum_gx[ci] / count * self.inv_std[ci];
                a[ci] = T::from_f64(gi);
                b[ci] = T::from_f64(-gi * beta_);
                k[ci] = T::from_f64(gi * (beta_ * self.mean[ci] - self.sum_g[ci] / count));
            } else {
                a[ci] = T::from_f64(gi);
            }
        }
        let dx = parallel::filled(x.len(), c * s, |i, d| {
            let at = i * c * s;
            input_grad_sample(d, &x[at..], &g[at..], [&a, &b, &k], s)
        });
        Ok((dx, sx.clone()))
    }
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "gankit-batch-norm-input-grad"
    }
    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        apply2(self, s1, l1, s2, l2)
    }
}

/// One sample (c channels of s values): y = x·scale[c] + shift[c], then LeakyReLU with
/// `slope` when given.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn normalize_sample<T: Element>(
    row: &mut [T],
    xs: &[T],
    scale: &[T],
    shift: &[T],
    s: usize,
    slope: Option<T>,
) {
    if s == 1 {
        let affine = scale.iter().zip(shift);
        for ((v, &xv), (&a, &b)) in row.iter_mut().zip(xs).zip(affine) {
            *v = xv * a + b;
        }
    } else {
        let planes = row.chunks_mut(s).zip(xs.chunks(s));
        for ((plane, xp), (&a, &b)) in planes.zip(scale.iter().zip(shift)) {
            plane
                .iter_mut()
                .zip(xp)
                .for_each(|(v, &xv)| *v = xv * a + b);
        }
    }
    if let Some(slope) = slope {
        leaky_in_place(row, slope);
    }
}

/// One sample (c channels of s values) of the input gradient: dx = g·a[c] + x·b[c] + k[c].
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn input_grad_sample<T: Element>(d: &mut [T], xr: &[T], gr: &[T], [a, b, k]: [&[T]; 3], s: usize) {
    if s == 1 {
        let coef = a.iter().zip(b).zip(k);
        for (((dv, &xv), &gv), ((&ac, &bc), &kc)) in d.iter_mut().zip(xr).zip(gr).zip(coef) {
            *dv = gv * ac + xv * bc + kc;
        }
        return;
    }
    for ci in 0..a.len() {
        let r = ci * s..(ci + 1) * s;
        let (ac, bc, kc) = (a[ci], b[ci], k[ci]);
        for ((dv, &xv), &gv) in d[r.clone()].iter_mut().zip(&xr[r.clone()]).zip(&gr[r]) {
            *dv = gv * ac + xv * bc + kc;
        }
    }
}
