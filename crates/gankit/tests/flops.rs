//! The FLOP count of gankit's products and convolutions, exactly, in a process of its own
//! (the count is global, and other tests' products would add to it).

use candle_core::{DType, Device, Tensor, Var};
use gankit::kernels::{self, flops};

#[test]
fn products_and_convolutions_count_their_textbook_flops() {
    let dev = Device::Cpu;
    let a = Tensor::ones((32, 48), DType::F32, &dev).unwrap();
    let b = Tensor::ones((48, 20), DType::F32, &dev).unwrap();
    let before = flops::total();
    kernels::matmul(&a, &b, false, false).unwrap();
    assert_eq!(flops::total() - before, 2 * 32 * 48 * 20);

    // 2 images, 3 → 5 channels, 3×3 kernel, stride 1, padding 1, 8×8 → 8×8.
    let conv = 2 * 2 * 5 * 64 * 27;
    let x = Var::ones((2, 3, 8, 8), DType::F32, &dev).unwrap();
    let w = Var::ones((5, 3, 3, 3), DType::F32, &dev).unwrap();
    let before = flops::total();
    let y = kernels::conv2d(x.as_tensor(), w.as_tensor(), 1, 1).unwrap();
    assert_eq!(flops::total() - before, conv);
    // Backward: the input gradient and the filter gradient, one product each of the same
    // size as the forward one.
    let before = flops::total();
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(flops::total() - before, 2 * conv);

    // The same over a wider map with more channels, where AVX2 CPUs (without AVX-512)
    // take the implicit-GEMM path for the features and the input gradient: 2 images,
    // 16 → 16 channels, 3×3, 16×16 → 16×16.
    let conv = 2 * 2 * 16 * 256 * 144;
    let x = Var::ones((2, 16, 16, 16), DType::F32, &dev).unwrap();
    let w = Var::ones((16, 16, 3, 3), DType::F32, &dev).unwrap();
    let before = flops::total();
    let y = kernels::conv2d(x.as_tensor(), w.as_tensor(), 1, 1).unwrap();
    assert_eq!(flops::total() - before, conv);
    let before = flops::total();
    y.sum_all().unwrap().backward().unwrap();
    assert_eq!(flops::total() - before, 2 * conv);

    // Transposed (the generators' layers): 2 images, 4 → 3 channels, 4×4 kernel, stride
    // 2, padding 1, 7×7 → 14×14: one product of 3·16 rows by 4 by 2·49 columns.
    let z = Tensor::ones((2, 4, 7, 7), DType::F32, &dev).unwrap();
    let k = Tensor::ones((4, 3, 4, 4), DType::F32, &dev).unwrap();
    let before = flops::total();
    let out = kernels::conv_transpose2d(&z, &k, 2, 1, 0).unwrap();
    assert_eq!(out.dims(), &[2, 3, 14, 14]);
    assert_eq!(flops::total() - before, 2 * 3 * 16 * 4 * 2 * 49);
}
