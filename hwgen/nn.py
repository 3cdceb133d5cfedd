"""PyTorch layers for heterogeneous-bitwidth binarized networks."""
import torch
from torch import nn

from .quant import QUANTIZERS, hbb_quantize, residual_binarize, select_bits

__all__ = ["HBBLinear", "SignActivation", "HBBMLP"]


class HBBLinear(nn.Linear):
    """Drop-in for :class:`torch.nn.Linear` whose weights are HBB-binarized.

    Every weight carries its own bit count (buffer ``nbits``), chosen by
    Middle-Out selection for the target ``mix`` and recomputed every
    ``recompute_every`` training steps (frozen at export). Scales are per tensor.
    """

    def __init__(self, in_features, out_features, bias=False, *, mix, quantizer="bnn",
                 recompute_every=1):
        super().__init__(in_features, out_features, bias=bias)
        if quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {sorted(QUANTIZERS)}, not {quantizer!r}")
        self.mix = dict(mix)
        self.quantizer = quantizer
        self.recompute_every = int(recompute_every)
        self.register_buffer("nbits", select_bits(self.weight, self.mix))
        self.register_buffer("step", torch.zeros((), dtype=torch.int64))

    def update_bits(self):
        self.nbits.copy_(select_bits(self.weight, self.mix))

    def forward(self, x):
        if self.training:
            if int(self.step) % self.recompute_every == 0:
                self.update_bits()
            self.step += 1
        w = hbb_quantize(self.weight, self.nbits, self.quantizer)
        return nn.functional.linear(x, w, self.bias)

    def binarized(self):
        """``(mus, planes)`` of the frozen residual binarization (no grad)."""
        _, mus, planes = residual_binarize(self.weight.detach(), self.nbits)
        return [float(m) for m in mus], planes

    def extra_repr(self):
        mix = ",".join(f"{b}:{p:g}" for b, p in sorted(self.mix.items()))
        return f"{super().extra_repr()}, mix={mix}, quantizer={self.quantizer}"


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


class HBBMLP(nn.Module):
    """The flow's model: HBBLinear -> BatchNorm -> sign, repeated, then an
    HBBLinear with bias producing the class scores.

    The first layer sees unsigned integer pixels as floats (no normalisation:
    the BatchNorm after it absorbs the scale, and the hardware sees the same
    integers).
    """

    def __init__(self, in_features, hidden, n_classes, *, mix, quantizer="bnn"):
        super().__init__()
        sizes = [in_features, *hidden]
        self.hidden = nn.ModuleList()
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            self.hidden.append(nn.ModuleDict({
                "linear": HBBLinear(fan_in, fan_out, mix=mix, quantizer=quantizer),
                "bn": nn.BatchNorm1d(fan_out),
            }))
        self.out = HBBLinear(sizes[-1], n_classes, bias=True, mix=mix, quantizer=quantizer)
        self.act = SignActivation()

    def forward(self, x):
        for block in self.hidden:
            x = self.act(block["bn"](block["linear"](x)))
        return self.out(x)
