"""A run of linear NIR nodes between two neuron layers as one synapse: a convolution where the
nodes are convolutions and pools (a pool after a conv folds into its kernel, a pool alone is a
depthwise conv), otherwise one dense matrix; either way checked against the nodes applied one
by one (`apply_node`, float64)."""
from __future__ import annotations

from dataclasses import dataclass

import nir
import numpy as np
import torch
import torch.nn.functional as F

from neurodeploy.errors import UserError
from neurodeploy.graph.fields import groups, numbers, pair
from neurodeploy.neurons import Conv

LINEAR = (nir.Affine, nir.Linear, nir.Conv2d, nir.Flatten, nir.Scale, nir.SumPool2d,
          nir.AvgPool2d)
SPATIAL = (nir.Conv2d, nir.SumPool2d, nir.AvgPool2d)


def apply_node(node: nir.NIRNode, x: torch.Tensor) -> torch.Tensor:
    """One linear node on a batch in float64: what every composed synapse must equal."""
    t = lambda v: torch.as_tensor(np.asarray(v), dtype=torch.float64)  # noqa: E731
    pair = lambda v: tuple(int(i) for i in np.broadcast_to(np.asarray(v), (2,)))  # noqa: E731
    if isinstance(node, nir.Affine):
        return x.flatten(1) @ t(node.weight).T + t(node.bias)
    if isinstance(node, nir.Linear):
        return x.flatten(1) @ t(node.weight).T
    if isinstance(node, nir.Flatten):
        return x.flatten(1)
    if isinstance(node, nir.Scale):
        return x * t(node.scale)
    if isinstance(node, nir.Conv2d):
        return F.conv2d(x, t(node.weight), t(node.bias), stride=pair(node.stride),
                        padding=pair(node.padding), dilation=pair(node.dilation),
                        groups=int(node.groups))
    k, s, p = pair(node.kernel_size), pair(node.stride), pair(node.padding)
    pooled = F.avg_pool2d(x, k, s, p, count_include_pad=True)
    return pooled * (k[0] * k[1]) if isinstance(node, nir.SumPool2d) else pooled


@dataclass
class _Kernel:
    """A linear map on [C, H, W] written as one convolution (PyTorch conventions)."""
    weight: np.ndarray                  # (Cout, Cin / groups, kH, kW)
    bias: np.ndarray                    # (Cout,)
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def dense_channels(self) -> np.ndarray:
        """(Cout, Cin, kH, kW): groups expanded to a block-diagonal channel matrix."""
        cout, cin_g = self.weight.shape[:2]
        full = np.zeros((cout, cin_g * self.groups, *self.weight.shape[2:]))
        per = cout // self.groups
        for g in range(self.groups):
            full[g * per:(g + 1) * per, g * cin_g:(g + 1) * cin_g] = \
                self.weight[g * per:(g + 1) * per]
        return full


def _kernel(name: str, node: nir.NIRNode, in_shape: tuple[int, ...], source: str) -> _Kernel:
    """A Conv2d, or a pooling node as a fixed-weight depthwise conv (groups = channels):
    SumPool2d weights 1, AvgPool2d weights 1/(kH kW) (count_include_pad, as `apply_node`)."""
    if isinstance(node, nir.Conv2d):
        if isinstance(node.padding, str):
            raise UserError(f"{source}: node '{name}': padding {node.padding!r} must be numeric")
        k = _Kernel(numbers(node.weight, name, "weight", source),
                    np.zeros(0), pair(node.stride, name, "stride", source, 1),
                    pair(node.padding, name, "padding", source, 0),
                    pair(node.dilation, name, "dilation", source, 1),
                    groups(node.groups, name, source))
        bias = numbers(node.bias if node.bias is not None else 0.0, name, "bias", source)
        w = k.weight
        if w.ndim != 4 or w.shape[0] % k.groups or bias.size not in (1, w.shape[0]) \
                or w.shape[1] * k.groups != in_shape[0]:
            raise UserError(f"{source}: node '{name}': Conv2d weight {list(w.shape)} or bias "
                            f"does not fit input {list(in_shape)} with groups = {k.groups}")
        k.bias = np.broadcast_to(bias.reshape(-1), (w.shape[0],)).copy()
        return k
    size = pair(node.kernel_size, name, "kernel_size", source, 1)
    channels = in_shape[0]
    value = 1.0 / (size[0] * size[1]) if isinstance(node, nir.AvgPool2d) else 1.0
    return _Kernel(np.full((channels, 1, *size), value), np.zeros(channels),
                   pair(node.stride, name, "stride", source, 1),
                   pair(node.padding, name, "padding", source, 0), groups=channels)


