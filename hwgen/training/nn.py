"""PyTorch layers and models for heterogeneous-bitwidth binarized networks.

``HBBLinear`` and ``HBBConv2d`` are drop-ins for ``nn.Linear`` / ``nn.Conv2d``
whose weights are HBB-binarized: every weight has its own bit count (buffer
``nbits``), chosen by a selection rule for the target mix, and the forward
pass uses the residual binarization produced by a ProxConnect++ quantizer
pair (see :mod:`hwgen.training.quant` and docs/training.md). In ``eval()`` mode the
forward pass is exactly what the exported integer model computes (up to
float rounding): sign planes, frozen bit counts.
"""
import torch
from torch import nn

from .quant import SCALES, SELECTIONS, get_quantizer, hbb, pullback, random_bits

__all__ = ["HBBLinear", "HBBConv2d", "SignActivation", "ResidualActivation", "HBBMLP", "HBBCNN",
           "BinaryLinear", "HBBTransformer", "LogitScale", "float_teacher", "set_progress", "finish_training",
           "hbb_modules", "parse_conv_spec"]


class _HBBWeight:
    """Shared machinery of the HBB layers (a mixin for nn.Linear / nn.Conv2d)."""

    def _init_hbb(self, mix, quantizer, selection, scale, recompute_every, freeze_after, group):
        self.quant = get_quantizer(quantizer)
        if selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, not {selection!r}")
        if scale not in SCALES:
            raise ValueError(f"scale must be one of {SCALES}, not {scale!r}")
        if int(recompute_every) < 1:
            raise ValueError(f"recompute_every must be at least 1, not {recompute_every}")
        self.mix = dict(mix)
        self.quantizer = quantizer
        self.selection = selection
        self.scale = scale
        self.recompute_every = int(recompute_every)
        self.freeze_after = float(freeze_after)
        self.group = group if group is None or isinstance(group, str) else tuple(int(v) for v in group)
        if selection == "random":  # fixed at construction from torch's global RNG
            nbits = random_bits(tuple(self.weight.shape), self.mix, group=self.group)
        else:
            nbits = hbb(self.weight, mix=self.mix, selection=selection, scale=scale, group=self.group).nbits
        self.register_buffer("nbits", nbits)
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))
        self.register_buffer("progress", torch.zeros((), dtype=torch.float64))
        self._hints = {}  # warm start of the selection between steps (see quant._smallest_k)

    def _recomputes(self):
        return self.selection != "random" and float(self.progress) < self.freeze_after

    def update_bits(self):
        """Recompute the bit counts from the current weights (no-op for ``random``)."""
        if self.selection != "random":
            self.nbits.copy_(hbb(self.weight, mix=self.mix, selection=self.selection, scale=self.scale,
                                 group=self.group).nbits)

    def quantized_weight(self):
        t = float(self.progress) if self.training else 1.0
        q = self.quant
        if self.training:
            select = self._recomputes() and int(self.step) % self.recompute_every == 0
            self.step += 1
        else:
            select = False
        if select and q.hard(t):  # selection and binarization in one pass
            res = hbb(self.weight, mix=self.mix, selection=self.selection, scale=self.scale,
                      quantizer=q, t=t, hints=self._hints, group=self.group)
            self.nbits.copy_(res.nbits)
        else:  # masks are defined on sign residuals: select first, then the soft planes
            if select:
                self.update_bits()
            res = hbb(self.weight, nbits=self.nbits, scale=self.scale, quantizer=q, t=t)
        return pullback(self.weight, res.w_hat, res.jac)

    def binarized(self):
        """``(mus, planes)`` of the frozen sign binarization: ``mus[b-1]`` a
        float64 array ``[out]`` (equal entries for per-tensor scales) and
        ``planes[b-1]`` a +-1/0 tensor ``[out, fan_in]``."""
        res = hbb(self.weight.detach(), nbits=self.nbits, scale=self.scale)
        mus, planes, out = res.mus, res.planes, self.weight.shape[0]
        mus = [mu.double().reshape(-1).expand(out).numpy().copy() for mu in mus]
        return mus, [p.reshape(out, -1) for p in planes]

    def hbb_repr(self):
        mix = ",".join(f"{b}:{p:g}" for b, p in sorted(self.mix.items()))
        group = "" if self.group is None else ", group=" + (
            self.group if isinstance(self.group, str) else f"{self.group[0]}x{self.group[1]}")
        return (f"mix={mix}, quantizer={self.quantizer}, selection={self.selection}, "
                f"scale={self.scale}{group}")


