//! LeakyReLU in one pass, y = x (x > 0) or slope·x, with a backward pass in one pass.
//!
//! Composed from candle ops it costs five passes forward and more backward. The gradient is
//! g·m(x) with m = 1 or slope: [`LeakyGrad`] computes it, and is its own derivative in g
//! (its derivative in x is zero almost everywhere), so second-order gradients stay exact.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Result, Shape, Tensor};
use multiversion::multiversion;

use super::cpu::Element;
use super::ours;
use super::parallel;
use super::storage::{CHUNK, Kernel1, Kernel2, apply1, apply2};

/// LeakyReLU with negative-side `slope`.
pub fn leaky_relu(x: &Tensor, slope: f64) -> Result<Tensor> {
    if !ours(x) {
        return x.relu()? - (x.neg()?.relu()? * slope)?;
    }
    x.contiguous()?.apply_op1(LeakyRelu { slope })
}

/// The gradient of LeakyReLU at `x` (or at its output, which has the same sign) times `g`.
pub fn leaky_relu_grad(g: &Tensor, x: &Tensor, slope: f64) -> Result<Tensor> {
    if !ours(g) {
        let up = x.detach().gt(0.0)?.to_dtype(g.dtype())?;
        return g * ((up * (1.0 - slope))? + slope)?;
    }
    // x enters the gradient only through its sign: detached, so the graph of this
    // gradient does not route (zero) derivatives back to it.
    g.contiguous()?.apply_op2(&x.detach(), LeakyGrad { slope })
}

/// LeakyReLU applied in place to `v`.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
pub(crate) fn leaky_in_place<T: Element>(v: &mut [T], slope: T) {
    v.iter_mut().for_each(|x| *x = *x * factor(*x, slope));
}

/// out ← LeakyReLU(x).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn leaky_into<T: Element>(out: &mut [T], x: &[T], slope: T) {
    for (v, &xv) in out.iter_mut().zip(x) {
        *v = xv * factor(xv, slope);
    }
}

/// out ← g·(1 if x > 0 else slope).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn leaky_grad_into<T: Element>(out: &mut [T], g: &[T], x: &[T], slope: T) {
    for ((v, &gv), &xv) in out.iter_mut().zip(g).zip(x) {
        *v = gv * factor(xv, slope);
    }
}

#[inline]
fn factor<T: Element>(x: T, slope: T) -> T {
    if x > T::zero() { T::one() } else { slope }
}

struct LeakyRelu {
    slope: f64,
}

impl Kernel1 for LeakyRelu {
    fn run<T: Element>(&self, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        let slope = T::from_f64(self.slope);
        let y = parallel::filled(x.len(), CHUNK, |i, c| leaky_into(c, &x[i * CHUNK..], slope));
        Ok((y, sx.clone()))
    }
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "gankit-leaky-relu"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }
    fn bwd(&self, x: &Tensor, _y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        leaky_relu_grad(g, x, self.slope).map(Some)
    }
}

/// (g, x) → g·(1 if x > 0 else slope).
struct LeakyGrad {
    slope: f64,
}

impl Kernel2 for LeakyGrad {
    fn run<T: Element>(&self, g: &[T], sg: &Shape, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        if sg != sx {
            candle_core::bail!("leaky-relu gradient {sg:?} for input {sx:?}");
        }
        let slope = T::from_f64(self.slope);
        let out = parallel::filled(g.len(), CHUNK, |i, o| {
            leaky_grad_into(o, &g[i * CHUNK..], &x[i * CHUNK..], slope)
        });
        Ok((out, sg.clone()))
    }
}

impl CustomOp2 for LeakyGrad {
    fn name(&self) -> &'static str {
        "gankit-leaky-relu-grad"
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
    fn bwd(
        &self,
        _g: &Tensor,
        x: &Tensor,
        _out: &Tensor,
        up: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let slope = self.slope;
        let d_g = up
            .contiguous()?
            .apply_op2(&x.detach(), LeakyGrad { slope })?;
        Ok((Some(d_g), None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_rel, rand};
    use candle_core::{DType, Var};

    #[test]
    fn matches_the_composed_op_with_gradients() {
        let x = Var::from_tensor(&rand(&[3, 4, 5, 7], 1, DType::F32)).unwrap();
        let ours_y = leaky_relu(&x, 0.2).unwrap();
        let theirs =
            (x.relu().unwrap() - (x.neg().unwrap().relu().unwrap() * 0.2).unwrap()).unwrap();
        assert!(max_rel(&ours_y, &theirs) < 1e-7);
        let r = rand(&[3, 4, 5, 7], 2, DType::F32);
        let ga = (ours_y * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let gb = (theirs * &r)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(max_rel(ga.get(&x).unwrap(), gb.get(&x).unwrap()) < 1e-7);
    }
}
