"""PyTorch peer of `gankit bench`: time the same GAN training iteration in plain PyTorch.

It reads the same gankit TOML config (strictly: unknown keys and bad values are refused, as
gankit refuses them), builds the same generator and discriminator (layers, kernels, strides,
paddings, biases, norms, activations, initialisation), the same objective and the same
optimisers (torch.optim.Adam / RMSprop / SGD with the config's hyper-parameters), and times
iterations exactly as `gankit bench` does:

    one iteration = train.d_steps discriminator steps, each on a fresh real batch,
                    then train.g_steps generator steps (always, whatever train.g_every says).

Real batches are uniform noise in [-1, 1] of shape (batch, channels, image_size, image_size):
no data is read, so a config's data.dataset / data.path do not matter, only image_size and
channels. After --warmup untimed iterations, each of --steps iterations is timed on its own and
the median, minimum and maximum are reported.

A D step: fakes from G (train mode, no gradient), D on the real batch and on the fakes in two
separate forward passes, the objective's loss (+ λ · gradient penalty for wgan-gp), backward,
optimiser step, then weight clipping for wgan. A G step: fresh noise, G, D with its weights
frozen (requires_grad off, as gankit runs D through a detached view of its weights), the
generator loss (or feature matching), backward, optimiser step. Every network stays in training mode (batch
norm uses batch statistics, dropout is on), as in gankit. Only the logged statistics
(d_real, acc_real, ...) that gankit reads back after each step are not computed here.

Setup (once, from the repository root):

    python3 -m venv venv && venv/bin/pip install torch numpy

Usage, side by side with gankit (same flags):

    venv/bin/python bench/pytorch_reference.py --config configs/wgan-gp.toml --threads 2
    gankit bench --config configs/wgan-gp.toml --threads 2

    venv/bin/python bench/pytorch_reference.py                      # the default config
    venv/bin/python bench/pytorch_reference.py --set train.loss=hinge --batch 128 --json
    venv/bin/python bench/pytorch_reference.py --config configs/dcgan64-folder.toml --device cuda

Flags: --config PATH, --set SECTION.KEY=VALUE (repeatable), --batch N, --steps N (20),
--warmup N (3), --threads N (0 = all cores), --json, and --device cpu|cuda (default cpu; on
cuda each timer stops after torch.cuda.synchronize(), and the peak of
torch.cuda.max_memory_allocated is reported beside the host's peak RSS).

Output (the same lines as gankit bench, plus the parameter counts):

    config        default (dcgan-fashion)
    step          1 D + 1 G steps, batch 64, loss non-saturating, 1 threads, cpu (avx512)
    params        G 771969 / D 138689
    ms/iteration  ... median of 20 (min ..., max ...)
    images/s      ...
    peak memory   ... MiB

--json prints one JSON object with gankit's keys (config, arch, loss, batch_size, d_steps,
g_steps, threads, device, steps, ms_median, ms_min, ms_max, images_per_s, peak_rss_mib,
g_params, d_params), plus peak_gpu_mib on cuda.

For wgan-gp's exact penalty this script differentiates D with
torch.autograd.grad(..., x̂, create_graph=True), which computes the input gradient only;
gankit's first backward pass skips D's weight gradients the same way
(kernels::input_gradient_only), so both do the same work.
"""

import argparse
import json
import math
import os
import resource
import statistics
import sys
import time
import tomllib

import torch
import torch.nn.functional as F
from torch import nn

# ---------------------------------------------------------------------------------------------
# Config: the schema of crates/gankit/src/config/{mod.rs,objective.rs}, with gankit's defaults.
# A field is (kind, default); a nested dict is a sub-section. Kinds: "uint" (usize / u64),
# "u32", "float", "bool", "str", "path" (optional string), or a tuple of allowed strings.
# ---------------------------------------------------------------------------------------------

OPTIMIZER = {
    "kind": (("adam", "rmsprop", "sgd"), "adam"),
    "lr": ("float", 2e-4),
    "beta1": ("float", 0.5),
    "beta2": ("float", 0.999),
    "eps": ("float", 1e-8),
    "alpha": ("float", 0.99),
    "momentum": ("float", 0.0),
}