class HBBLinear(_HBBWeight, nn.Linear):
    """Drop-in for :class:`torch.nn.Linear` with HBB weights."""

    def __init__(self, in_features, out_features, bias=False, *, mix, quantizer="bnn",
                 selection="middle-out", scale="tensor", recompute_every=1, freeze_after=1.0, group=None):
        nn.Linear.__init__(self, in_features, out_features, bias=bias)
        self._init_hbb(mix, quantizer, selection, scale, recompute_every, freeze_after, group)

    def forward(self, x):
        return nn.functional.linear(x, self.quantized_weight(), self.bias)

    def extra_repr(self):
        return f"{nn.Linear.extra_repr(self)}, {self.hbb_repr()}"


class HBBConv2d(_HBBWeight, nn.Conv2d):
    """Drop-in for :class:`torch.nn.Conv2d` with HBB weights. The integer
    format describes stride 1, no padding, no dilation and one group (the
    defaults); :func:`hwgen.export` refuses a layer with other settings."""

    def __init__(self, in_channels, out_channels, kernel_size, bias=False, *, mix, quantizer="bnn",
                 selection="middle-out", scale="tensor", recompute_every=1, freeze_after=1.0, group=None,
                 stride=1, padding=0, dilation=1):
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel_size, bias=bias, stride=stride,
                           padding=padding, dilation=dilation)
        self._init_hbb(mix, quantizer, selection, scale, recompute_every, freeze_after, group)

    def forward(self, x):
        if self.padding_mode != "zeros":
            raise ValueError(f"HBBConv2d supports padding_mode 'zeros' only, not {self.padding_mode!r}")
        return nn.functional.conv2d(x, self.quantized_weight(), self.bias, self.stride, self.padding,
                                    self.dilation, self.groups)

    def extra_repr(self):
        return f"{nn.Conv2d.extra_repr(self)}, {self.hbb_repr()}"


def hbb_modules(model):
    return [m for m in model.modules() if isinstance(m, _HBBWeight)]


def set_progress(model, t):
    """Tell every HBB layer how far training has got (``t`` in [0, 1]); it
    drives the quantizer's annealing and the mask freeze."""
    for m in hbb_modules(model):
        m.progress.fill_(float(t))


def finish_training(model):
    """Freeze the masks on the final weights (unless they were frozen earlier)."""
    set_progress(model, 1.0)
    for m in hbb_modules(model):
        if m.selection != "random" and m.freeze_after >= 1.0:
            m.update_bits()


class _Sign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


class SignActivation(nn.Module):
    """``sign(x)`` with ``sign(0) = +1``; clipped straight-through gradient."""

    def forward(self, x):
        return _Sign.apply(x)


class _ResidualSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, bits):
        ctx.save_for_backward(x)
        ctx.limit = 2.0 - 2.0 ** (1 - bits)
        r, out = x, torch.zeros_like(x)
        for k in range(bits):
            s = (r >= 0).to(x.dtype) * 2 - 1
            out = out + s * 2.0 ** -k
            r = r - s * 2.0 ** -k
        return out

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= ctx.limit).to(grad.dtype), None


class ResidualActivation(nn.Module):
    """k-bit residual binarization of activations with fixed scales
    ``1, 1/2, ..., 2^(1-k)``: ``a = sum_k 2^(1-k) s_k``, ``s_k = sign(r_k)``,
    ``r_{k+1} = r_k - 2^(1-k) s_k`` (the preceding BatchNorm learns the
    scale). ``a * 2^(k-1)`` is an odd integer in ``[-(2^k - 1), 2^k - 1]``,
    which is what the next integer layer reads. One bit is :class:`SignActivation`.
    Gradient: straight through, clipped to ``|x| <= 2 - 2^(1-k)``."""

    def __init__(self, bits=1):
        super().__init__()
        if not 1 <= int(bits) <= 4:
            raise ValueError(f"activation bits must be 1..4, not {bits}")
        self.bits = int(bits)

    def forward(self, x):
        return _Sign.apply(x) if self.bits == 1 else _ResidualSign.apply(x, self.bits)

    def extra_repr(self):
        return f"bits={self.bits}"


def parse_conv_spec(spec):
    """``"c16,c16,p,c32,p"`` -> ``[16, 16, "p", 32, "p"]`` (3x3 convs, 2x2 max-pools)."""
    out = []
    for part in str(spec).split(","):
        part = part.strip().lower()
        if part == "p":
            if not out or out[-1] == "p":
                raise ValueError(f"conv spec {spec!r}: a pool 'p' must follow a conv")
            out.append("p")
        elif part.startswith("c") and part[1:].isdigit() and int(part[1:]) >= 1:
            out.append(int(part[1:]))
        else:
            raise ValueError(f"conv spec {spec!r}: {part!r} is neither 'c<channels>' nor 'p'")
    if not out:
        raise ValueError("conv spec is empty")
    return out