def _compose(a: _Kernel, b: _Kernel) -> _Kernel:
    """b after a as one convolution: stride sa*sb, dilation 1, kernel taps at
    sa*db*j + da*l. Exact when b has no padding (padding of b pads a's *output* with zeros,
    which no input padding reproduces); callers verify the result numerically anyway."""
    ka, kb = a.dense_channels(), b.dense_channels()
    sa, sb, da, db = a.stride, b.stride, a.dilation, b.dilation
    size = [sa[i] * db[i] * (kb.shape[2 + i] - 1) + da[i] * (ka.shape[2 + i] - 1) + 1
            for i in (0, 1)]
    k = np.zeros((kb.shape[0], ka.shape[1], *size))
    for jh in range(kb.shape[2]):
        for jw in range(kb.shape[3]):
            for lh in range(ka.shape[2]):
                for lw in range(ka.shape[3]):
                    k[:, :, sa[0] * db[0] * jh + da[0] * lh, sa[1] * db[1] * jw + da[1] * lw] += \
                        kb[:, :, jh, jw] @ ka[:, :, lh, lw]
    bias = b.bias + kb.sum((2, 3)) @ a.bias
    out = _Kernel(k, bias, (sa[0] * sb[0], sa[1] * sb[1]),
                  tuple(a.padding[i] + sa[i] * b.padding[i] for i in (0, 1)))
    for g in sorted({a.groups, b.groups}, reverse=True):       # keep a factor's groups
        if g > 1 and k.shape[0] % g == 0 and k.shape[1] % g == 0:
            grouped = _Kernel(np.concatenate([k[i * k.shape[0] // g:(i + 1) * k.shape[0] // g,
                                                i * k.shape[1] // g:(i + 1) * k.shape[1] // g]
                                              for i in range(g)]), bias, out.stride, out.padding,
                              groups=g)
            if np.array_equal(grouped.dense_channels(), k):
                return grouped
    return out


def _as_conv(block, in_shape, source):
    """A run of Conv2d / SumPool2d / AvgPool2d nodes (a trailing Flatten allowed) folded into
    one convolution, or None where that is not exact (checked on random inputs against the
    nodes applied one by one): a pool after a conv becomes a conv with the composed kernel,
    a pool on its own a depthwise conv, instead of a dense unroll of the whole map."""
    spatial = list(block)
    while spatial and isinstance(spatial[-1][1], nir.Flatten):
        spatial.pop()
    if len(in_shape) != 3 or not spatial or not all(isinstance(node, SPATIAL)
                                                    for _, node in spatial):
        return None
    shape, kernel = tuple(in_shape), None
    for name, node in spatial:
        k = _kernel(name, node, shape, source)
        shape = Conv(shape, k.stride, k.padding, k.dilation, k.groups).output_shape(k.weight)
        if min(shape) < 1:
            return None                    # the generic path names the node and the shapes
        kernel = k if kernel is None else _compose(kernel, k)
    geometry = Conv(tuple(in_shape), kernel.stride, kernel.padding, kernel.dilation,
                    kernel.groups)
    if geometry.output_shape(kernel.weight) != shape:
        return None
    x = torch.as_tensor(np.random.default_rng(0).random((2, *in_shape)))
    try:
        with torch.no_grad():
            want = x
            for _, node in block:
                want = apply_node(node, want)
            got = F.conv2d(x, torch.as_tensor(kernel.weight), torch.as_tensor(kernel.bias),
                           stride=kernel.stride, padding=kernel.padding,
                           dilation=kernel.dilation, groups=kernel.groups)
    except (ValueError, TypeError, RuntimeError):      # the dense path names the bad node
        return None
    if got.shape != want.shape:
        return None
    if not np.allclose(got.flatten(1).numpy(), want.flatten(1).numpy(), rtol=1e-9, atol=1e-12):
        return None
    return geometry, kernel.weight, kernel.bias, shape


def synapse(block: list[tuple[str, nir.NIRNode]], in_shape: tuple[int, ...], source: str,
             dense: bool = False):
    """Compose a run of linear nodes into (conv geometry or None, weight, bias, out shape):
    a convolution where the run is convolutions and pools (unless `dense`), otherwise one
    dense matrix."""
    folded = None if dense else _as_conv(block, tuple(in_shape), source)
    if folded is not None:
        return folded
    size = int(np.prod(in_shape))
    if size > 50_000:
        raise UserError(f"{source}: the linear block at '{block[0][0]}' has {size} inputs, too "
                        "many to compose into one dense synapse")
    with torch.no_grad():
        def run(x):
            for name, node in block:
                try:
                    x = apply_node(node, x)
                except (ValueError, TypeError, RuntimeError) as e:   # shapes that do not chain
                    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
                    raise UserError(f"{source}: node '{name}' ({type(node).__name__}) cannot "
                                    f"take an input of shape {list(x.shape[1:])}: {reason}; "
                                    "fix the graph's shapes") from None
            return x
        zero = run(torch.zeros(1, *in_shape, dtype=torch.float64))
        basis = run(torch.eye(size, dtype=torch.float64).reshape(size, *in_shape))
    out_shape = tuple(zero.shape[1:])
    weight = (basis - zero).reshape(size, -1).T.numpy()
    return None, weight, zero.reshape(-1).numpy(), out_shape
