//! Which SIMD instruction sets gankit's loops and gemm may use, and a switch that narrows
//! them: `GANKIT_ISA=avx2` (AVX2 + FMA, no AVX-512) or `GANKIT_ISA=x86-64` (baseline
//! SSE2), so the paths other CPUs take can be timed on this one.
//!
//! gankit's kernels (`multiversion`), gemm and candle each pick their code path from the
//! CPU's feature flags, read once through the `cpuid` instruction. Rather than thread a
//! flag through three crates, [`restrict`] makes the process see a smaller CPU: it turns
//! on Linux's CPUID faulting (`arch_prctl(ARCH_SET_CPUID, 0)`, the mechanism `rr` uses),
//! so every `cpuid` traps; the SIGSEGV handler here runs the real instruction and clears
//! the bits of the hidden extensions before the program sees them. Only code that asks
//! `cpuid` after [`restrict`] is affected: call it first thing in `main`, before any
//! thread exists. glibc picked its `memcpy` before `main` and keeps it (that is libc's
//! code, not gankit's).
//!
//! Where CPUID faulting is missing (other kernels, some CPUs and hypervisors), [`restrict`]
//! fails with a user error rather than measuring the wrong path.

use std::fmt;

use crate::{Error, Result};

/// The environment variable read by [`restrict_from_env`].
pub const ENV: &str = "GANKIT_ISA";

/// An instruction-set level, ordered from the smallest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// x86-64 baseline: SSE2 only.
    Baseline,
    /// AVX2 with FMA (x86-64-v3), no AVX-512.
    Avx2,
    /// AVX-512 (F, BW, VL) as gankit's kernels and gemm use it.
    Avx512,
}

impl Isa {
    /// Parse `avx512`, `avx2` or `x86-64` (also `baseline`, `native`).
    pub fn parse(s: &str) -> Result<Option<Isa>> {
        Ok(match s.trim().to_ascii_lowercase().as_str() {
            "" | "native" => None,
            "avx512" | "avx-512" => Some(Isa::Avx512),
            "avx2" => Some(Isa::Avx2),
            "x86-64" | "x86_64" | "baseline" | "sse2" => Some(Isa::Baseline),
            other => {
                return Err(Error::Config(format!(
                    "{ENV}={other}: expected avx512, avx2 or x86-64 (or unset for all the CPU has)"
                )));
            }
        })
    }

    /// The highest level this process can use, as its feature detection reports it.
    pub fn in_use() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512bw")
                && std::arch::is_x86_feature_detected!("avx512vl")
            {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Baseline
    }
}

impl fmt::Display for Isa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Isa::Baseline => "x86-64",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        })
    }
}

/// Apply `GANKIT_ISA` when it is set; returns the level now in use.
pub fn restrict_from_env() -> Result<Isa> {
    match std::env::var(ENV) {
        Ok(v) => match Isa::parse(&v)? {
            Some(isa) => restrict(isa),
            None => Ok(Isa::in_use()),
        },
        Err(_) => Ok(Isa::in_use()),
    }
}

/// Hide every extension above `isa` from this process (and the threads it starts later).
/// A level at or above what the CPU has changes nothing.
pub fn restrict(isa: Isa) -> Result<Isa> {
    if isa == Isa::Avx512 {
        return Ok(Isa::in_use());
    }
    trap::install(isa)?;
    let now = Isa::in_use();
    if now > isa {
        return Err(Error::Config(format!(
            "{ENV}={isa}: the CPU still reports {now} after hiding it; unset {ENV}"
        )));
    }
    Ok(now)
}

/// The bits each level hides, per `cpuid` leaf and register.
mod masks {
    use super::Isa;

    /// (leaf, subleaf or None for any, register index eax=0 ebx=1 ecx=2 edx=3, bits)
    type Mask = (u32, Option<u32>, usize, u32);

    const fn bits(list: &[u32]) -> u32 {
        let mut m = 0;
        let mut i = 0;
        while i < list.len() {
            m |= 1 << list[i];
            i += 1;
        }
        m
    }

    /// AVX-512 in all its parts: leaf 7 EBX F, DQ, IFMA, PF, ER, CD, BW, VL; ECX VBMI,
    /// VBMI2, VNNI, BITALG, VPOPCNTDQ; EDX 4VNNIW, 4FMAPS, VP2INTERSECT, FP16; leaf 7.1
    /// EAX BF16.
    const AVX512: [Mask; 4] = [
        (7, Some(0), 1, bits(&[16, 17, 21, 26, 27, 28, 30, 31])),
        (7, Some(0), 2, bits(&[1, 6, 11, 12, 14])),
        (7, Some(0), 3, bits(&[2, 3, 8, 23])),
        (7, Some(1), 0, bits(&[5])),
    ];

