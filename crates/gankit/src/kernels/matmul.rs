//! Matrix products on candle's threads, C = op(A)·op(B) with op = identity or transpose.
//!
//! candle 0.11's CPU matmul ran the whole product on the calling thread here, while the
//! other core waited: the MLP's steps are almost all products, and took 1.2–1.4× PyTorch's
//! time. This op splits C's rows (or, when C is wide, its columns) into blocks and runs
//! `gemm` on each, on candle's threads; results do not depend on the thread count. Its
//! gradients are products of the same op with other transposes, so gradients of any order
//! stay inside it.

use candle_core::{CpuStorage, CustomOp2, Layout, Result, Shape, Tensor};

use super::cpu::{Element, Mat, matmul as gemm_into, matmul_block as gemm_block};
use super::storage::{Kernel2, apply2};
use super::{ours, parallel, when};

/// Rows (or columns) of C per work item: at least 16, and at most about an eighth of C, so
/// a large product is a few wide items (each packs its operands once) that two to eight
/// threads share evenly. Every element of C comes from one gemm call over the whole inner
/// dimension, so results do not depend on the split.
fn block(len: usize) -> usize {
    len.div_ceil(8).next_multiple_of(16).max(16)
}

/// op(a)·op(b) for rank-2 a and b, op(t) = tᵀ when its flag is set.
pub fn matmul(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    if !ours(a) {
        let t = |x: &Tensor, f: bool| if f { x.t() } else { Ok(x.clone()) };
        return t(a, ta)?.matmul(&t(b, tb)?);
    }
    a.contiguous()?
        .apply_op2(&b.contiguous()?, MatMul { ta, tb })
}

/// Batched op(a)·op(b) for rank-3 a (batch, ·, ·) and b (batch, ·, ·): one product per
/// batch element, the elements spread over candle's threads (SAGAN's attention products).
pub fn bmm(a: &Tensor, b: &Tensor, ta: bool, tb: bool) -> Result<Tensor> {
    if !ours(a) {
        let t = |x: &Tensor, f: bool| if f { x.transpose(1, 2) } else { Ok(x.clone()) };
        return t(a, ta)?.matmul(&t(b, tb)?);
    }
    a.contiguous()?
        .apply_op2(&b.contiguous()?, BatchMatMul { ta, tb })
}

/// C = op(A)·op(B), batched over the first dimension.
struct BatchMatMul {
    ta: bool,
    tb: bool,
}

impl Kernel2 for BatchMatMul {
    fn run<T: Element>(&self, a: &[T], sa: &Shape, b: &[T], sb: &Shape) -> Result<(Vec<T>, Shape)> {
        let (&[batch, ra, ca], &[batch_b, rb, cb]) = (sa.dims(), sb.dims()) else {
            candle_core::bail!("bmm: rank-3 operands expected, got {sa:?} and {sb:?}")
        };
        if batch != batch_b {
            candle_core::bail!("bmm: batches {batch} and {batch_b} differ");
        }
        let one = MatMul {
            ta: self.ta,
            tb: self.tb,
        };
        let (m, k, n) = one.dims(&Shape::from((ra, ca)), &Shape::from((rb, cb)))?;
        if k == 0 || m * n == 0 {
            return Ok((vec![T::zero(); batch * m * n], Shape::from((batch, m, n))));
        }
        let c = parallel::filled(batch * m * n, m * n, |i, dst| {
            let (a, b) = (&a[i * m * k..], &b[i * k * n..]);
            let lhs = if self.ta {
                Mat::transposed(a, m)
            } else {
                Mat::rows(a, k)
            };
            let rhs = if self.tb {
                Mat::transposed(b, k)
            } else {
                Mat::rows(b, n)
            };
            gemm_into(m, n, k, dst, false, lhs, rhs);
        });
        Ok((c, Shape::from((batch, m, n))))
    }
}

impl CustomOp2 for BatchMatMul {
    fn name(&self) -> &'static str {
        "gankit-bmm"
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

