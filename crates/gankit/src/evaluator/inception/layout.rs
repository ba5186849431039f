//! The layers of pytorch-fid's Inception-v3 (torchvision's `inception_v3` with the FID
//! blocks of `pytorch_fid.inception`): every convolution's name in the state dict, its
//! channels, kernel, stride and padding, in the order the network runs them.

/// One `BasicConv2d`: a convolution without bias, batch norm (ε = 0.001), ReLU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvSpec {
    pub c_in: usize,
    pub c_out: usize,
    /// Kernel height and width.
    pub k: (usize, usize),
    pub stride: usize,
    /// Padding of height and width.
    pub pad: (usize, usize),
}

/// The kinds of mixed block (torchvision's names; A, C, E patched as pytorch-fid does).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Block {
    /// 5b–5d: 1×1, 5×5, double 3×3, pool (average without the padding) + 1×1.
    A { c_in: usize, pool: usize },
    /// 6a: stride-2 3×3, double 3×3 ending at stride 2, max pool.
    B { c_in: usize },
    /// 6b–6e: 1×1, 1×7 / 7×1 factorised 7×7 and double 7×7, pool (average) + 1×1.
    C { c_in: usize, c7: usize },
    /// 7a: 1×1 then stride-2 3×3; 1×1, 1×7, 7×1, stride-2 3×3; max pool.
    D { c_in: usize },
    /// 7b, 7c: 1×1, split 1×3 / 3×1 branches, pool + 1×1; the pool is an average without
    /// the padding in 7b and a max in 7c (`max_pool`).
    E { c_in: usize, max_pool: bool },
}

/// The stem's convolutions, before the mixed blocks (max pools after 2b and 4a).
pub const STEM: [(&str, ConvSpec); 5] = [
    ("Conv2d_1a_3x3", conv(3, 32, (3, 3), 2, (0, 0))),
    ("Conv2d_2a_3x3", conv(32, 32, (3, 3), 1, (0, 0))),
    ("Conv2d_2b_3x3", conv(32, 64, (3, 3), 1, (1, 1))),
    ("Conv2d_3b_1x1", conv(64, 80, (1, 1), 1, (0, 0))),
    ("Conv2d_4a_3x3", conv(80, 192, (3, 3), 1, (0, 0))),
];

/// The mixed blocks in order.
pub const BLOCKS: [(&str, Block); 11] = [
    (
        "Mixed_5b",
        Block::A {
            c_in: 192,
            pool: 32,
        },
    ),
    (
        "Mixed_5c",
        Block::A {
            c_in: 256,
            pool: 64,
        },
    ),
    (
        "Mixed_5d",
        Block::A {
            c_in: 288,
            pool: 64,
        },
    ),
    ("Mixed_6a", Block::B { c_in: 288 }),
    ("Mixed_6b", Block::C { c_in: 768, c7: 128 }),
    ("Mixed_6c", Block::C { c_in: 768, c7: 160 }),
    ("Mixed_6d", Block::C { c_in: 768, c7: 160 }),
    ("Mixed_6e", Block::C { c_in: 768, c7: 192 }),
    ("Mixed_7a", Block::D { c_in: 768 }),
    (
        "Mixed_7b",
        Block::E {
            c_in: 1280,
            max_pool: false,
        },
    ),
    (
        "Mixed_7c",
        Block::E {
            c_in: 2048,
            max_pool: true,
        },
    ),
];

/// pool3's width and the classifier's classes.
pub const FEATURES: usize = 2048;
pub const CLASSES: usize = 1008;

const fn conv(
    c_in: usize,
    c_out: usize,
    k: (usize, usize),
    stride: usize,
    pad: (usize, usize),
) -> ConvSpec {
    ConvSpec {
        c_in,
        c_out,
        k,
        stride,
        pad,
    }
}

/// A stride-1 convolution padded to keep the map's size.
const fn same(c_in: usize, c_out: usize, k: (usize, usize)) -> ConvSpec {
    conv(c_in, c_out, k, 1, ((k.0 - 1) / 2, (k.1 - 1) / 2))
}

/// A stride-2 3×3 convolution without padding.
const fn down(c_in: usize, c_out: usize) -> ConvSpec {
    conv(c_in, c_out, (3, 3), 2, (0, 0))
}

