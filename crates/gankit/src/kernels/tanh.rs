//! tanh on candle's threads. candle 0.11's CPU tanh is a serial loop over libm's `tanhf`;
//! on the generator's output (64×784 values) it took 0.7 ms, as long as a batch norm. In f64
//! the values are libm's, with the loop split over the threads; in f32 they come from
//! [`tanh_f32`], plain arithmetic that the compiler vectorises (on G's output, 0.29 → 0.05
//! ms per call).
//! The backward pass, g·(1 − y²), is built from candle ops on the output, so it stays
//! differentiable.

use candle_core::{CpuStorage, CustomOp1, Layout, Result, Shape, Tensor};
use multiversion::multiversion;

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
        let f32s = T::DTYPE == candle_core::DType::F32;
        let y = parallel::filled(x.len(), CHUNK, |i, out: &mut [T]| {
            let xs = &x[i * CHUNK..][..out.len()];
            if f32s {
                // SAFETY: T is f32 (its DTYPE says so): same size, alignment and values.
                let (xs, out) = unsafe {
                    (
                        std::slice::from_raw_parts(xs.as_ptr().cast::<f32>(), xs.len()),
                        std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<f32>(), out.len()),
                    )
                };
                tanh_f32_into(out, xs);
            } else {
                for (o, &v) in out.iter_mut().zip(xs) {
                    *o = T::from_f64(v.to_f64().tanh());
                }
            }
        });
        Ok((y, sx.clone()))
    }
}

/// out ← tanh_f32(x).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512vl+avx2+fma", "x86_64+avx2+fma"))]
fn tanh_f32_into(out: &mut [f32], x: &[f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = tanh_f32(v);
    }
}

/// tanh in f32 arithmetic only (no libm call, so loops of it vectorise), within 2 units in
/// the last place: the odd Taylor series below |x| = 0.55, (1 − e^(−2|x|)) / (1 + e^(−2|x|))
/// above, with the sign of x.
#[inline]
fn tanh_f32(x: f32) -> f32 {
    let a = x.abs();
    // Beyond 9, tanh is 1 in f32; NaN stays NaN (the comparison is false).
    let a = if a > 9.0 { 9.0 } else { a };
    let s = a * a;
    // tanh a = a − a³/3 + 2a⁵/15 − 17a⁷/315 + … (to a¹⁹; the next term is below 1e-9 up to
    // 0.55), summed as a + a·s·(…) so the leading term is exact.
    let tail = -1.0 / 3.0
        + s * (2.0 / 15.0
            + s * (-17.0 / 315.0
                + s * (62.0 / 2835.0
                    + s * (-1382.0 / 155_925.0
                        + s * (21_844.0 / 6_081_075.0
                            + s * (-929_569.0 / 638_512_875.0
                                + s * (6_404_582.0 / 10_854_718_875.0
                                    + s * (-443_861_162.0 / 1_856_156_927_625.0))))))));
    let series = a + a * s * tail;
    let t = exp_f32(-2.0 * a);
    let ratio = (1.0 - t) / (1.0 + t);
    let r = if a < 0.55 { series } else { ratio };
    r.copysign(x)
}

/// e^y for y in [−18, 0], in f32 arithmetic: y = n·ln 2 + r with |r| ≤ ln 2 / 2, e^r by its
/// Taylor polynomial to r⁷ (relative error below 1e-8), times 2ⁿ built from its bits.
#[inline]
fn exp_f32(y: f32) -> f32 {
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer (|y·log₂e| < 2²²).
    const ROUND: f32 = 12_582_912.0;
    // ln 2 split so that n·LN2_HI is exact for the n here.
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let k = y * std::f32::consts::LOG2_E + ROUND;
    let n = k - ROUND;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r / 5040.0))))));
    // k's low mantissa bits hold n + 2²² (as an integer); 2ⁿ has exponent field n + 127.
    let n_int = k.to_bits() as i32 - ROUND.to_bits() as i32;
    p * f32::from_bits(((n_int + 127) as u32) << 23)
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

    #[test]
    fn f32_is_within_two_ulp_everywhere() {
        // Every 97th f32 in [−12, 12] (both sides of the 0.55 switch, deep into saturation),
        // the tiny values, and the special ones.
        let mut xs: Vec<f32> = (0..)
            .map(|i| f32::from_bits(i * 97))
            .take_while(|v| *v <= 12.0)
            .flat_map(|v| [v, -v])
            .collect();
        xs.extend([
            0.0,
            -0.0,
            0.55,
            -0.55,
            9.0,
            1e-30,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]);
        for &x in &xs {
            // Error against the exact value (f64's tanh), in units of the f32 result's
            // last place.
            let (ours, exact) = (tanh_f32(x), f64::from(x).tanh());
            let w = exact as f32;
            let ulp = f64::from(f32::from_bits(w.abs().to_bits() + 1) - w.abs());
            let err = (f64::from(ours) - exact).abs() / ulp;
            assert!(
                err <= 2.0,
                "tanh({x:e}) = {ours:e}, exactly {exact:e}: {err:.2} ulp"
            );
        }
        assert!(tanh_f32(f32::NAN).is_nan());
        let t = Tensor::new(
            &[[0.3f32, -2.0], [f32::NAN, 40.0]],
            &candle_core::Device::Cpu,
        )
        .unwrap();
        let y = tanh(&t).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!((y[0][1], y[1][1]), (tanh_f32(-2.0), 1.0));
        assert!(y[1][0].is_nan());
    }
}