    /// The gradients of [`MatMul`], per batch element.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _c: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (ta, tb) = (self.ta, self.tb);
        let da = when(a, || {
            if ta {
                bmm(b, g, tb, true)
            } else {
                bmm(g, b, false, !tb)
            }
        })?;
        let db = when(b, || {
            if tb {
                bmm(g, a, true, ta)
            } else {
                bmm(a, g, !ta, false)
            }
        })?;
        Ok((da, db))
    }
}

/// C = op(A)·op(B).
struct MatMul {
    ta: bool,
    tb: bool,
}

impl MatMul {
    /// (m, k) of op(A) and (k, n) of op(B).
    fn dims(&self, sa: &Shape, sb: &Shape) -> Result<(usize, usize, usize)> {
        let (&[ra, ca], &[rb, cb]) = (sa.dims(), sb.dims()) else {
            candle_core::bail!("matmul: rank-2 operands expected, got {sa:?} and {sb:?}")
        };
        let (m, k) = if self.ta { (ca, ra) } else { (ra, ca) };
        let (k2, n) = if self.tb { (cb, rb) } else { (rb, cb) };
        if k != k2 {
            candle_core::bail!("matmul: {m}×{k} by {k2}×{n} (shapes {sa:?}, {sb:?})");
        }
        Ok((m, k, n))
    }
}

impl Kernel2 for MatMul {
    fn run<T: Element>(&self, a: &[T], sa: &Shape, b: &[T], sb: &Shape) -> Result<(Vec<T>, Shape)> {
        let (m, k, n) = self.dims(sa, sb)?;
        if k == 0 {
            return Ok((vec![T::zero(); m * n], Shape::from((m, n))));
        }
        let rhs_from = |j0: usize| {
            if self.tb {
                Mat::transposed(&b[j0 * k..], k)
            } else {
                Mat::rows(&b[j0..], n)
            }
        };
        let c = if n >= 4 * m {
            // Wide C (G's first layer: 64 × 6272): blocks of columns, so each item packs
            // only its share of op(B) instead of all of it.
            parallel::filled_columns(m, n, block(n), |j0, width, dst| {
                let lhs = if self.ta {
                    Mat::transposed(a, m)
                } else {
                    Mat::rows(a, k)
                };
                // SAFETY: dst is this item's m × width block of C, rows n apart; lhs and
                // the columns j0.. of op(B) hold the product's operands.
                unsafe { gemm_block(m, width, k, dst, n, false, lhs, rhs_from(j0)) }
            })
        } else {
            let rows_per = block(m);
            parallel::filled(m * n, rows_per * n.max(1), |i, rows| {
                let (r0, count) = (i * rows_per, rows.len() / n.max(1));
                // Rows r0.. of op(A): row r of A, or column r of A (stored k × m).
                let lhs = if self.ta {
                    Mat::transposed(&a[r0..], m)
                } else {
                    Mat::rows(&a[r0 * k..], k)
                };
                gemm_into(count, n, k, rows, false, lhs, rhs_from(0));
            })
        };
        Ok((c, Shape::from((m, n))))
    }
}

impl CustomOp2 for MatMul {
    fn name(&self) -> &'static str {
        "gankit-matmul"
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