    /// Above SSE2: leaf 1 ECX SSE3, SSSE3, FMA, SSE4.1, SSE4.2, POPCNT, AVX, F16C; leaf 7
    /// EBX BMI1, AVX2, BMI2; leaf 7.1 EAX AVX-VNNI; extended leaf 1 ECX LZCNT, SSE4a, XOP,
    /// FMA4.
    const ABOVE_SSE2: [Mask; 4] = [
        (1, None, 2, bits(&[0, 9, 12, 19, 20, 23, 28, 29])),
        (7, Some(0), 1, bits(&[3, 5, 8])),
        (7, Some(1), 0, bits(&[4])),
        (0x8000_0001, None, 2, bits(&[5, 6, 11, 16])),
    ];

    /// Clear what `isa` hides from the registers `cpuid(leaf, subleaf)` returned.
    pub fn apply(isa: Isa, leaf: u32, subleaf: u32, regs: &mut [u32; 4]) {
        let mut clear = |list: &[Mask]| {
            for &(l, s, r, m) in list {
                if l == leaf && s.is_none_or(|s| s == subleaf) {
                    regs[r] &= !m;
                }
            }
        };
        if isa <= Isa::Avx2 {
            clear(&AVX512);
        }
        if isa == Isa::Baseline {
            clear(&ABOVE_SSE2);
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn avx2_hides_avx512_and_keeps_avx2() {
            let mut r = [u32::MAX; 4];
            apply(Isa::Avx2, 7, 0, &mut r);
            assert_eq!(r[1] & (1 << 16), 0, "AVX512F hidden");
            assert_eq!(r[1] & (1 << 30), 0, "AVX512BW hidden");
            assert_ne!(r[1] & (1 << 5), 0, "AVX2 kept");
            let mut l1 = [u32::MAX; 4];
            apply(Isa::Avx2, 1, 0, &mut l1);
            assert_eq!(l1, [u32::MAX; 4], "leaf 1 (AVX, FMA) untouched");
        }

        #[test]
        fn baseline_hides_avx_fma_and_sse4() {
            let mut l1 = [u32::MAX; 4];
            apply(Isa::Baseline, 1, 0, &mut l1);
            for bit in [28, 12, 19, 20] {
                assert_eq!(l1[2] & (1 << bit), 0, "leaf 1 ECX bit {bit}");
            }
            assert_ne!(l1[3] & (1 << 26), 0, "SSE2 (EDX 26) kept");
            let mut l7 = [u32::MAX; 4];
            apply(Isa::Baseline, 7, 0, &mut l7);
            assert_eq!(l7[1] & (1 << 5), 0, "AVX2 hidden");
            assert_eq!(l7[1] & (1 << 16), 0, "AVX512F hidden");
        }

        #[test]
        fn other_leaves_pass_through() {
            let mut r = [0x1234_5678; 4];
            apply(Isa::Baseline, 0, 0, &mut r);
            apply(Isa::Baseline, 7, 2, &mut r);
            assert_eq!(r, [0x1234_5678; 4]);
        }
    }
}

#[cfg(all(target_os = "linux", target_arch = "x86_64"))]
mod trap {
    use std::sync::atomic::{AtomicU8, Ordering};

    use super::{ENV, Isa, masks};
    use crate::{Error, Result};

    const ARCH_GET_CPUID: libc::c_int = 0x1011;
    const ARCH_SET_CPUID: libc::c_int = 0x1012;

    /// The level the handler hides down to (an `Isa` as u8; 255 = not installed).
    static LEVEL: AtomicU8 = AtomicU8::new(255);
    /// The SIGSEGV disposition before ours, for faults that are not `cpuid`.
    static mut PREVIOUS: Option<libc::sigaction> = None;