SCHEMA = {
    "model": {
        "arch": (("dcgan28", "dcgan64", "allconv", "mlp"), "dcgan28"),
        "z_dim": ("uint", 100),
        "g_width": ("uint", 64),
        "d_width": ("uint", 64),
        "mlp_hidden": ("uint", 256),
        "d_dropout": ("float", 0.0),
        "d_norm": (("batch", "layer", "none"), "batch"),
        "critic": (("default", "conv4"), "default"),
    },
    "data": {
        "dataset": (("fashion-mnist", "idx", "folder"), "fashion-mnist"),
        "path": ("path", None),
        "split": (("train", "test"), "train"),
        "image_size": ("uint", 28),
        "channels": ("uint", 1),
    },
    "train": {
        "steps": ("uint", 3000),
        "batch_size": ("uint", 64),
        "d_steps": ("uint", 1),
        "g_steps": ("uint", 1),
        "loss": (
            ("minimax", "non-saturating", "wgan", "wgan-gp", "lsgan", "hinge"),
            "non-saturating",
        ),
        "g_every": ("uint", 1),
        "label_smoothing": (("none", "one-sided", "salimans"), "none"),
        "feature_matching": ("bool", False),
        "seed": ("uint", 0),
        "threads": ("uint", 0),
    },
    "optim": {"g": OPTIMIZER, "d": OPTIMIZER},
    "log": {
        "every": ("uint", 1),
        "sample_every": ("uint", 250),
        "grid": ("uint", 64),
        "lipschitz_every": ("uint", 0),
    },
    "checkpoint": {"every": ("uint", 500), "keep": ("uint", 3)},
    "wgan": {"clip": ("float", 0.01)},
    "gp": {
        "lambda": ("float", 10.0),
        "mode": (("exact", "finite-difference"), "exact"),
    },
    "lsgan": {
        "alpha": {
            "shape": (("linear", "step", "smooth-step"), "linear"),
            "start": ("uint", 0),
            "end": ("uint", 0),
            "max": ("float", 0.0),
            "levels": ("u32", 4),
        }
    },
    "eval": {
        "every": ("uint", 0),
        "n": ("uint", 2000),
        "evaluator": ("str", "auto"),
    },
}


class ConfigError(Exception):
    """An invalid config or flag: printed as `error: config: ...`, exit status 2."""


def _names(keys):
    return ", ".join(f"`{k}`" for k in keys)


def _check_value(kind, value, where):
    """The value of one field, checked against its kind (serde's rules for gankit's types)."""
    is_int = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(kind, tuple):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: invalid type: {value!r}, expected one of {_names(kind)}")
        if value not in kind:
            raise ConfigError(
                f"{where}: unknown variant `{value}`, expected one of {_names(kind)}"
            )
        return value
    if kind in ("uint", "u32"):
        top = 2**32 if kind == "u32" else 2**64
        if not is_int or not 0 <= value < top:
            raise ConfigError(f"{where}: invalid value: {value!r}, expected a non-negative integer")
        return value
    if kind == "float":
        if not (is_int or isinstance(value, float)):
            raise ConfigError(f"{where}: invalid type: {value!r}, expected a number")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: invalid type: {value!r}, expected a boolean")
        return value
    if kind in ("str", "path"):
        if not isinstance(value, str):
            raise ConfigError(f"{where}: invalid type: {value!r}, expected a string")
        return value
    raise AssertionError(kind)


def _resolve(schema, table, path):
    """Defaults of `schema` overridden by `table`; unknown keys are errors (deny_unknown_fields)."""
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: invalid type: {table!r}, expected a table")
    for key in table:
        if key not in schema:
            at = f"{path}: " if path else ""
            raise ConfigError(f"{at}unknown field `{key}`, expected one of {_names(schema)}")
    out = {}
    for key, spec in schema.items():
        where = f"{path}.{key}" if path else key
        if isinstance(spec, dict):
            out[key] = _resolve(spec, table.get(key, {}), where)
        else:
            kind, default = spec
            out[key] = _check_value(kind, table[key], where) if key in table else default
    return out