class LogitScale(nn.Module):
    """Multiplies the class scores by a learned positive factor ``exp(s)``
    (``s`` starts at 0). With binarized weights the scores' magnitude is
    tied to the latent weights through the scales ``mu_b``; this factor
    lets the softmax temperature be learned on its own. A positive factor
    changes no argmax, so export drops it: the integer scores are those of
    the layer before it."""

    def __init__(self):
        super().__init__()
        self.log_scale = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x * torch.exp(self.log_scale)


class HBBMLP(nn.Module):
    """HBBLinear -> BatchNorm -> sign, repeated, then an HBBLinear with bias
    producing the class scores (times a :class:`LogitScale` if
    ``logit_scale``).

    The first layer sees unsigned integer pixels as floats (no normalisation:
    the BatchNorm after it absorbs the scale, and the hardware sees the same
    integers). ``dropout`` (training only) acts on the hidden activations.
    """

    def __init__(self, in_features, hidden, n_classes, act_bits=1, dropout=0.0, logit_scale=False, **hbb_kw):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        self.features = nn.ModuleList()
        self.hidden = _dense_blocks(in_features, hidden, hbb_kw)
        self.out = HBBLinear(([in_features] + list(hidden))[-1], n_classes, bias=True, **hbb_kw)
        self.act = ResidualActivation(act_bits)
        self.scores = LogitScale() if logit_scale else nn.Identity()

    def forward(self, x):
        for block in self.hidden:
            x = self.drop(self.act(block["bn"](block["linear"](x))))
        return self.scores(self.out(x))


def _dense_blocks(fan_in, hidden, hbb_kw):
    blocks = nn.ModuleList()
    for fan_out in hidden:
        blocks.append(nn.ModuleDict({"linear": HBBLinear(fan_in, fan_out, **hbb_kw),
                                     "bn": nn.BatchNorm1d(fan_out)}))
        fan_in = fan_out
    return blocks


class HBBCNN(nn.Module):
    """Convolutional HBB network: [HBBConv2d 3x3 -> BatchNorm2d -> sign
    (-> 2x2 max-pool)] per ``conv`` entry, flatten, then dense blocks like
    :class:`HBBMLP`. Max-pooling after sign is a logical OR of the bits in
    hardware. ``dropout`` (training only) acts on the inputs of the dense
    layers."""

    def __init__(self, image_shape, conv, hidden, n_classes, act_bits=1, dropout=0.0, logit_scale=False,
                 **hbb_kw):
        super().__init__()
        self.drop = nn.Dropout(dropout)
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.features = nn.ModuleList()
        for item in conv:
            if item == "p":
                self.features[-1]["pool"] = nn.MaxPool2d(2)
                h, w = h // 2, w // 2
                continue
            if h < 3 or w < 3:
                raise ValueError(f"conv spec leaves a {h}x{w} map, too small for a 3x3 conv")
            self.features.append(nn.ModuleDict({"conv": HBBConv2d(c, item, 3, **hbb_kw),
                                                "bn": nn.BatchNorm2d(item)}))
            c, h, w = item, h - 2, w - 2
        self.hidden = _dense_blocks(c * h * w, hidden, hbb_kw)
        self.out = HBBLinear(([c * h * w] + list(hidden))[-1], n_classes, bias=True, **hbb_kw)
        self.act = ResidualActivation(act_bits)
        self.scores = LogitScale() if logit_scale else nn.Identity()

    def forward(self, x):
        x = x.reshape(x.shape[0], *self.image_shape)
        for block in self.features:
            x = self.act(block["bn"](block["conv"](x)))
            if "pool" in block:
                x = block["pool"](x)
        x = self.drop(x.flatten(1))
        for block in self.hidden:
            x = self.drop(self.act(block["bn"](block["linear"](x))))
        return self.scores(self.out(x))


#: Dropout on a float teacher's dense inputs (see :func:`float_teacher`).
TEACHER_DROPOUT = 0.3