    fn set_faulting(on: bool) -> libc::c_long {
        // SAFETY: arch_prctl with ARCH_SET_CPUID takes an integer argument and touches no
        // memory of ours.
        unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_SET_CPUID, (!on) as libc::c_ulong) }
    }

    pub fn install(isa: Isa) -> Result<()> {
        let level = isa as u8;
        match LEVEL.load(Ordering::SeqCst) {
            255 => {}
            l if l == level => return Ok(()),
            _ => {
                return Err(Error::Config(format!(
                    "{ENV}: the instruction sets were already narrowed to another level"
                )));
            }
        }
        // SAFETY: ARCH_GET_CPUID only reports the current setting.
        let supported = unsafe { libc::syscall(libc::SYS_arch_prctl, ARCH_GET_CPUID, 0) } >= 0;
        if !supported {
            return Err(unsupported());
        }
        LEVEL.store(level, Ordering::SeqCst);
        // SAFETY: installing a SA_SIGINFO handler; the previous disposition is saved once,
        // before faulting is on, and only read by the handler afterwards.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_segv as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_NODEFER;
            libc::sigemptyset(&mut action.sa_mask);
            let mut old: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGSEGV, &action, &mut old) != 0 {
                LEVEL.store(255, Ordering::SeqCst);
                return Err(unsupported());
            }
            PREVIOUS = Some(old);
        }
        if set_faulting(true) != 0 {
            return Err(unsupported());
        }
        Ok(())
    }

    fn unsupported() -> Error {
        Error::Config(format!(
            "{ENV}: this kernel or CPU cannot hide instruction sets from a process (no CPUID \
             faulting); unset {ENV} and time on a CPU of that kind"
        ))
    }

    /// SIGSEGV: a trapped `cpuid` is emulated with the hidden bits cleared; anything else
    /// goes to the previous handler (Rust's stack-overflow report, or the default).
    extern "C" fn on_segv(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: the kernel passes a valid ucontext_t; RIP points at the faulting
        // instruction, which is mapped executable memory and so readable.
        unsafe {
            let uc = &mut *(ctx as *mut libc::ucontext_t);
            let gregs = &mut uc.uc_mcontext.gregs;
            let rip = gregs[libc::REG_RIP as usize] as *const u8;
            let level = LEVEL.load(Ordering::Relaxed);
            if level != 255 && *rip == 0x0F && *rip.add(1) == 0xA2 {
                let leaf = gregs[libc::REG_RAX as usize] as u32;
                let subleaf = gregs[libc::REG_RCX as usize] as u32;
                set_faulting(false);
                let r = std::arch::x86_64::__cpuid_count(leaf, subleaf);
                set_faulting(true);
                let mut regs = [r.eax, r.ebx, r.ecx, r.edx];
                let isa = if level == Isa::Baseline as u8 {
                    Isa::Baseline
                } else {
                    Isa::Avx2
                };
                masks::apply(isa, leaf, subleaf, &mut regs);
                gregs[libc::REG_RAX as usize] = regs[0] as i64;
                gregs[libc::REG_RBX as usize] = regs[1] as i64;
                gregs[libc::REG_RCX as usize] = regs[2] as i64;
                gregs[libc::REG_RDX as usize] = regs[3] as i64;
                gregs[libc::REG_RIP as usize] += 2;
                return;
            }
            forward(sig, info, ctx);
        }
    }

    /// Hand a fault that is not ours to the disposition that was there before.
    unsafe fn forward(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
        // SAFETY: PREVIOUS was written before faulting was turned on and never after.
        let previous = unsafe { (*std::ptr::addr_of!(PREVIOUS)).as_ref().copied() };
        match previous {
            Some(old) if old.sa_sigaction != libc::SIG_DFL && old.sa_sigaction != libc::SIG_IGN => {
                if old.sa_flags & libc::SA_SIGINFO != 0 {
                    let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                        unsafe { std::mem::transmute(old.sa_sigaction) };
                    f(sig, info, ctx);
                } else {
                    let f: extern "C" fn(libc::c_int) =
                        unsafe { std::mem::transmute(old.sa_sigaction) };
                    f(sig);
                }
            }
            _ => {
                // Back to the default action: returning re-runs the faulting instruction,
                // which now ends the process as any segmentation fault does.
                // SAFETY: resetting a disposition is async-signal-safe.
                unsafe {
                    libc::signal(sig, libc::SIG_DFL);
                }
            }
        }
    }
}

#[cfg(not(all(target_os = "linux", target_arch = "x86_64")))]
mod trap {
    use super::{ENV, Isa};
    use crate::{Error, Result};

    pub fn install(_: Isa) -> Result<()> {
        Err(Error::Config(format!(
            "{ENV} narrows instruction sets on Linux x86-64 only; unset it"
        )))
    }
}
