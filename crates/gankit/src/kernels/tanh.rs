//! tanh on candle's threads. candle 0.11's CPU tanh is a serial loop over libm's `tanhf`;
//! on the generator's output (64×784 values) it took 0.7 ms, as long as a batch norm. The
//! values are libm's (`f32::tanh` / `f64::tanh`); only the loop is split over the threads.
//! The backward pass, g·(1 − y²), is built from candle ops on the output, so it stays
//! differentiable.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};

use super::cpu::Element;
use super::storage::{Kernel1, apply1};
use super::{ours, parallel};

/// Values per work item: tanh costs tens of cycles per value, so small chunks pay off.
const CHUNK: usize = 1 << 11;

/// tanh(x), element-wise.
pub fn tanh(x: &Tensor) -> Result<Tensor> {
    if !ours(x) {
        return x.tanh();
    }
    x.contiguous()?.apply_op1(Tanh)
}

struct Tanh;

impl Kernel1 for Tanh {
    fn run<T: Element>(&self, x: &[T], sx: &Shape) -> Result<(Vec<T>, Shape)> {
        let y = parallel::filled(x.len(), CHUNK, |i, out| {
            for (o, &v) in out.iter_mut().zip(&x[i * CHUNK..]) {
                *o = T::from_f64(v.to_f64().tanh());
            }
        });
        Ok((y, sx.clone()))
    }
}

impl CustomOp1 for Tanh {
    fn name(&self) -> &'static str {
        "gankit-tanh"
    }
    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        apply1(self, s, l)
    }
    fn bwd(&self, _x: &Tensor, y: &Tensor, g: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some((g * (1.0 - y.sqr()?)?)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_rel, rand};
    use candle_core::{DType, Var};

    #[test]
    fn matches_candle_with_first_and_second_derivatives() {
        crate::objectives::penalty::with_second_order(|| {
            let x = (rand(&[3, 1, 70, 50], 5, DType::F64) * 2.0).unwrap();
            let x = Var::from_tensor(&x).unwrap();
            let orders = |f: &dyn Fn(&Tensor) -> Tensor| {
                let y = f(x.as_tensor());
                let g = y.sum_all().unwrap().backward().unwrap();
                let g = g.get(&x).unwrap().clone();
                let gg = g.sqr().unwrap().sum_all().unwrap().backward().unwrap();
                [y, g, gg.get(&x).unwrap().clone()]
            };
            let ours = orders(&|t| tanh(t).unwrap());
            let theirs = orders(&|t| t.tanh().unwrap());
            for (a, b) in ours.iter().zip(&theirs) {
                assert!(max_rel(a, b) < 1e-12);
            }
        });
    }
}
