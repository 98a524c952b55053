"""Networks prepared for inference: the same outputs, less work per image.

:func:`prepare` returns an eval-mode copy of a trained network in which

- every convolution followed by a BatchNorm becomes one convolution whose bias carries
  the BatchNorm's shift, in the full ResNet and in every truncated base alike;
- a VI-Net head on the flattened map reads the channels-last activation map as it lies
  in memory (its projection's rows are reordered once instead of the map being copied
  into channel-first order for every batch), subtracts its mean through a bias
  (``z P - mean P``, one pass over ``z`` fewer), and has the BatchNorm after its
  polynomial layer folded into the linear layer.

Throughput is measured on networks prepared this way, all of them alike (notebook
06), and a test checks that each gives its network's outputs. On a CPU, 06 also times
each network as TorchScript optimizes it for inference (:func:`compiled`: oneDNN fuses
convolutions with the additions and ReLUs after them) and reports every network in
the faster of its two forms: the fusions help the early, memory-bound layers of a
truncated network more than the deep layers of the full one, which can even lose.
"""

from __future__ import annotations

import copy
import warnings

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


@torch.no_grad()
def prepare(net: nn.Module) -> nn.Module:
    """An inference copy of ``net`` (a ResNet or a :class:`~vinet_utils.method.vinet.VINet`)."""
    from vinet_utils.method.heads import PolyHead
    from vinet_utils.method.vinet import VINet

    net = fuse_batchnorm(copy.deepcopy(net).eval())
    if isinstance(net, VINet) and isinstance(net.head, PolyHead) and net.pool.pool == "flatten":
        return FlatVINet(net.base, net.head)
    return net


@torch.no_grad()
def compiled(net: nn.Module, example: torch.Tensor) -> torch.jit.ScriptModule:
    """``net`` traced on ``example``, frozen and optimized for inference by TorchScript,
    then run a few times so that its optimizing executor has settled. (TorchScript is
    deprecated; ``torch.compile`` with freezing is its successor, not measured here.)"""
    with warnings.catch_warnings():  # TorchScript is deprecated in favour of torch.compile;
        warnings.simplefilter("ignore", FutureWarning)  # shape checks trace as constants
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        script = torch.jit.trace(net.eval(), example, check_trace=False)
        script = torch.jit.optimize_for_inference(torch.jit.freeze(script))
    for _ in range(3):
        script(example)
    return script


def fuse_batchnorm(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm2d that directly follows a convolution into it, in place:
    the ``convN``/``bnN`` pairs of the ResNet's stem and blocks, and (conv, bn)
    shortcuts. ``module`` must be in eval mode."""
    for m in list(module.modules()):
        for i in ("", "1", "2"):
            conv, bn = getattr(m, f"conv{i}", None), getattr(m, f"bn{i}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                setattr(m, f"conv{i}", fuse_conv_bn_eval(conv, bn))
                setattr(m, f"bn{i}", nn.Identity())
        if (isinstance(m, nn.Sequential) and len(m) == 2 and isinstance(m[0], nn.Conv2d)
                and isinstance(m[1], nn.BatchNorm2d)):
            m[0], m[1] = fuse_conv_bn_eval(m[0], m[1]), nn.Identity()
    return module


def norm_into_linear(bn: nn.BatchNorm1d, linear: nn.Linear) -> nn.Linear:
    """One linear layer equal to ``linear(bn(x))`` for ``bn`` in eval mode: with
    ``bn(x) = x s + t``, it is ``x (W diag s)^T + (W t + b)``."""
    s = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    t = bn.bias - bn.running_mean * s
    out = nn.Linear(linear.in_features, linear.out_features).to(linear.weight)
    out.weight.copy_(linear.weight * s)
    out.bias.copy_(linear.bias + linear.weight @ t)
    return out


class FlatVINet(nn.Module):
    """A VI-Net on the flattened map, for inference: base -> channels-last flatten ->
    tanh(z P' + b) -> polynomial layer -> linear (its BatchNorm folded in)."""

    def __init__(self, base: nn.Module, head: nn.Module):
        super().__init__()
        pre = head.preprocess
        self.base, self.poly = base, head.poly
        c = [m for m in base.modules() if isinstance(m, nn.Conv2d)][-1].out_channels
        side = round((pre.in_features // c) ** 0.5)  # the map is c x side x side
        if c * side * side != pre.in_features:
            raise ValueError(f"the head's {pre.in_features} inputs are not a square map of "
                             f"{c} channels")
        order = torch.arange(pre.in_features).view(c, side, side).permute(1, 2, 0).reshape(-1)
        projection = pre.projection.detach()
        bias = -(pre.mean.detach() @ projection)
        if hasattr(pre, "norm"):  # a normalising BatchNorm before tanh, folded in
            scale = (pre.norm.running_var + pre.norm.eps).rsqrt()
            projection, bias = projection * scale, (bias - pre.norm.running_mean) * scale
        self.register_buffer("projection", projection[order.to(projection.device)].contiguous())
        self.register_buffer("bias", bias)
        self.linear = (norm_into_linear(head.norm, head.linear)
                       if isinstance(head.norm, nn.BatchNorm1d) else head.linear)

    def forward(self, x):
        return self.tail(self.base(x))

    def tail(self, m):
        """The head on the base's activation map ``m``."""
        z = m.permute(0, 2, 3, 1).reshape(len(m), -1)  # a view when m is channels-last
        u = torch.tanh(torch.addmm(self.bias, z.float(), self.projection))
        return self.linear(self.poly(u))