def _apply_override(table, item):
    """One `--set section.key=value`: the value as TOML when it parses, else a bare string."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. train.steps=300")
    key, raw = item.split("=", 1)
    parts = key.strip().split(".")
    if any(p == "" for p in parts):
        raise ConfigError(f"--set {item!r}: empty key segment")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    cur = table
    for section in parts[:-1]:
        cur = cur.setdefault(section, {})
        if not isinstance(cur, dict):
            raise ConfigError(f"--set {item!r}: `{section}` is a value, not a section")
    cur[parts[-1]] = value


def _validate(c):
    """Config::validate and validate_objective: value ranges and combinations."""
    m, d, t = c["model"], c["data"], c["train"]

    def bad(msg):
        raise ConfigError(msg)

    if 0 in (m["z_dim"], m["g_width"], m["d_width"], m["mlp_hidden"]):
        bad("model.z_dim, g_width, d_width and mlp_hidden must be at least 1")
    if not 0.0 <= m["d_dropout"] < 1.0:
        bad(f"model.d_dropout = {m['d_dropout']} must be in [0, 1)")
    if d["channels"] not in (1, 3):
        bad(f"data.channels = {d['channels']} must be 1 (grayscale) or 3 (RGB)")
    size = d["image_size"]
    if m["arch"] == "dcgan28" and size != 28:
        bad(
            f'model.arch = "dcgan28" needs data.image_size = 28 (got {size}); '
            'use "dcgan64" for other sizes'
        )
    if m["arch"] == "dcgan64" and (size < 32 or size & (size - 1) != 0):
        bad(f'model.arch = "dcgan64" needs data.image_size to be a power of two ≥ 32 (got {size})')
    if m["arch"] == "allconv" and not (size == 28 or (size >= 8 and size & (size - 1) == 0)):
        bad(f'model.arch = "allconv" needs data.image_size 28 or a power of two ≥ 8 (got {size})')
    if not 1 <= size <= 1024:
        bad(f"data.image_size = {size} must be in 1..=1024")
    if d["dataset"] in ("idx", "folder") and d["path"] is None:
        bad(f'data.dataset = "{d["dataset"]}" needs data.path')
    if 0 in (t["steps"], t["batch_size"], t["d_steps"], t["g_steps"], t["g_every"]):
        bad("train.steps, batch_size, d_steps, g_steps and g_every must be at least 1")
    loss, smoothing = t["loss"], t["label_smoothing"]
    has_bn = m["d_norm"] == "batch" and (m["critic"] == "conv4" or m["arch"] != "mlp")
    if loss == "wgan-gp" and has_bn:
        bad(
            'train.loss = "wgan-gp" penalises each sample\'s gradient, which batch norm couples '
            'across the batch: set model.d_norm = "layer" (report 000) or "none"'
        )
    if smoothing == "salimans" and loss != "lsgan":
        bad(
            'train.label_smoothing = "salimans" draws real targets up to 1.2, which only the '
            'least-squares loss accepts: use it with train.loss = "lsgan", or use "one-sided"'
        )
    if smoothing != "none" and loss not in ("minimax", "non-saturating", "lsgan"):
        bad("train.label_smoothing applies to the minimax, non-saturating and lsgan losses only")
    clip = c["wgan"]["clip"]
    if not (clip > 0.0 and math.isfinite(clip)):
        bad(f"wgan.clip = {clip} must be a positive number")
    lam = c["gp"]["lambda"]
    if not (lam >= 0.0 and math.isfinite(lam)):
        bad(f"gp.lambda = {lam} must be ≥ 0")
    a = c["lsgan"]["alpha"]
    if not 0.0 <= a["max"] <= 1.0:
        bad(f"lsgan.alpha.max = {a['max']} must be in [0, 1]")
    if a["max"] > 0.0 and a["end"] <= a["start"]:
        bad(f"lsgan.alpha.end = {a['end']} must be after lsgan.alpha.start = {a['start']}")
    if a["levels"] == 0:
        bad("lsgan.alpha.levels must be at least 1")
    for name in ("g", "d"):
        o = c["optim"][name]
        if not (o["lr"] > 0.0 and math.isfinite(o["lr"])):
            bad(f"optim.{name}.lr = {o['lr']} must be a positive number")
        if not (0.0 <= o["beta1"] < 1.0 and 0.0 <= o["beta2"] < 1.0):
            bad(f"optim.{name}.beta1 and beta2 must be in [0, 1)")
        if not o["eps"] > 0.0:
            bad(f"optim.{name}.eps must be positive")
        if not (0.0 <= o["alpha"] < 1.0 and 0.0 <= o["momentum"] < 1.0):
            bad(f"optim.{name}.alpha and momentum must be in [0, 1)")
    if 0 in (c["log"]["every"], c["log"]["sample_every"], c["checkpoint"]["every"]):
        bad("log.every, log.sample_every and checkpoint.every must be at least 1")
    if c["eval"]["every"] > 0 and c["eval"]["n"] < 10:
        bad(f"eval.n = {c['eval']['n']} is too few images to score (at least 10)")
    if c["log"]["grid"] == 0 or c["checkpoint"]["keep"] == 0:
        bad("log.grid and checkpoint.keep must be at least 1")


def load_config(text, origin, overrides):
    """Parse a gankit TOML text, apply `--set` overrides, fill defaults and check it."""
    try:
        table = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{origin}: {e}") from None
    for item in overrides:
        _apply_override(table, item)
    try:
        cfg = _resolve(SCHEMA, table, "")
    except ConfigError as e:
        raise ConfigError(f"{origin}: {e}") from None
    _validate(cfg)
    return cfg


def lsgan_alpha(a, t):
    """AlphaSchedule::at: LSGAN's α at iteration t."""
    if a["max"] == 0.0 or t <= a["start"]:
        return 0.0
    if t >= a["end"]:
        return a["max"]
    u = (t - a["start"]) / (a["end"] - a["start"])
    if a["shape"] == "step":
        u = math.floor(u * a["levels"]) / a["levels"]
    elif a["shape"] == "smooth-step":
        u = u * u * (3.0 - 2.0 * u)
    return a["max"] * u