    /// d op(A) = G·op(B)ᵀ and d op(B) = op(A)ᵀ·G, each written as one product of the
    /// stored operands.
    fn bwd(
        &self,
        a: &Tensor,
        b: &Tensor,
        _c: &Tensor,
        g: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (ta, tb) = (self.ta, self.tb);
        let da = when(a, || {
            if ta {
                matmul(b, g, tb, true)
            } else {
                matmul(g, b, false, !tb)
            }
        })?;
        let db = when(b, || {
            if tb {
                matmul(g, a, true, ta)
            } else {
                matmul(a, g, !ta, false)
            }
        })?;
        Ok((da, db))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::testing::{max_rel, rand};
    use candle_core::{DType, Var};

    #[test]
    fn products_and_their_gradients_to_second_order_match_candle() {
        crate::objectives::penalty::with_second_order(|| {
            // Row blocks, one column block, several column blocks (the last partial), and
            // row blocks larger than 16.
            for (m, k, n) in [
                (37, 5, 3),
                (1, 7, 9),
                (64, 33, 1),
                (20, 17, 18),
                (5, 3, 300),
                (300, 4, 2),
            ] {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    let sa = if ta { [k, m] } else { [m, k] };
                    let sb = if tb { [n, k] } else { [k, n] };
                    let a = Var::from_tensor(&rand(&sa, 3, DType::F64)).unwrap();
                    let b = Var::from_tensor(&rand(&sb, 4, DType::F64)).unwrap();
                    let r = rand(&[m, n], 5, DType::F64);
                    let orders = |f: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
                        let c = f(a.as_tensor(), b.as_tensor());
                        let g = (&c * &r).unwrap().sum_all().unwrap().backward().unwrap();
                        let ga = g.get(&a).unwrap().clone();
                        let gg = (ga.sqr().unwrap().sum_all().unwrap()
                            + g.get(&b).unwrap().sqr().unwrap().sum_all().unwrap())
                        .unwrap()
                        .backward()
                        .unwrap();
                        let gb = g.get(&b).unwrap().clone();
                        [
                            c,
                            ga,
                            gb,
                            gg.get(&a).unwrap().clone(),
                            gg.get(&b).unwrap().clone(),
                        ]
                    };
                    let t = |x: &Tensor, f: bool| if f { x.t().unwrap() } else { x.clone() };
                    let ours = orders(&|x, y| matmul(x, y, ta, tb).unwrap());
                    let theirs = orders(&|x, y| t(x, ta).matmul(&t(y, tb)).unwrap());
                    for (i, (p, q)) in ours.iter().zip(&theirs).enumerate() {
                        let err = max_rel(p, q);
                        assert!(err < 1e-12, "{m}×{k}×{n} {ta} {tb} #{i}: {err:e}");
                    }
                }
            }
        });
    }

    #[test]
    fn batched_products_and_gradients_to_second_order_match_candle() {
        crate::objectives::penalty::with_second_order(|| {
            for (bs, m, k, n) in [(3, 5, 4, 6), (1, 7, 2, 9), (4, 16, 8, 49)] {
                for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                    let sa = if ta { [bs, k, m] } else { [bs, m, k] };
                    let sb = if tb { [bs, n, k] } else { [bs, k, n] };
                    let a = Var::from_tensor(&rand(&sa, 3, DType::F64)).unwrap();
                    let b = Var::from_tensor(&rand(&sb, 4, DType::F64)).unwrap();
                    let r = rand(&[bs, m, n], 5, DType::F64);
                    let orders = |f: &dyn Fn(&Tensor, &Tensor) -> Tensor| {
                        let c = f(a.as_tensor(), b.as_tensor());
                        let g = (&c * &r).unwrap().sum_all().unwrap().backward().unwrap();
                        let (ga, gb) = (g.get(&a).unwrap().clone(), g.get(&b).unwrap().clone());
                        let gg = (ga.sqr().unwrap().sum_all().unwrap()
                            + gb.sqr().unwrap().sum_all().unwrap())
                        .unwrap()
                        .backward()
                        .unwrap();
                        [
                            c,
                            ga,
                            gb,
                            gg.get(&a).unwrap().clone(),
                            gg.get(&b).unwrap().clone(),
                        ]
                    };
                    let t = |x: &Tensor, f: bool| {
                        if f {
                            x.transpose(1, 2).unwrap().contiguous().unwrap()
                        } else {
                            x.clone()
                        }
                    };
                    let ours = orders(&|x, y| bmm(x, y, ta, tb).unwrap());
                    let theirs = orders(&|x, y| t(x, ta).matmul(&t(y, tb)).unwrap());
                    for (i, (p, q)) in ours.iter().zip(&theirs).enumerate() {
                        let err = max_rel(p, q);
                        assert!(err < 1e-12, "{bs}×{m}×{k}×{n} {ta} {tb} #{i}: {err:e}");
                    }
                }
            }
        });
    }

    #[test]
    fn f32_matches_candle() {
        let a = rand(&[64, 100], 1, DType::F32);
        let w = rand(&[300, 100], 2, DType::F32);
        let ours = matmul(&a, &w, false, true).unwrap();
        let theirs = a.matmul(&w.t().unwrap()).unwrap();
        assert!(max_rel(&ours, &theirs) < 1e-5);
    }
}
