//! cuDNN's three convolution passes, run by the conv ops of [`super::ops`] on CUDA devices
//! (the `cuda` feature).
//!
//! candle 0.11 calls cuDNN for a convolution's forward pass only: its transposed
//! convolution and both backward passes are direct CUDA loops, which would take most of a
//! DCGAN step (every generator layer is a transposed convolution). gankit's conv ops are a
//! closed family — forward, backward-data (= transposed convolution) and backward-filter,
//! each differentiated with the others — so running each op's pass through cuDNN puts
//! every convolution of a step on cuDNN, gradients of gradients (WGAN-GP's penalty)
//! included.
//!
//! The algorithm of each pass is cuDNN's heuristic choice (`cudnnGet…Algorithm_v7`), as in
//! PyTorch with `torch.backends.cudnn.benchmark = False`, picked once per geometry and
//! thread. cuDNN's default math mode is kept, as PyTorch keeps it: on Ampere and later,
//! f32 convolutions may use TF32 tensor cores; f64 ones never do.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::cudnn::{
    ConvBackwardData, ConvBackwardFilter, ConvDescriptor, ConvForward, Cudnn, CudnnDataType,
    CudnnError, FilterDescriptor, TensorDescriptor, sys,
};
use candle_core::cuda_backend::cudarc::driver::{CudaSlice, CudaView, DeviceRepr};
use candle_core::cuda_backend::{CudaDType, DeviceId};
use candle_core::{CudaDevice, CudaStorage, DType, Layout, Result, WithDType};

use super::cpu::Geometry;

/// Which pass of the convolution `g` to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pass {
    /// (x, w) → y.
    Forward,
    /// (dy, w) → dx: the transposed convolution.
    BackwardData,
    /// (x, dy) → dw.
    BackwardFilter,
}

/// What an algorithm is picked for: the device, the convolution and the dtype.
type Key = (DeviceId, Geometry, DType);

/// Algorithms picked so far, by [`Key`]: one map per pass, for that pass's enum.
type Algorithms<A> = RefCell<HashMap<Key, A>>;

thread_local! {
    /// One cuDNN handle per device and thread: handles are neither `Send` nor `Sync`.
    static HANDLES: RefCell<HashMap<DeviceId, Arc<Cudnn>>> = RefCell::new(HashMap::new());
    static FORWARD: Algorithms<sys::cudnnConvolutionFwdAlgo_t> = RefCell::new(HashMap::new());
    static BACKWARD_DATA: Algorithms<sys::cudnnConvolutionBwdDataAlgo_t> =
        RefCell::new(HashMap::new());
    static BACKWARD_FILTER: Algorithms<sys::cudnnConvolutionBwdFilterAlgo_t> =
        RefCell::new(HashMap::new());
}

fn wrap(e: impl std::error::Error + Send + Sync + 'static) -> candle_core::Error {
    candle_core::Error::wrap(e)
}

fn handle(dev: &CudaDevice) -> Result<Arc<Cudnn>> {
    HANDLES.with(|handles| {
        if let Some(c) = handles.borrow().get(&dev.id()) {
            return Ok(c.clone());
        }
        let c = Cudnn::new(dev.cuda_stream()).map_err(wrap)?;
        handles.borrow_mut().insert(dev.id(), c.clone());
        Ok(c)
    })
}

/// Run `pass` of the convolution `g` on `a` and `b`: (x, w) for [`Pass::Forward`], (dy, w)
/// for [`Pass::BackwardData`], (x, dy) for [`Pass::BackwardFilter`]. Both are contiguous
/// (the ops make them so) and both f32 or both f64.
pub(super) fn run(
    pass: Pass,
    g: &Geometry,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage> {
    match (a.dtype(), b.dtype()) {
        (DType::F32, DType::F32) => typed::<f32>(pass, g, a, la, b, lb),
        (DType::F64, DType::F64) => typed::<f64>(pass, g, a, la, b, lb),
        (x, y) => candle_core::bail!(
            "gankit cuDNN convolution: inputs of dtypes {x:?} and {y:?}; both must be f32 or both f64"
        ),
    }
}

/// The part of `s` that `l` covers, which must be contiguous.
fn view<'a, T: CudaDType>(s: &'a CudaStorage, l: &Layout) -> Result<CudaView<'a, T>> {
    if !l.is_contiguous() {
        candle_core::bail!("gankit cuDNN convolution: input of layout {l:?} is not contiguous")
    }
    let start = l.start_offset();
    Ok(s.as_cuda_slice::<T>()?
        .slice(start..start + l.shape().elem_count()))
}

/// The descriptors of one convolution: x (n, c_in, h, w), y (n, c_out, oh, ow) and the
/// filter (c_out, c_in, k, k), all NCHW.
struct Descriptors<T: CudnnDataType> {
    conv: ConvDescriptor<T>,
    x: TensorDescriptor<T>,
    y: TensorDescriptor<T>,
    w: FilterDescriptor<T>,
}