# ---------------------------------------------------------------------------------------------
# Models: crates/gankit/src/models/*.rs and crates/gankit/src/nn/*.rs.
# ---------------------------------------------------------------------------------------------


def dcgan_init(module):
    """DCGAN initialisation (gankit's dcgan_init): weights N(0, 0.02), biases 0, batch-norm
    scale N(1, 0.02); layer norm keeps scale 1, shift 0."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def norm2d(kind, channels):
    """The discriminator's hidden-layer norm. gankit's "layer" norm normalises each sample over
    all of (C, H, W) with a per-channel scale and shift: GroupNorm with one group."""
    if kind == "batch":
        return nn.BatchNorm2d(channels, eps=1e-5, momentum=0.1)
    if kind == "layer":
        return nn.GroupNorm(1, channels, eps=1e-5)
    return nn.Identity()


class Dcgan28Generator(nn.Module):
    """z → Linear(2w·7·7, no bias) → BN → ReLU → ConvT(2w→w, k4 s2 p1, no bias) → BN → ReLU
    → ConvT(w→C, k4 s2 p1) → tanh."""

    def __init__(self, z_dim, w, channels):
        super().__init__()
        self.w = w
        self.fc = nn.Linear(z_dim, 2 * w * 49, bias=False)
        self.bn0 = nn.BatchNorm1d(2 * w * 49)
        self.deconv1 = nn.ConvTranspose2d(2 * w, w, 4, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.deconv2 = nn.ConvTranspose2d(w, channels, 4, 2, 1, bias=True)
        dcgan_init(self)

    def forward(self, z):
        h = F.relu(self.bn0(self.fc(z))).view(z.shape[0], 2 * self.w, 7, 7)
        h = F.relu(self.bn1(self.deconv1(h)))
        return torch.tanh(self.deconv2(h))


class Dcgan64Generator(nn.Module):
    """z → FC(8w·(S/16)², no bias) → BN → ReLU → 4 × ConvT(k5 s2 p2 op1): 8w→4w→2w→w→C,
    BN + ReLU after the first three (no bias), bias and tanh on the last."""

    def __init__(self, z_dim, w, channels, size):
        super().__init__()
        self.w, self.base = w, size // 16
        feats = 8 * w * self.base * self.base
        self.fc = nn.Linear(z_dim, feats, bias=False)
        self.bn0 = nn.BatchNorm1d(feats)
        chans = [8 * w, 4 * w, 2 * w, w, channels]
        self.deconvs = nn.ModuleList(
            nn.ConvTranspose2d(chans[i], chans[i + 1], 5, 2, 2, output_padding=1, bias=i == 3)
            for i in range(4)
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(chans[i + 1]) for i in range(3))
        dcgan_init(self)

    def forward(self, z):
        h = F.relu(self.bn0(self.fc(z)))
        h = h.view(z.shape[0], 8 * self.w, self.base, self.base)
        for i, deconv in enumerate(self.deconvs):
            h = deconv(h)
            h = F.relu(self.bns[i](h)) if i < 3 else torch.tanh(h)
        return h


def allconv_maps(w, size):
    """models/allconv.rs `maps`: the hidden maps coarse to fine, (channels, side)."""
    base = 7 if size == 28 else 4
    n = (size // base).bit_length() - 1
    return [(w << (n - 1 - j), base << j) for j in range(n)]


class AllConvGenerator(nn.Module):
    """Report 001 §4.1's G (models/allconv.rs): z as a 1×1 map → ConvT(k = base, s1, no
    bias) → BN → ReLU → [ConvT 4×4 s2 p1 → BN → ReLU] … → ConvT 4×4 s2 p1 (bias) → tanh."""

    def __init__(self, z_dim, w, channels, size):
        super().__init__()
        maps = allconv_maps(w, size)
        c0, base = maps[0]
        self.first = nn.ConvTranspose2d(z_dim, c0, base, 1, 0, bias=False)
        self.bn0 = nn.BatchNorm2d(c0)
        self.ups = nn.ModuleList(
            nn.ConvTranspose2d(maps[j - 1][0], maps[j][0], 4, 2, 1, bias=False)
            for j in range(1, len(maps))
        )
        self.bns = nn.ModuleList(nn.BatchNorm2d(maps[j][0]) for j in range(1, len(maps)))
        self.last = nn.ConvTranspose2d(maps[-1][0], channels, 4, 2, 1, bias=True)
        dcgan_init(self)

    def forward(self, z):
        h = F.relu(self.bn0(self.first(z.view(z.shape[0], -1, 1, 1))))
        for up, bn in zip(self.ups, self.bns):
            h = F.relu(bn(up(h)))
        return torch.tanh(self.last(h))


class ConvDiscriminator(nn.Module):
    """Stride-2 conv blocks chans[0] → chans[1] → … (conv → norm → LeakyReLU(0.2), no norm
    on the first block; a conv has a bias unless a norm follows it), then Linear(→ 1), or
    with `conv_score` a convolution covering the last map (report 001's all-convolutional D,
    models/allconv.rs). Returns (logits (batch,), features (batch, F))."""

    def __init__(self, chans, kernel, stride, padding, norm, side, conv_score=False):
        super().__init__()
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        for i in range(len(chans) - 1):
            bias = i == 0 or norm == "none"
            self.convs.append(nn.Conv2d(chans[i], chans[i + 1], kernel, stride, padding, bias=bias))
            if i > 0:
                self.norms.append(norm2d(norm, chans[i + 1]))
            side = (side + 2 * padding - kernel) // stride + 1
        if conv_score:
            self.score = nn.Conv2d(chans[-1], 1, side, 1, 0, bias=True)
        else:
            self.score = nn.Sequential(nn.Flatten(), nn.Linear(chans[-1] * side * side, 1))
        dcgan_init(self)

    def forward(self, x):
        h = x
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i > 0:
                h = self.norms[i - 1](h)
            h = F.leaky_relu(h, 0.2)
        return self.score(h).flatten(), h.flatten(1)


class MlpGenerator(nn.Module):
    """z → h → 2h → 4h → C·S·S, LeakyReLU(0.2) between, tanh last; PyTorch's default
    nn.Linear initialisation U(±1/√fan_in), as gankit's mlp.rs."""

    def __init__(self, z_dim, h, channels, size):
        super().__init__()
        self.shape = (channels, size, size)
        dims = [z_dim, h, 2 * h, 4 * h, channels * size * size]
        self.layers = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(4))

    def forward(self, z):
        h = z
        for i, layer in enumerate(self.layers):
            h = layer(h)
            h = F.leaky_relu(h, 0.2) if i < 3 else torch.tanh(h)
        return h.view(z.shape[0], *self.shape)