/// The block's convolutions by branch name, in the order of the state dict.
pub fn block_convs(block: Block) -> Vec<(&'static str, ConvSpec)> {
    match block {
        Block::A { c_in, pool } => vec![
            ("branch1x1", same(c_in, 64, (1, 1))),
            ("branch5x5_1", same(c_in, 48, (1, 1))),
            ("branch5x5_2", same(48, 64, (5, 5))),
            ("branch3x3dbl_1", same(c_in, 64, (1, 1))),
            ("branch3x3dbl_2", same(64, 96, (3, 3))),
            ("branch3x3dbl_3", same(96, 96, (3, 3))),
            ("branch_pool", same(c_in, pool, (1, 1))),
        ],
        Block::B { c_in } => vec![
            ("branch3x3", down(c_in, 384)),
            ("branch3x3dbl_1", same(c_in, 64, (1, 1))),
            ("branch3x3dbl_2", same(64, 96, (3, 3))),
            ("branch3x3dbl_3", down(96, 96)),
        ],
        Block::C { c_in, c7 } => vec![
            ("branch1x1", same(c_in, 192, (1, 1))),
            ("branch7x7_1", same(c_in, c7, (1, 1))),
            ("branch7x7_2", same(c7, c7, (1, 7))),
            ("branch7x7_3", same(c7, 192, (7, 1))),
            ("branch7x7dbl_1", same(c_in, c7, (1, 1))),
            ("branch7x7dbl_2", same(c7, c7, (7, 1))),
            ("branch7x7dbl_3", same(c7, c7, (1, 7))),
            ("branch7x7dbl_4", same(c7, c7, (7, 1))),
            ("branch7x7dbl_5", same(c7, 192, (1, 7))),
            ("branch_pool", same(c_in, 192, (1, 1))),
        ],
        Block::D { c_in } => vec![
            ("branch3x3_1", same(c_in, 192, (1, 1))),
            ("branch3x3_2", down(192, 320)),
            ("branch7x7x3_1", same(c_in, 192, (1, 1))),
            ("branch7x7x3_2", same(192, 192, (1, 7))),
            ("branch7x7x3_3", same(192, 192, (7, 1))),
            ("branch7x7x3_4", down(192, 192)),
        ],
        Block::E { c_in, .. } => vec![
            ("branch1x1", same(c_in, 320, (1, 1))),
            ("branch3x3_1", same(c_in, 384, (1, 1))),
            ("branch3x3_2a", same(384, 384, (1, 3))),
            ("branch3x3_2b", same(384, 384, (3, 1))),
            ("branch3x3dbl_1", same(c_in, 448, (1, 1))),
            ("branch3x3dbl_2", same(448, 384, (3, 3))),
            ("branch3x3dbl_3a", same(384, 384, (1, 3))),
            ("branch3x3dbl_3b", same(384, 384, (3, 1))),
            ("branch_pool", same(c_in, 192, (1, 1))),
        ],
    }
}

/// Every convolution of the network as (state-dict prefix, spec), in order.
pub fn all_convs() -> Vec<(String, ConvSpec)> {
    let mut out: Vec<(String, ConvSpec)> = STEM.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    for (block, kind) in BLOCKS {
        for (branch, spec) in block_convs(kind) {
            out.push((format!("{block}.{branch}"), spec));
        }
    }
    out
}

/// Every tensor of the state dict the network reads (pytorch-fid's file also holds the
/// batch norms' `num_batches_tracked` counters and the unused auxiliary head), with shape.
pub fn tensors() -> Vec<(String, Vec<usize>)> {
    let mut out = Vec::new();
    for (name, s) in all_convs() {
        out.push((
            format!("{name}.conv.weight"),
            vec![s.c_out, s.c_in, s.k.0, s.k.1],
        ));
        for t in ["weight", "bias", "running_mean", "running_var"] {
            out.push((format!("{name}.bn.{t}"), vec![s.c_out]));
        }
    }
    out.push(("fc.weight".into(), vec![CLASSES, FEATURES]));
    out.push(("fc.bias".into(), vec![CLASSES]));
    out
}