fn descriptors<T: CudnnDataType>(cudnn: &Arc<Cudnn>, g: &Geometry) -> Result<Descriptors<T>> {
    let i = |v: usize| -> Result<i32> {
        i32::try_from(v).map_err(|_| {
            candle_core::Error::Msg(format!("gankit cuDNN convolution: size {v} exceeds i32"))
        })
    };
    let nchw = sys::cudnnTensorFormat_t::CUDNN_TENSOR_NCHW;
    Ok(Descriptors {
        conv: cudnn
            .create_conv2d::<T>(
                [i(g.pad)?; 2],
                [i(g.stride)?; 2],
                [1, 1],
                sys::cudnnConvolutionMode_t::CUDNN_CROSS_CORRELATION,
            )
            .map_err(wrap)?,
        x: cudnn
            .create_4d_tensor::<T>(nchw, [i(g.n)?, i(g.c_in)?, i(g.h)?, i(g.w)?])
            .map_err(wrap)?,
        y: cudnn
            .create_4d_tensor::<T>(nchw, [i(g.n)?, i(g.c_out)?, i(g.oh)?, i(g.ow)?])
            .map_err(wrap)?,
        w: cudnn
            .create_4d_filter::<T>(nchw, [i(g.c_out)?, i(g.c_in)?, i(g.k)?, i(g.k)?])
            .map_err(wrap)?,
    })
}

/// The algorithm in `cache` for `key`, or `pick()`'s, then cached.
fn algorithm<A: Copy + 'static>(
    cache: &'static std::thread::LocalKey<Algorithms<A>>,
    key: Key,
    pick: impl FnOnce() -> std::result::Result<A, CudnnError>,
) -> Result<A> {
    if let Some(a) = cache.with(|m| m.borrow().get(&key).copied()) {
        return Ok(a);
    }
    let a = pick().map_err(wrap)?;
    cache.with(|m| m.borrow_mut().insert(key, a));
    Ok(a)
}

/// Elements of the pass's output.
fn out_len(pass: Pass, g: &Geometry) -> usize {
    let dims = match pass {
        Pass::Forward => g.feature_dims(),
        Pass::BackwardData => g.image_dims(),
        Pass::BackwardFilter => g.filter_dims(),
    };
    dims.iter().product()
}

fn typed<T>(
    pass: Pass,
    g: &Geometry,
    a: &CudaStorage,
    la: &Layout,
    b: &CudaStorage,
    lb: &Layout,
) -> Result<CudaStorage>
where
    T: CudaDType + CudnnDataType + DeviceRepr + WithDType,
{
    let dev = a.device().clone();
    let cudnn = handle(&dev)?;
    let d = descriptors::<T>(&cudnn, g)?;
    let (a, b) = (view::<T>(a, la)?, view::<T>(b, lb)?);
    let scale = (T::from_f64(1.0), T::from_f64(0.0));
    // Written in full by cuDNN: with beta = 0 it does not read the output.
    // SAFETY: an allocation of plain numbers, every element written below before any read.
    let mut out: CudaSlice<T> = unsafe { dev.alloc::<T>(out_len(pass, g))? };
    let stream = dev.cuda_stream();
    let key = (dev.id(), *g, T::DTYPE);
    // Scratch for cuDNN, which never reads what it did not write: not zeroed.
    // SAFETY: plain bytes, handed to cuDNN only.
    let workspace = |bytes: usize| unsafe { stream.alloc::<u8>(bytes.max(1)) }.map_err(wrap);
    // SAFETY (each launch): the descriptors were built from `g`, which the op checked
    // against the two inputs' shapes; the views and `out` hold exactly the elements the
    // descriptors describe, in NCHW order, of the descriptors' dtype.
    match pass {
        Pass::Forward => {
            let op = ConvForward {
                conv: &d.conv,
                x: &d.x,
                w: &d.w,
                y: &d.y,
            };
            let algo = algorithm(&FORWARD, key, || op.pick_algorithm())?;
            let mut ws = workspace(op.get_workspace_size(algo).map_err(wrap)?)?;
            unsafe { op.launch(algo, Some(&mut ws), scale, &a, &b, &mut out) }.map_err(wrap)?;
        }
        Pass::BackwardData => {
            let op = ConvBackwardData {
                conv: &d.conv,
                dx: &d.x,
                w: &d.w,
                dy: &d.y,
            };
            let algo = algorithm(&BACKWARD_DATA, key, || op.pick_algorithm())?;
            let mut ws = workspace(op.get_workspace_size(algo).map_err(wrap)?)?;
            unsafe { op.launch(algo, Some(&mut ws), scale, &mut out, &b, &a) }.map_err(wrap)?;
        }
        Pass::BackwardFilter => {
            let op = ConvBackwardFilter {
                conv: &d.conv,
                x: &d.x,
                dw: &d.w,
                dy: &d.y,
            };
            let algo = algorithm(&BACKWARD_FILTER, key, || op.pick_algorithm())?;
            let mut ws = workspace(op.get_workspace_size(algo).map_err(wrap)?)?;
            unsafe { op.launch(algo, Some(&mut ws), scale, &a, &mut out, &b) }.map_err(wrap)?;
        }
    }
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}