class MlpDiscriminator(nn.Module):
    """C·S·S → 4h → 2h → h → 1, LeakyReLU(0.2) then dropout after each hidden layer."""

    def __init__(self, h, p, channels, size):
        super().__init__()
        dims = [channels * size * size, 4 * h, 2 * h, h, 1]
        self.layers = nn.ModuleList(nn.Linear(dims[i], dims[i + 1]) for i in range(4))
        # gankit skips dropout entirely when p = 0.
        self.dropout = nn.Dropout(p) if p > 0 else nn.Identity()

    def forward(self, x):
        h = x.flatten(1)
        for layer in self.layers[:3]:
            h = self.dropout(F.leaky_relu(layer(h), 0.2))
        return self.layers[3](h).squeeze(1), h


def build_models(cfg):
    """models::build: the generator and discriminator of `cfg`."""
    m, d = cfg["model"], cfg["data"]
    c, s = d["channels"], d["image_size"]
    if m["arch"] == "dcgan28":
        g = Dcgan28Generator(m["z_dim"], m["g_width"], c)
    elif m["arch"] == "dcgan64":
        g = Dcgan64Generator(m["z_dim"], m["g_width"], c, s)
    elif m["arch"] == "allconv":
        g = AllConvGenerator(m["z_dim"], m["g_width"], c, s)
    else:
        g = MlpGenerator(m["z_dim"], m["mlp_hidden"], c, s)
    w, norm = m["d_width"], m["d_norm"]
    if m["critic"] == "conv4":
        dnet = ConvDiscriminator([c, 16, 32, 64, 128], 3, 2, 1, norm, s)
    elif m["arch"] == "dcgan28":
        dnet = ConvDiscriminator([c, w, 2 * w], 4, 2, 1, norm, s)
    elif m["arch"] == "dcgan64":
        dnet = ConvDiscriminator([c, w, 2 * w, 4 * w, 8 * w], 5, 2, 2, norm, s)
    elif m["arch"] == "allconv":
        hidden = [ch for ch, _ in reversed(allconv_maps(w, s))]
        dnet = ConvDiscriminator([c] + hidden, 4, 2, 1, norm, s, conv_score=True)
    else:
        dnet = MlpDiscriminator(m["mlp_hidden"], m["d_dropout"], c, s)
    return g, dnet