def float_teacher(image_shape, conv, hidden, n_classes):
    """The full-precision twin of an :class:`HBBMLP` (``conv`` None) or
    :class:`HBBCNN`, used as the teacher for knowledge distillation: the same
    layers with float weights, ReLU instead of sign, dropout
    :data:`TEACHER_DROPOUT` on the dense layers' inputs (not on the pixels,
    for an MLP). It reads the same
    unsigned pixels (the BatchNorm after the first layer absorbs their
    scale)."""
    c, h, w = image_shape
    layers = []
    if conv:
        layers.append(nn.Unflatten(1, (c, h, w)))
        for item in conv:
            if item == "p":
                layers.append(nn.MaxPool2d(2))
                h, w = h // 2, w // 2
                continue
            layers += [nn.Conv2d(c, item, 3, bias=False), nn.BatchNorm2d(item), nn.ReLU()]
            c, h, w = item, h - 2, w - 2
        layers.append(nn.Flatten())
    fan_in = c * h * w
    for fan_out in hidden:
        if layers:    # not on the pixels
            layers.append(nn.Dropout(TEACHER_DROPOUT))
        layers += [nn.Linear(fan_in, fan_out, bias=False), nn.BatchNorm1d(fan_out), nn.ReLU()]
        fan_in = fan_out
    if layers:
        layers.append(nn.Dropout(TEACHER_DROPOUT))
    layers.append(nn.Linear(fan_in, n_classes))
    return nn.Sequential(*layers)


class BinaryLinear(nn.Module):
    """A BMT-style binarized projection for Transformers: an :class:`HBBLinear`
    followed by a LayerNorm (the extra normalisation that tames the variance
    of +-1 dot products), with a residual connection when the shapes allow.
    Its scales stay in float during training; the projection itself exports
    to the same integer form as any HBBLinear."""

    def __init__(self, in_features, out_features, *, residual=True, **hbb_kw):
        super().__init__()
        self.linear = HBBLinear(in_features, out_features, bias=True, **hbb_kw)
        self.norm = nn.LayerNorm(out_features)
        self.residual = residual and in_features == out_features

    def forward(self, x):
        y = self.norm(self.linear(x))
        return x + y if self.residual else y


class _BinaryAttention(nn.Module):
    """Multi-head self-attention whose q, k, v and output projections are
    BMT :class:`BinaryLinear` layers; softmax and the scaled dot products stay
    in float (kept in higher precision, as BMT does)."""

    def __init__(self, dim, heads, hbb_kw):
        super().__init__()
        if dim % heads:
            raise ValueError(f"model width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.q, self.k, self.v = (BinaryLinear(dim, dim, residual=False, **hbb_kw) for _ in range(3))
        self.o = BinaryLinear(dim, dim, residual=False, **hbb_kw)

    def forward(self, x):
        n, t, d = x.shape
        h = self.heads

        def split(y):
            return y.reshape(n, t, h, d // h).transpose(1, 2)
        att = torch.softmax(split(self.q(x)) @ split(self.k(x)).transpose(-1, -2) / (d // h) ** 0.5, dim=-1)
        return self.o((att @ split(self.v(x))).transpose(1, 2).reshape(n, t, d))


class HBBTransformer(nn.Module):
    """A small binarized Transformer classifier over image rows (each row of
    pixels is a token): an HBB token embedding (it reads the unsigned pixels
    directly, like the MLP's first layer), learned positions, ``depth``
    pre-norm blocks of binarized attention and a binarized MLP, each
    binarized projection followed by BMT's extra LayerNorm, then mean
    pooling and an HBB classifier head. Every :class:`HBBLinear` in it uses
    the same quantizers and exports like any other (see
    :func:`hwgen.training.exporter.export_linear`)."""

    def __init__(self, image_shape, dim, depth, heads, n_classes, **hbb_kw):
        super().__init__()
        c, h, w = image_shape
        self.image_shape = tuple(image_shape)
        self.embed = BinaryLinear(c * w, dim, residual=False, **hbb_kw)
        self.pos = nn.Parameter(torch.zeros(h, dim))
        self.blocks = nn.ModuleList()
        for _ in range(depth):
            self.blocks.append(nn.ModuleDict({
                "norm1": nn.LayerNorm(dim), "attn": _BinaryAttention(dim, heads, hbb_kw),
                "norm2": nn.LayerNorm(dim),
                "mlp": nn.Sequential(BinaryLinear(dim, 2 * dim, residual=False, **hbb_kw), nn.GELU(),
                                     BinaryLinear(2 * dim, dim, residual=False, **hbb_kw))}))
        self.norm = nn.LayerNorm(dim)
        self.out = HBBLinear(dim, n_classes, bias=True, **hbb_kw)

    def forward(self, x):
        c, h, w = self.image_shape
        tokens = x.reshape(x.shape[0], c, h, w).permute(0, 2, 1, 3).reshape(x.shape[0], h, c * w)
        z = self.embed(tokens) + self.pos
        for blk in self.blocks:
            z = z + blk["attn"](blk["norm1"](z))
            z = z + blk["mlp"](blk["norm2"](z))
        return self.out(self.norm(z).mean(dim=1))

    def projections(self):
        """``{name: HBBLinear}`` of every binarized projection, in model order."""
        return {name.replace(".", "_"): m for name, m in self.named_modules() if isinstance(m, HBBLinear)}