def build_optimizer(params, o):
    """optim::build: torch's own Adam / RMSprop / SGD (gankit's rules follow them, no decay)."""
    if o["kind"] == "adam":
        return torch.optim.Adam(params, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"])
    if o["kind"] == "rmsprop":
        return torch.optim.RMSprop(
            params, lr=o["lr"], alpha=o["alpha"], eps=o["eps"], momentum=o["momentum"]
        )
    return torch.optim.SGD(params, lr=o["lr"], momentum=o["momentum"])


def num_params(module):
    """Trainable parameters (batch-norm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in module.parameters())


# ---------------------------------------------------------------------------------------------
# Objectives: crates/gankit/src/objectives/*.rs and crates/gankit/src/losses.rs.
# ---------------------------------------------------------------------------------------------


class Objective:
    """The config's objective: D and G steps with their losses, penalty and clipping."""

    def __init__(self, cfg, g, d, device):
        t = cfg["train"]
        self.loss = t["loss"]
        self.smoothing = t["label_smoothing"]
        self.feature_matching = t["feature_matching"]
        self.clip = cfg["wgan"]["clip"]
        self.gp = cfg["gp"]
        self.alpha_schedule = cfg["lsgan"]["alpha"]
        self.alpha = 0.0
        self.z_dim = cfg["model"]["z_dim"]
        self.g, self.d, self.device = g, d, device
        self.opt_g = build_optimizer(g.parameters(), cfg["optim"]["g"])
        self.opt_d = build_optimizer(d.parameters(), cfg["optim"]["d"])

    def begin_iteration(self, iteration):
        self.alpha = lsgan_alpha(self.alpha_schedule, iteration)

    def noise(self, n):
        return torch.randn(n, self.z_dim, device=self.device)

    # targets.rs: real 1 / one-sided 0.9 / Salimans U[0.7, 1.2]; fake 0 / Salimans U[0, 0.3].
    def real_targets(self, n):
        if self.smoothing == "salimans":
            return torch.empty(n, device=self.device).uniform_(0.7, 1.2)
        return torch.full((n,), 0.9 if self.smoothing == "one-sided" else 1.0, device=self.device)

    def fake_targets(self, n):
        if self.smoothing == "salimans":
            return torch.empty(n, device=self.device).uniform_(0.0, 0.3)
        return torch.zeros(n, device=self.device)

    def d_loss(self, real, fake, real_logits, fake_logits):
        n = real.shape[0]
        if self.loss in ("minimax", "non-saturating"):
            bce = F.binary_cross_entropy_with_logits
            return bce(real_logits, self.real_targets(n)) + bce(fake_logits, self.fake_targets(n))
        if self.loss == "lsgan":
            t_real = self.real_targets(n)
            t_fake = self.fake_targets(n) + self.alpha
            return 0.5 * (real_logits - t_real).square().mean() + 0.5 * (
                fake_logits - t_fake
            ).square().mean()
        if self.loss == "hinge":
            return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
        critic = fake_logits.mean() - real_logits.mean()  # wgan, wgan-gp
        if self.loss == "wgan-gp":
            critic = critic + self.gp["lambda"] * self.penalty(real, fake)
        return critic

    def penalty(self, real, fake):
        """penalty.rs: interpolates x̂ = x̃ + ε (x − x̃), one ε ~ U[0, 1] per sample."""
        n = real.shape[0]

        def interpolate():
            eps = torch.rand(n, 1, 1, 1, device=self.device)
            return fake + (real - fake) * eps

        def norms(t):
            return (t.flatten(1).square().sum(1) + 1e-12).sqrt()

        if self.gp["mode"] == "exact":
            x_hat = interpolate().requires_grad_(True)
            logits, _ = self.d(x_hat)
            (grad,) = torch.autograd.grad(logits.sum(), x_hat, create_graph=True)
            return (norms(grad) - 1.0).square().mean()
        # Report 003 eq. 21: (|D(x1) − D(x2)| / ‖x1 − x2‖ − 1)².
        x1, x2 = interpolate(), interpolate()
        d1, _ = self.d(x1)
        d2, _ = self.d(x2)
        slope = (d1 - d2).abs() / norms(x1 - x2)
        return (slope - 1.0).square().mean()

    def d_step(self, real):
        with torch.no_grad():
            fake = self.g(self.noise(real.shape[0]))
        real_logits, _ = self.d(real)
        fake_logits, _ = self.d(fake)
        loss = self.d_loss(real, fake, real_logits, fake_logits)
        self.opt_d.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_d.step()
        if self.loss == "wgan":
            with torch.no_grad():
                for p in self.d.parameters():
                    p.clamp_(-self.clip, self.clip)

    def g_loss(self, logits):
        if self.loss == "minimax":
            return -F.softplus(logits).mean()
        if self.loss == "non-saturating":
            return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
        if self.loss == "lsgan":
            return 0.5 * (logits - 1.0).square().mean()
        return -logits.mean()  # wgan, wgan-gp, hinge

    def g_step(self, real):
        # Like gankit, D's weights are frozen for G's step, so the backward pass skips D's
        # weight gradients (G's update never uses them).
        self.d.requires_grad_(False)
        fake = self.g(self.noise(real.shape[0]))
        logits, fake_features = self.d(fake)
        if self.feature_matching:
            with torch.no_grad():
                _, real_features = self.d(real)
            loss = (real_features.mean(0) - fake_features.mean(0)).square().sum()
        else:
            loss = self.g_loss(logits)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.d.requires_grad_(True)


# ---------------------------------------------------------------------------------------------
# The benchmark: crates/gankit/src/bench.rs and crates/gankit-cli/src/bench.rs.
# ---------------------------------------------------------------------------------------------


def run(cfg, device, warmup, steps):
    """Time `steps` iterations after `warmup`; returns (samples_ms, g_params, d_params)."""
    t = cfg["train"]
    b, c, s = t["batch_size"], cfg["data"]["channels"], cfg["data"]["image_size"]
    torch.manual_seed(t["seed"])
    g, d = build_models(cfg)
    g.to(device).train()
    d.to(device).train()
    objective = Objective(cfg, g, d, device)

    def next_real():
        return torch.empty(b, c, s, s, device=device).uniform_(-1.0, 1.0)

    samples_ms = []
    for i in range(warmup + steps):
        # Every iteration trains G, whatever train.g_every says (as gankit bench does).
        iteration = (i + 1) * t["g_every"]
        t0 = time.perf_counter()
        objective.begin_iteration(iteration)
        for _ in range(t["d_steps"]):
            real = next_real()
            objective.d_step(real)
        for _ in range(t["g_steps"]):
            objective.g_step(real)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i >= warmup:
            samples_ms.append((time.perf_counter() - t0) * 1e3)
    return samples_ms, num_params(g), num_params(d)


def cpu_isa():
    """ATen's CPU kernel level in gankit's words (ATEN_CPU_CAPABILITY narrows it)."""
    cap = torch.backends.cpu.get_cpu_capability().lower()
    return {"avx512": "avx512", "avx2": "avx2"}.get(cap, "x86-64")


def peak_rss_mib():
    """The process's peak resident set size, in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def all_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def parse_args(argv):
    p = argparse.ArgumentParser(
        description="Time GAN training iterations of a gankit config in PyTorch "
        "(the peer of `gankit bench`)."
    )
    p.add_argument("--config", help="experiment config (TOML); default: the built-in default")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override one config value, e.g. --set train.loss=hinge (repeatable)",
    )
    p.add_argument("--batch", type=int, help="batch size (overrides train.batch_size)")
    p.add_argument("--steps", type=int, default=20, help="timed iterations (default 20)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    p.add_argument(
        "--threads", type=int, help="worker threads (overrides train.threads; 0 = all cores)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu", help="default cpu")
    args = p.parse_args(argv)
    for flag in ("batch", "steps", "warmup", "threads"):
        v = getattr(args, flag)
        if v is not None and v < 0:
            p.error(f"--{flag} must be ≥ 0")
    return args


def main(argv=None):
    # Before any parallel work: inter-op parallelism stays off (gankit runs one op at a time).
    torch.set_num_interop_threads(1)
    args = parse_args(argv)
    sets = list(args.set)
    if args.batch is not None:
        sets.append(f"train.batch_size={args.batch}")
    if args.threads is not None:
        sets.append(f"train.threads={args.threads}")
    try:
        if args.config is not None:
            try:
                with open(args.config, encoding="utf-8") as f:
                    text = f.read()
            except OSError as e:
                raise ConfigError(f"{args.config}: {e.strerror}") from None
            cfg, name = load_config(text, args.config, sets), args.config
        else:
            cfg, name = load_config("", "default config", sets), "default (dcgan-fashion)"
        if args.steps == 0:
            raise ConfigError("bench: --steps must be at least 1")
    except ConfigError as e:
        print(f"error: config: {e}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda: torch sees no CUDA device", file=sys.stderr)
        return 2

    t = cfg["train"]
    threads = t["threads"] if t["threads"] > 0 else all_cores()
    torch.set_num_threads(threads)
    threads = torch.get_num_threads()
    device = torch.device(args.device)

    samples, g_params, d_params = run(cfg, device, args.warmup, args.steps)
    ms_median = statistics.median(samples)
    ms_min, ms_max = min(samples), max(samples)
    images_per_s = t["batch_size"] * t["d_steps"] / (ms_median / 1e3)
    rss = peak_rss_mib()
    gpu = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None

    if args.json:
        out = {
            "config": name,
            "arch": cfg["model"]["arch"],
            "loss": t["loss"],
            "batch_size": t["batch_size"],
            "d_steps": t["d_steps"],
            "g_steps": t["g_steps"],
            "threads": threads,
            "device": device.type,
            "isa": cpu_isa(),
            "steps": args.steps,
            "ms_median": ms_median,
            "ms_min": ms_min,
            "ms_max": ms_max,
            "images_per_s": images_per_s,
            "peak_rss_mib": rss,
            "g_params": g_params,
            "d_params": d_params,
        }
        if gpu is not None:
            out["peak_gpu_mib"] = gpu
        # serde_json's compact form with its (alphabetical) key order.
        print(json.dumps(out, sort_keys=True, separators=(",", ":"), ensure_ascii=False))
    else:
        print(f"config        {name}")
        print(
            f"step          {t['d_steps']} D + {t['g_steps']} G steps, batch {t['batch_size']}, "
            f"loss {t['loss']}, {threads} threads, {device.type} ({cpu_isa()})"
        )
        print(f"params        G {g_params} / D {d_params}")
        print(
            f"ms/iteration  {ms_median:.1f} median of {args.steps} "
            f"(min {ms_min:.1f}, max {ms_max:.1f})"
        )
        print(f"images/s      {images_per_s:.0f}")
        if gpu is not None:
            print(f"peak memory   {gpu:.0f} MiB GPU (max allocated), {rss:.0f} MiB host RSS")
        else:
            print(f"peak memory   {rss:.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
