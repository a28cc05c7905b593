"""``QuantWinogradConv2d``: a 3x3 stride-1 convolution whose trainable weight *is* the
Winograd-domain ``U``, quantized by an injected Brevitas weight quantizer.

DESIGN.md, "The idea in numbers": for F(m x m, 3 x 3), ``t = m + 2``::

    Y = A^T [ sum_c U_c . (B^T d_c B) ] A,        U: (Cout, Cin, t, t)

The parameter ``weight`` (alias ``U``) has shape ``(Cout, Cin, t, t)``.  It is
masked to the sub-row-balanced sparse (SRBS) pattern, then quantized with **one
scale per output channel**, shared by every Winograd position and input
channel (the output transform adds products of different positions, so
per-position scales would break the integer sums).  ``B^T`` and ``A^T`` are
integer (:class:`winoforge.winograd.WinogradSpec`), so with integer input codes
``x_int`` (scale ``s_x``) and weight codes ``U_int`` (scale ``s_w[k]``)::

    y[:, k] = s_x * s_w[k] * winograd_conv2d(x_int, U_int, spec, padding)[:, k]

exactly in exact arithmetic.  In floating point the equality is exact when the
scales are powers of two and every integer partial sum stays below ``2^24``
(float32) or ``2^53`` (float64) -- see :meth:`QuantWinogradConv2d.integer_bound`
and ``tests/model/test_winograd_layer.py``.

The convolution itself is :class:`WinogradConvFunction`, a custom autograd
function.  Its backward uses that the transforms are fixed linear maps:
``dM = (A (x) A) dY``, ``dU_xi = V_xi^T dM_xi``, ``dV_xi = dM_xi U_xi^T``,
``dd = (B (x) B) dV`` folded back onto the input with overlap-add.  On CPU it
works through the batch in chunks of images sized so that the chunk's
Winograd-domain intermediates stay in cache; nothing but the input and ``U`` is
kept for the backward (``V`` is recomputed per chunk), so the memory cost is
that of a direct convolution.  Layout inside a chunk is channels-last, so every
transform is one GEMM over a contiguous matrix and the ``t*t`` per-position
products are one ``bmm`` ``(t*t, tiles, Cin) @ (t*t, Cin, Cout)``.

An earlier plain-autograd version measured 2.2-5.1x the time of ``QuantConv2d`` on the
same shapes; this one 1.2-1.6x (``benchmarks/winograd_layer_speed.py``).
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Optional, Union

import numpy as np
import torch
from brevitas.nn.mixin.parameter import QuantWeightMixin
from brevitas.quant import Int8WeightPerChannelFloat
from brevitas.quant.fixed_point import Int8WeightPerChannelFixedPoint
from brevitas.quant_tensor import IntQuantTensor, QuantTensor
from torch import nn
from torch.autograd.function import once_differentiable

from winoforge.winograd import WinogradSpec, accumulator_bits, check_srbs_params, filter_transform, srbs_mask
from winoforge.winograd._checks import check_int
from winoforge.winograd.conv import as_spec

__all__ = [
    "QuantWinogradConv2d",
    "WinogradConvFunction",
    "winograd_conv2d_torch",
    "winograd_conv2d_onnx",
    "WEIGHT_QUANTIZERS",
    "WEIGHT_BIT_WIDTHS",
    "CPU_CHUNK_ELEMENTS",
]

#: Weight quantizers by name.  Both are per-output-channel, narrow-range, signed
#: integer quantizers with max-statistics scales; ``"po2"`` restricts the scale to
#: a power of two (``RestrictValueType.POWER_OF_TWO``), which later FINN levels need
#: to be bit-exact on float values (DESIGN.md, "What bit-exact means").
WEIGHT_QUANTIZERS = {
    "float": Int8WeightPerChannelFloat,
    "po2": Int8WeightPerChannelFixedPoint,
}

#: Allowed ``weight_bit_width`` values.
WEIGHT_BIT_WIDTHS = tuple(range(2, 9))

#: Chunk size on CPU, in elements of the Winograd-domain input ``V`` of one chunk
#: (``t*t * tiles * Cin``): 2^19 float32 = 2 MiB, so a chunk's intermediates fit the
#: L2/L3 caches.  Measured on a 2-core AMD EPYC (benchmarks/winograd_layer_speed.py).
CPU_CHUNK_ELEMENTS = 1 << 19


# --------------------------------------------------------------------------- transforms


class _Plan:
    """Per (m, dtype, device): the 2-D transforms as single matrices on row-major
    flattened tiles, ``B^T (x) B^T`` (t*t x t*t) and ``A^T (x) A^T`` (m*m x t*t), their
    transposes (contiguous), and the non-zeros of ``B^T`` by row and by column for the
    elementwise (separable) input transform."""

    def __init__(self, spec: WinogradSpec, dtype: torch.dtype, device: torch.device):
        kb = np.kron(spec.BT, spec.BT).astype(np.float64)
        ka = np.kron(spec.AT, spec.AT).astype(np.float64)
        self.KB = torch.tensor(kb, dtype=dtype, device=device)
        self.KA = torch.tensor(ka, dtype=dtype, device=device)
        self.KBt = self.KB.t().contiguous()
        self.KAt = self.KA.t().contiguous()
        self.bt_rows = [[(int(v), j) for j, v in enumerate(row) if v] for row in spec.BT.tolist()]
        self.bt_cols = [[(int(v), i) for i, v in enumerate(col) if v] for col in spec.BT.T.tolist()]


_PLANS: dict[tuple[int, torch.dtype, torch.device], _Plan] = {}


def _plan(spec: WinogradSpec, like: torch.Tensor) -> _Plan:
    key = (spec.m, like.dtype, like.device)
    plan = _PLANS.get(key)
    if plan is None:
        plan = _PLANS[key] = _Plan(spec, like.dtype, like.device)
    return plan


def _combine(out: torch.Tensor, terms) -> None:
    """``out = sum(coef * tensor)`` for small integer coefficients, in as few kernels as possible."""
    terms = sorted(terms, key=lambda term: term[0] != 1)  # a coefficient-1 term first, if any
    (c0, t0), rest = terms[0], terms[1:]
    if not rest:
        if c0 == 1:
            out.copy_(t0)
        else:
            torch.mul(t0, c0, out=out)
        return
    c1, t1 = rest[0]
    if c0 == 1:
        torch.add(t0, t1, alpha=c1, out=out)
    else:
        torch.mul(t0, c0, out=out).add_(t1, alpha=c1)
    for c, tensor in rest[1:]:
        out.add_(tensor, alpha=c)


class _Geometry:
    """Tiling of one call: output ``oh x ow``, ``th x tw`` tiles, and the padded
    input as ``nbh x nbw`` blocks of ``m x m`` (``Hp = nbh * m`` rows, enough for the
    last tile plus a whole block so the overlap-add can use block views)."""

    def __init__(self, spec: WinogradSpec, h: int, w: int, ph: int, pw: int):
        m, t = spec.m, spec.t
        self.m, self.t, self.h, self.w, self.ph, self.pw = m, t, h, w, ph, pw
        self.oh, self.ow = h + 2 * ph - spec.r + 1, w + 2 * pw - spec.r + 1
        if self.oh < 1 or self.ow < 1:
            raise ValueError(
                f"input of spatial size {h}x{w} with padding ({ph}, {pw}) is smaller than the 3x3 kernel")
        self.th, self.tw = -(-self.oh // m), -(-self.ow // m)
        self.ext = -(-(t - m) // m)  # extra blocks a tile reaches past its own
        self.nbh, self.nbw = self.th + self.ext, self.tw + self.ext
        self.Hp, self.Wp = self.nbh * m, self.nbw * m
        self.crop = self.oh != self.th * m or self.ow != self.tw * m

    def pad_into(self, buf: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
        """Copy channels-last ``xs (b, h, w, c)`` into the interior of ``buf`` (zero border)."""
        b = xs.shape[0]
        buf[:b, self.ph:self.ph + self.h, self.pw:self.pw + self.w].copy_(xs)
        return buf[:b]

    def rows(self, a: torch.Tensor, k: int) -> torch.Tensor:
        """Rows ``k, k+m, ...`` of ``a (..., b, Hp, W, c)``, one per tile row: ``(..., b, th, W, c)``."""
        return a[..., k:k + self.m * (self.th - 1) + 1:self.m, :, :]

    def cols(self, a: torch.Tensor, k: int) -> torch.Tensor:
        """Columns ``k, k+m, ...`` of ``a (..., Wp, c)``, one per tile column: ``(..., tw, c)``."""
        return a[..., k:k + self.m * (self.tw - 1) + 1:self.m, :]


class _Transforms:
    """The input transform ``V = B^T d B`` of a chunk and its transpose with overlap-add,
    either as one GEMM with ``B^T (x) B^T`` on gathered tiles (``gemm``) or separably,
    rows then columns, as a few fused multiply-adds over whole strided slabs
    (``elementwise``: fewer operations when ``B^T`` is sparse, as for F(2,3))."""

    def __init__(self, g: _Geometry, plan: _Plan, nb: int, c: int, like: torch.Tensor, elementwise: bool):
        self.g, self.plan, self.c, self.elementwise = g, plan, c, elementwise
        t = g.t
        if elementwise:
            self.T = like.new_empty(t, nb, g.th, g.Wp, c)
        else:
            self.X = like.new_empty(t * t, nb * g.th * g.tw * c)

    def forward(self, xp: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``xp (b, Hp, Wp, c)`` -> ``V`` written into ``out (t*t, b*th*tw*c)``."""
        g, t, b, c = self.g, self.g.t, xp.shape[0], self.c
        n_el = b * g.th * g.tw * c
        V6 = out.view(t, t, b, g.th, g.tw, c)
        if self.elementwise:
            T = self.T[:, :b]
            for a, row in enumerate(self.plan.bt_rows):
                _combine(T[a], [(coef, g.rows(xp, k)) for coef, k in row])
            for j, row in enumerate(self.plan.bt_rows):
                _combine(V6[:, j], [(coef, g.cols(T, k)) for coef, k in row])
            return out
        Wc = g.Wp * c
        tiles = xp.as_strided((t, t, b, g.th, g.tw, c), (Wc, c, g.Hp * Wc, g.m * Wc, g.m * c, 1))
        X = self.X[:, :n_el]
        X.view(t, t, b, g.th, g.tw, c).copy_(tiles)
        return torch.mm(self.plan.KB, X, out=out)

    def backward(self, dV: torch.Tensor, dxp: torch.Tensor, scratch: torch.Tensor) -> None:
        """``dV (t*t, b*th*tw*c)`` -> ``dxp (b, Hp, Wp, c)`` (overwritten): the transposed
        transform, each tile's contribution added where the tile sits (tiles overlap).
        ``scratch``: ``(t*t, b*th*tw*c)`` for the GEMM path, ``(t, b, th, Wp, c)`` else."""
        g, t, m, b = self.g, self.g.t, self.g.m, dxp.shape[0]
        dxp.zero_()
        if self.elementwise:
            dV6 = dV.view(t, t, b, g.th, g.tw, self.c)
            dT = scratch[:, :b]
            dT.zero_()
            for k, col in enumerate(self.plan.bt_cols):
                dst = g.cols(dT, k)
                for coef, j in col:
                    dst.add_(dV6[:, j], alpha=coef)
            for k, col in enumerate(self.plan.bt_cols):
                dst = g.rows(dxp, k)
                for coef, a in col:
                    dst.add_(dT[a], alpha=coef)
            return
        dX = torch.mm(self.plan.KBt, dV, out=scratch[:, :dV.shape[1]]).view(t, t, b, g.th, g.tw, self.c)
        # tile element (m*da + a0, m*db + b0) of tile (i, j) lands in block (i + da, j + db), at (a0, b0)
        blk = dxp.view(b, g.nbh, m, g.nbw, m, self.c)
        for da in range(g.ext + 1):
            ah = min(m, t - da * m)
            for db in range(g.ext + 1):
                bw = min(m, t - db * m)
                src = dX[da * m:da * m + ah, db * m:db * m + bw].permute(2, 3, 0, 4, 1, 5)
                blk[:, da:da + g.th, :ah, db:db + g.tw, :bw].add_(src)


def _chunk_images(n: int, per_image: int, device: torch.device, chunk_elements: Optional[int]) -> int:
    if device.type != "cpu" and chunk_elements is None:
        return n  # on a GPU one launch over the whole batch is best
    target = CPU_CHUNK_ELEMENTS if chunk_elements is None else chunk_elements
    return max(1, min(n, target // max(per_image, 1)))


def _use_elementwise(transform: str, m: int, device: torch.device) -> bool:
    if transform == "auto":  # measured on CPU: elementwise wins for F(2,3), the GEMM for F(4,3)
        return m == 2 and device.type == "cpu"
    return transform == "elementwise"


def _channels_last(x: torch.Tensor) -> bool:
    """True when ``x`` is laid out channels-last (and not also plain contiguous)."""
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


class WinogradConvFunction(torch.autograd.Function):
    """``y = winograd_conv2d(x, U)`` for float ``x (N, Cin, H, W)`` and ``U (Cout, Cin, t, t)``.

    Stride 1, zero padding ``(ph, pw)``; returns ``(N, Cout, oh, ow)`` in ``x``'s memory
    format (contiguous, or channels-last -- the faster one).  Gradients for ``x`` (same
    memory format as ``x``) and ``U``; not twice differentiable.

    Per chunk of ``b`` images, ``P = b * th * tw`` tiles, channels-last inside:

    * forward:  pad -> ``V = B^T d B`` as ``(t*t, P, Cin)`` -> ``M_xi = V_xi U_xi`` (one
      ``bmm``) -> ``Y = (A^T (x) A^T) M`` as ``(m*m, P*Cout)`` -> scatter into ``y``;
    * backward: gather ``dY`` -> ``dM = (A^T (x) A^T)^T dY``; ``V`` recomputed,
      ``dU_xi += V_xi^T dM_xi``; ``dV_xi = dM_xi U_xi^T`` -> transposed input transform with
      overlap-add into the padded input gradient -> crop into ``dx``.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, U: torch.Tensor, spec: WinogradSpec, ph: int, pw: int,
                chunk_elements: Optional[int] = None, transform: str = "auto") -> torch.Tensor:
        n, c, h, w = x.shape
        k = U.shape[0]
        g = _Geometry(spec, h, w, ph, pw)
        m, t, th, tw = g.m, g.t, g.th, g.tw
        tt, mm = t * t, m * m
        plan = _plan(spec, x)
        # (t*t, Cin, Cout); .contiguous() matters: reshape alone may give a view with batch stride 1
        Ut = U.detach().permute(2, 3, 1, 0).contiguous().view(tt, c, k)
        tiles_img = th * tw
        nb = _chunk_images(n, tt * tiles_img * c, x.device, chunk_elements)
        elementwise = _use_elementwise(transform, m, x.device)
        tf = _Transforms(g, plan, nb, c, x, elementwise)
        cl = _channels_last(x)
        xs = x.detach().permute(0, 2, 3, 1)  # (n, h, w, c) view
        xpb = x.new_zeros(nb, g.Hp, g.Wp, c)
        V = x.new_empty(tt, nb * tiles_img * c)
        M = x.new_empty(tt, nb * tiles_img, k)
        Yt = x.new_empty(mm, nb * tiles_img * k)
        y = x.new_empty(n, g.oh, g.ow, k).permute(0, 3, 1, 2) if cl else x.new_empty(n, k, g.oh, g.ow)
        stage = None
        if g.crop:
            stage = x.new_empty(nb, th * m, tw * m, k).permute(0, 3, 1, 2) if cl else x.new_empty(nb, k, th * m, tw * m)
        for n0 in range(0, n, nb):
            b = min(nb, n - n0)
            P = b * tiles_img
            Vv = tf.forward(g.pad_into(xpb, xs[n0:n0 + b]), V[:, :P * c])
            Mv = torch.bmm(Vv.view(tt, P, c), Ut, out=M[:, :P])
            Yv = torch.mm(plan.KA, Mv.view(tt, P * k), out=Yt[:, :P * k]).view(m, m, b, th, tw, k)
            dst = stage[:b] if g.crop else y[n0:n0 + b]
            if cl:  # (p, q, b, i, j, k) -> (b, i, p, j, q, k)
                dst.permute(0, 2, 3, 1).view(b, th, m, tw, m, k).copy_(Yv.permute(2, 3, 0, 4, 1, 5))
            else:  # (p, q, b, i, j, k) -> (b, k, i, p, j, q)
                dst.view(b, k, th, m, tw, m).copy_(Yv.permute(2, 5, 3, 0, 4, 1))
            if g.crop:
                y[n0:n0 + b].copy_(dst[:, :, :g.oh, :g.ow])
        ctx.save_for_backward(x, Ut)
        ctx.geometry, ctx.spec, ctx.nb, ctx.elementwise = g, spec, nb, elementwise
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, gy: torch.Tensor):
        x, Ut = ctx.saved_tensors
        g, spec, nb = ctx.geometry, ctx.spec, ctx.nb
        need_x, need_u = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        n, c, h, w = x.shape
        k = Ut.shape[2]
        m, t, th, tw = g.m, g.t, g.th, g.tw
        tt, mm = t * t, m * m
        plan = _plan(spec, gy)
        tf = _Transforms(g, plan, nb, c, x, ctx.elementwise) if need_u else None
        tiles_img = th * tw
        gs = gy.permute(0, 2, 3, 1)  # (n, oh, ow, k) view, any strides
        gpad = gy.new_zeros(nb, th * m, tw * m, k) if g.crop else None
        dYt = gy.new_empty(mm, nb * tiles_img * k)
        dM = gy.new_empty(tt, nb * tiles_img * k)
        dUt = gx = None
        if need_u:
            xs = x.permute(0, 2, 3, 1)
            xpb = x.new_zeros(nb, g.Hp, g.Wp, c)
            V = x.new_empty(tt, nb * tiles_img * c)
            dUt = gy.new_zeros(tt, c, k)
        if need_x:
            tfx = _Transforms(g, plan, 0, c, gy, ctx.elementwise)  # backward() only: no forward scratch
            UtT = Ut.transpose(1, 2).contiguous()  # (t*t, Cout, Cin)
            dV = gy.new_empty(tt, nb * tiles_img, c)
            scratch = gy.new_empty(t, nb, th, g.Wp, c) if ctx.elementwise else gy.new_empty(tt, nb * tiles_img * c)
            dxb = gy.new_empty(nb, g.Hp, g.Wp, c)
            gx = torch.empty_like(x)  # x's memory format
            gxs = gx.permute(0, 2, 3, 1)
        for n0 in range(0, n, nb):
            b = min(nb, n - n0)
            P = b * tiles_img
            gv = gs[n0:n0 + b]
            if g.crop:
                gpad[:b, :g.oh, :g.ow].copy_(gv)
                gv = gpad[:b]
            dYv = dYt[:, :P * k]
            # (b, i, p, j, q, k) -> (p, q, b, i, j, k)
            dYv.view(m, m, b, th, tw, k).copy_(gv.unflatten(1, (th, m)).unflatten(3, (tw, m)).permute(2, 4, 0, 1, 3, 5))
            dMv = torch.mm(plan.KAt, dYv, out=dM[:, :P * k]).view(tt, P, k)
            if need_u:
                Vv = tf.forward(g.pad_into(xpb, xs[n0:n0 + b]), V[:, :P * c])
                dUt.baddbmm_(Vv.view(tt, P, c).transpose(1, 2), dMv)
            if need_x:
                dVv = torch.bmm(dMv, UtT, out=dV[:, :P])
                dxp = dxb[:b]
                tfx.backward(dVv.view(tt, P * c), dxp, scratch)
                gxs[n0:n0 + b].copy_(dxp[:, g.ph:g.ph + h, g.pw:g.pw + w])
        gU = dUt.view(t, t, c, k).permute(3, 2, 0, 1) if need_u else None
        return gx, gU, None, None, None, None, None


def _padding_pair(padding) -> tuple[int, int]:
    pair = tuple(padding) if isinstance(padding, (tuple, list)) else (padding, padding)
    if len(pair) != 2 or any(isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 0 for p in pair):
        raise ValueError(f"padding={padding!r} is not allowed; allowed: an integer >= 0 or a pair of them")
    return int(pair[0]), int(pair[1])


def winograd_conv2d_torch(x: torch.Tensor, U: torch.Tensor, spec: Union[WinogradSpec, int], padding=1,
                          chunk_elements: Optional[int] = None, transform: str = "auto") -> torch.Tensor:
    """Differentiable stride-1 Winograd convolution, the torch twin of
    :func:`winoforge.winograd.winograd_conv2d` (same tiling, same ``U`` layout).

    ``chunk_elements``: CPU chunk size (default :data:`CPU_CHUNK_ELEMENTS`; on a GPU the
    default is the whole batch).  ``transform``: ``"auto"`` (elementwise input transform
    for F(2,3) on CPU, GEMM otherwise), ``"gemm"`` or ``"elementwise"`` -- same results."""
    spec = as_spec(spec)
    if transform not in ("auto", "gemm", "elementwise"):
        raise ValueError(f"transform={transform!r} is not allowed; allowed: 'auto', 'gemm', 'elementwise'")
    ph, pw = _padding_pair(padding)
    if x.dim() != 4 or U.dim() != 4 or U.shape[1] != x.shape[1] or U.shape[2:] != (spec.t, spec.t):
        raise ValueError(f"x must be (N, Cin, H, W) and U (Cout, Cin, {spec.t}, {spec.t}); "
                         f"got {tuple(x.shape)} and {tuple(U.shape)}")
    if U.dtype != x.dtype:
        U = U.to(x.dtype)
    return WinogradConvFunction.apply(x, U, spec, ph, pw, chunk_elements, transform)


@lru_cache(maxsize=None)
def _onnx_kernels(m: int, cin: int, cout: int) -> tuple[np.ndarray, np.ndarray]:
    """The fixed maps of :func:`winograd_conv2d_onnx` as grouped-conv weights:
    ``K_in[c*T + a*t+b, 0] = outer(BT[a], BT[b])`` (Cin*T, 1, t, t) and
    ``K_out[o*m*m + i*m+j, a*t+b] = AT[i,a] AT[j,b]`` (Cout*m*m, T, 1, 1)."""
    spec = WinogradSpec(m)
    T = spec.t * spec.t
    k_in = np.einsum("ak,bl->abkl", spec.BT, spec.BT).reshape(T, 1, spec.t, spec.t)
    k_out = np.einsum("ia,jb->ijab", spec.AT, spec.AT).reshape(m * m, T, 1, 1)
    return np.tile(k_in, (cin, 1, 1, 1)).astype(np.float32), np.tile(k_out, (cout, 1, 1, 1)).astype(np.float32)


def winograd_conv2d_onnx(x: torch.Tensor, U: torch.Tensor, spec: Union[WinogradSpec, int], padding=1) -> torch.Tensor:
    """The same convolution as :func:`winograd_conv2d_torch`, written with standard ops only,
    so that ``torch.onnx`` export gives a plain ONNX subgraph any executor can run
    (DESIGN.md, "Exporting Winograd layers")::

        Pad                      to whole tiles: (ph, nH*m + 2 - H - ph) rows, same for columns
        Conv  group=Cin, k=t, stride=m    input transform, V[c*T + xi] = (B^T d_c B)_xi
        Reshape-Transpose-Reshape         channel shuffle (c, xi) -> (xi, c)
        Conv  group=T, k=1                the products, weight U as (T*Cout, Cin, 1, 1)
        Reshape-Transpose-Reshape         channel shuffle (xi, o) -> (o, xi)
        Conv  group=Cout, k=1             output transform, (A^T M A)_(i,j) in channel o*m*m + i*m + j
        DepthToSpace (CRD, blocksize m)   tiles back to the image
        Slice                             crop to H + 2*ph - 2 x W + 2*pw - 2

    ``hw.transforms.FuseWinogradSubgraph`` recognises exactly this pattern.  T = t*t.
    """
    spec = as_spec(spec)
    ph, pw = _padding_pair(padding)
    # int(): static shapes -- under the TorchScript tracer sizes are traced values, and a traced
    # ceil written as -(-a // b) truncates instead of flooring, giving a wrong padding
    cin, h, w = (int(v) for v in x.shape[1:])
    cout, t, m = int(U.shape[0]), spec.t, spec.m
    T = t * t
    ho, wo = h + 2 * ph - 2, w + 2 * pw - 2
    nh, nw = (ho + m - 1) // m, (wo + m - 1) // m
    xp = nn.functional.pad(x, (pw, nw * m + 2 - w - pw, ph, nh * m + 2 - h - ph))
    k_in, k_out = (torch.from_numpy(k).to(device=x.device, dtype=x.dtype) for k in _onnx_kernels(m, cin, cout))
    v = nn.functional.conv2d(xp, k_in, stride=m, groups=cin)
    v = v.reshape(-1, cin, T, nh, nw).transpose(1, 2).reshape(-1, T * cin, nh, nw)
    mm = nn.functional.conv2d(v, U.permute(2, 3, 0, 1).reshape(T * cout, cin, 1, 1), groups=T)
    mm = mm.reshape(-1, T, cout, nh, nw).transpose(1, 2).reshape(-1, cout * T, nh, nw)
    y = nn.functional.conv2d(mm, k_out, groups=cout)
    y = nn.functional.pixel_shuffle(y, m)
    return y[:, :, :ho, :wo] if (nh * m, nw * m) != (ho, wo) else y


# --------------------------------------------------------------------------- the layer


@lru_cache(maxsize=None)
def _transform_gains(m: int) -> tuple[int, int]:
    """Largest row sums of ``|B^T (x) B^T|`` and ``|A^T (x) A^T|`` (F(2,3): 4 and 9)."""
    spec = WinogradSpec(m)
    kb = int(np.abs(np.kron(spec.BT, spec.BT)).sum(axis=1).max())
    ka = int(np.abs(np.kron(spec.AT, spec.AT)).sum(axis=1).max())
    return kb, ka


@lru_cache(maxsize=None)
def _out_bits(in_bits: int, weight_bits: int, cin: int, m: int, in_signed: bool) -> int:
    return accumulator_bits(in_bits, weight_bits, cin, WinogradSpec(m), in_signed=in_signed, weight_signed=True)


def _check_choice(name: str, value, allowed) -> None:
    same_type = isinstance(value, (int, np.integer)) if isinstance(allowed[0], int) else isinstance(value, str)
    if isinstance(value, bool) or not same_type or value not in allowed:
        shown = f"{allowed[0]}..{allowed[-1]}" if allowed == WEIGHT_BIT_WIDTHS else ", ".join(map(repr, allowed))
        raise ValueError(f"{name}={value!r} is not allowed; allowed: {shown}")


class QuantWinogradConv2d(QuantWeightMixin, nn.Module):
    """3x3, stride-1 convolution trained in the Winograd domain, Brevitas-quantized,
    optionally SRBS-sparse.

    Parameters
    ----------
    in_channels, out_channels : int
    kernel_size, stride : must be 3 and 1 (accepted for ``nn.Conv2d``-like call sites).
    padding : int or (ph, pw), default 1.
    bias : bool, default False.  A float bias added after the convolution.
    m : Winograd output tile, 2 (F(2x2,3x3), default) or 4 (F(4x4,3x3)).
    weight_quant : a Brevitas weight quantizer (injector class or proxy), a name in
        :data:`WEIGHT_QUANTIZERS` (``"float"`` per-channel float scales, the default;
        ``"po2"`` per-channel power-of-two scales), or ``None`` for no quantization.
        It must give one scale per output channel (or one per tensor).
    weight_bit_width : 2..8, default 4.
    sub_row, keep : SRBS pattern (both or neither).  ``in_channels`` not a multiple
        of ``sub_row`` leaves the layer dense with a warning (``srbs_enabled`` False,
        ``srbs_reason`` says why).
    spatial_weight : optional ``(Cout, Cin, 3, 3)`` kernel ``g``; ``U = G g G^T``.
        Default: kaiming-normal ``g`` (fan-in, like ``nn.Conv2d``'s scale for ReLU nets).
    return_quant_tensor : return a Brevitas ``IntQuantTensor`` (needs a quantized input,
        quantized weights, no bias).
    chunk_elements : CPU chunk size override (see :data:`CPU_CHUNK_ELEMENTS`).
    **kwargs : further ``weight_*`` keywords go to the quantizer injector, as in Brevitas.
    """

    output_channel_dim = 0  # Brevitas: per-channel scales along dim 0 of ``weight``

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size=3,
        stride=1,
        padding=1,
        bias: bool = False,
        *,
        m: int = 2,
        weight_quant=Int8WeightPerChannelFloat,
        weight_bit_width: int = 4,
        sub_row: Optional[int] = None,
        keep: Optional[int] = None,
        spatial_weight: Optional[torch.Tensor] = None,
        return_quant_tensor: bool = False,
        chunk_elements: Optional[int] = None,
        dtype: Optional[torch.dtype] = None,
        device=None,
        **kwargs,
    ) -> None:
        nn.Module.__init__(self)
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}={value!r} is not allowed; allowed: an integer >= 1")
        if kernel_size not in (3, (3, 3), [3, 3]):
            raise ValueError(f"kernel_size={kernel_size!r} is not allowed; allowed: 3")
        if stride not in (1, (1, 1), [1, 1]):
            raise ValueError(f"stride={stride!r} is not allowed; allowed: 1")
        _check_choice("weight_bit_width", weight_bit_width, WEIGHT_BIT_WIDTHS)
        _check_choice("m", m, (2, 4))
        unknown = [key for key in kwargs if not key.startswith("weight_")]
        if unknown:
            raise TypeError(f"unexpected keyword arguments {unknown}; only weight_* quantizer options pass through")
        if isinstance(weight_quant, str):
            _check_choice("weight_quant", weight_quant, tuple(WEIGHT_QUANTIZERS))
            weight_quant = WEIGHT_QUANTIZERS[weight_quant]
        #: The injected quantizer (class or proxy), so a twin layer can be built with the same one.
        self.weight_quant_spec = weight_quant
        self.spec = WinogradSpec(int(m))
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.padding = _padding_pair(padding)
        self.return_quant_tensor = bool(return_quant_tensor)
        self.chunk_elements = chunk_elements
        t = self.spec.t
        factory = {"dtype": dtype or torch.get_default_dtype(), "device": device}
        self.weight = nn.Parameter(torch.empty(self.out_channels, self.in_channels, t, t, **factory))
        self.bias = nn.Parameter(torch.zeros(self.out_channels, **factory)) if bias else None
        if self.return_quant_tensor and bias:
            raise ValueError("bias=True with return_quant_tensor=True is not supported: the float bias "
                             "would leave the output off the integer grid; use bias=False")
        self.register_buffer("mask", torch.ones(self.out_channels, self.in_channels, t, t, **factory))
        if spatial_weight is None:
            spatial_weight = torch.empty(self.out_channels, self.in_channels, 3, 3, dtype=torch.float64)
            nn.init.kaiming_normal_(spatial_weight, mode="fan_in", nonlinearity="relu")
        self.load_spatial_weight(spatial_weight)
        # The quantizer sees ``weight`` (Cout, Cin, t, t) with output_channel_dim 0: per-channel
        # statistics reduce over (Cin, t, t), i.e. one scale per output channel.
        if isinstance(weight_quant, nn.Module):  # a shared, ready-made proxy: nothing to configure
            QuantWeightMixin.__init__(self, weight_quant)
        else:
            QuantWeightMixin.__init__(self, weight_quant, weight_bit_width=int(weight_bit_width), **kwargs)
        self._check_scale_shape()
        # SRBS
        self.sub_row: Optional[int] = None
        self.srbs_enabled = False
        self.srbs_reason = "dense: no SRBS requested"
        if sub_row is not None or keep is not None:
            if sub_row is None or keep is None:
                raise ValueError("sub_row and keep must be given together (or neither for a dense layer)")
            self._init_srbs(sub_row, keep)

    # ----------------------------------------------------------------- construction helpers

    def _init_srbs(self, sub_row, keep) -> None:
        # Validate the values themselves first (sub_row >= 1, 1 <= keep <= sub_row) ...
        sub_row = check_int("sub_row", sub_row, minimum=1)
        keep = check_int("keep", keep, minimum=1, maximum=sub_row)
        # ... then whether they fit this layer.
        if self.in_channels % sub_row:
            self.srbs_reason = (f"dense: in_channels={self.in_channels} is not a multiple of "
                                f"sub_row={sub_row}")
            warnings.warn(f"QuantWinogradConv2d({self.in_channels}, {self.out_channels}) stays "
                          f"{self.srbs_reason}", UserWarning, stacklevel=3)
            return
        self.sub_row = sub_row
        self.srbs_enabled = True
        self.srbs_reason = f"SRBS: sub_row={sub_row}"
        self.update_mask(keep)

    def _check_scale_shape(self) -> None:
        if not self.weight_quant.is_quant_enabled:
            return
        scale = self.weight_quant(self.weight.detach()).scale
        if scale.numel() not in (1, self.out_channels):
            raise ValueError(
                f"weight_quant gives {scale.numel()} scales; allowed: one per output channel "
                f"({self.out_channels}) or one per tensor -- a Winograd layer shares each output "
                "channel's scale across every Winograd position and input channel")

    @classmethod
    def from_conv(cls, conv: Union[nn.Conv2d, torch.Tensor], **kwargs) -> "QuantWinogradConv2d":
        """A layer initialised with ``U = G g G^T`` from a 3x3 stride-1 ``nn.Conv2d`` (e.g. the
        teacher's matching layer) or from a spatial weight ``(Cout, Cin, 3, 3)``.  Padding and
        bias are taken from the conv unless given."""
        if isinstance(conv, torch.Tensor):
            g = conv.detach()
            if g.dim() != 4 or tuple(g.shape[2:]) != (3, 3):
                raise ValueError(f"spatial weight must be (Cout, Cin, 3, 3), got {tuple(g.shape)}")
            return cls(g.shape[1], g.shape[0], spatial_weight=g, **kwargs)
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"from_conv needs an nn.Conv2d or a weight tensor, got {type(conv).__name__}")
        if (tuple(conv.kernel_size) != (3, 3) or tuple(conv.stride) != (1, 1) or conv.groups != 1
                or tuple(conv.dilation) != (1, 1) or isinstance(conv.padding, str)
                or conv.padding_mode != "zeros"):
            raise ValueError(f"from_conv needs a dense 3x3, stride-1, undilated, zero-padded conv; got {conv}")
        kwargs.setdefault("padding", tuple(conv.padding))
        kwargs.setdefault("bias", conv.bias is not None)
        kwargs.setdefault("dtype", conv.weight.dtype)
        layer = cls(conv.in_channels, conv.out_channels, spatial_weight=conv.weight.detach(), **kwargs)
        if conv.bias is not None and layer.bias is not None:
            with torch.no_grad():
                layer.bias.copy_(conv.bias)
        return layer

    @torch.no_grad()
    def load_spatial_weight(self, g) -> None:
        """Set ``U = G g G^T`` (computed in float64) from a spatial kernel ``g (Cout, Cin, 3, 3)``."""
        g = torch.as_tensor(g)
        if tuple(g.shape) != (self.out_channels, self.in_channels, 3, 3):
            raise ValueError(f"spatial weight must be ({self.out_channels}, {self.in_channels}, 3, 3), "
                             f"got {tuple(g.shape)}")
        U = filter_transform(g.detach().double().cpu().numpy(), self.spec)
        self.weight.copy_(torch.from_numpy(U).to(self.weight))
        self.weight.mul_(self.mask)

    # ----------------------------------------------------------------- views of the weight

    @property
    def U(self) -> torch.Tensor:  # noqa: N802 - the literature's name
        """The float Winograd-domain parameter (Cout, Cin, t, t) (same tensor as ``weight``)."""
        return self.weight

    @property
    def kernel_size(self) -> tuple[int, int]:
        return (3, 3)

    @property
    def stride(self) -> tuple[int, int]:
        return (1, 1)

    @property
    def m(self) -> int:
        return self.spec.m

    def masked_weight(self) -> torch.Tensor:
        return self.weight * self.mask if self.srbs_enabled else self.weight

    def quant_weight(self, quant_input=None, subtensor_slice_list=None):
        """The masked ``U`` through the weight quantizer: an ``IntQuantTensor`` (or the float
        masked ``U`` when quantization is disabled)."""
        return self.weight_quant(self.masked_weight())

    @property
    def is_weight_quantized(self) -> bool:
        return self.weight_quant.is_quant_enabled

    def _require_quant(self, what: str) -> None:
        if not self.is_weight_quantized:
            raise RuntimeError(f"{what} needs a weight quantizer; this layer has weight quantization disabled")

    @torch.no_grad()
    def weight_scale(self) -> torch.Tensor:
        """Per-output-channel scale ``s_w``, shape (Cout,) (a per-tensor scale is broadcast)."""
        self._require_quant("weight_scale()")
        scale = self.quant_weight().scale.detach().reshape(-1)
        return scale.expand(self.out_channels).clone() if scale.numel() == 1 else scale

    @torch.no_grad()
    def int_weight(self) -> torch.Tensor:
        """Integer codes of the quantized, masked ``U``: int64 (Cout, Cin, t, t), ``U_q / s_w``."""
        self._require_quant("int_weight()")
        q = self.quant_weight()
        return torch.round(q.value / q.scale).to(torch.int64)

    def weight_bit_width(self) -> int:
        self._require_quant("weight_bit_width()")
        return int(self.weight_quant.bit_width())

    # ----------------------------------------------------------------- SRBS

    @torch.no_grad()
    def update_mask(self, keep: Optional[int] = None, *, regrow: bool = False) -> Optional[int]:
        """Recompute the SRBS mask with ``keep`` non-zeros per sub-row (default: the current
        keep) from the magnitudes of ``U * mask`` -- or of the raw ``U`` with ``regrow=True`` --
        with :func:`winoforge.winograd.srbs_mask`'s rule (largest magnitudes, ties to the lowest
        index), then zero the dropped entries of ``U``.  Returns the keep in effect; a dense
        layer (no SRBS, or the dense fallback) is left alone and returns None."""
        if not self.srbs_enabled:
            return None
        keep = self.keep if keep is None else keep
        _, keep = check_srbs_params(self.in_channels, self.sub_row, keep)
        source = self.weight if regrow else self.weight * self.mask
        mask = srbs_mask(source.detach().double().cpu().numpy(), self.sub_row, keep)
        self.mask.copy_(torch.from_numpy(mask).to(self.mask))
        self.apply_mask_()
        return keep

    def set_density(self, density: float, *, regrow: bool = False) -> Optional[int]:
        """``update_mask`` with ``keep = round(density * sub_row)`` (at least 1)."""
        if not (isinstance(density, (int, float)) and 0 < density <= 1):
            raise ValueError(f"density={density!r} is not allowed; allowed: 0 < density <= 1")
        if not self.srbs_enabled:
            return None
        return self.update_mask(max(1, round(density * self.sub_row)), regrow=regrow)

    @property
    def keep(self) -> Optional[int]:
        """Kept entries per sub-row, read from the mask (so it survives ``load_state_dict``);
        None for a dense layer."""
        if not self.srbs_enabled:
            return None
        return int(self.mask[0, :self.sub_row, 0, 0].sum())

    @property
    def density(self) -> float:
        return self.keep / self.sub_row if self.srbs_enabled else 1.0

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Zero the masked entries of ``U`` in place (the trainer calls this after every
        optimizer step, so pruned weights stay exactly zero)."""
        if self.srbs_enabled:
            self.weight.mul_(self.mask)

    # ----------------------------------------------------------------- forward

    def forward(self, x: Union[torch.Tensor, QuantTensor]):
        quant_in = isinstance(x, QuantTensor)
        xv = x.value if quant_in else x
        if xv.dim() != 4 or xv.shape[1] != self.in_channels:
            raise ValueError(f"input must be (N, {self.in_channels}, H, W), got {tuple(xv.shape)}")
        qw = self.quant_weight()
        w = qw.value if isinstance(qw, QuantTensor) else qw
        if torch.onnx.is_in_onnx_export():
            y = winograd_conv2d_onnx(xv, w, self.spec, self.padding)
        else:
            y = winograd_conv2d_torch(xv, w, self.spec, self.padding, self.chunk_elements)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1).to(y.dtype)
        if not self.return_quant_tensor:
            return y
        if not (quant_in and isinstance(qw, QuantTensor)):
            raise RuntimeError("return_quant_tensor=True needs a QuantTensor input and quantized weights")
        if bool((x.zero_point != 0).any()) or x.scale.numel() != 1:
            raise RuntimeError("return_quant_tensor=True needs a per-tensor input scale and a zero zero-point")
        in_bits = int(x.bit_width)
        bits = _out_bits(in_bits, int(qw.bit_width), self.in_channels, self.spec.m, bool(x.signed))
        scale = x.scale.reshape(-1, 1, 1) * qw.scale.reshape(-1, 1, 1)
        return IntQuantTensor(y, scale.reshape(1, -1, 1, 1) if scale.numel() > 1 else scale.reshape(()),
                              torch.zeros((), device=y.device), torch.tensor(float(bits), device=y.device),
                              True, self.training)

    # ----------------------------------------------------------------- exactness helpers

    def integer_bound(self, in_bits: int, in_signed: bool = False) -> int:
        """A sound bound on the magnitude of every integer intermediate -- input transform,
        products, every partial channel sum and every partial output-transform sum, in any
        summation order -- for ``in_bits`` input codes and this layer's weight codes.

        Float arithmetic on power-of-two-scaled values is exact while this is below
        ``2^24`` (float32) or ``2^53`` (float64).  The bound is the triangle inequality,
        ``|A^T (x) A^T|_row * Cin * |B^T (x) B^T|_row * max|x| * max|U|`` with row sums 9 and 4
        for F(2,3) but 361 and 100 for F(4,3): float32 stays exact for F(2,3) with 4-bit
        unsigned inputs and 4-bit weights up to Cin = 3883 (8-bit/8-bit: Cin <= 14), for
        F(4,3) only up to Cin = 3 -- compute in float64 where exactness matters there."""
        self._require_quant("integer_bound()")
        in_bits = check_int("in_bits", in_bits, minimum=1, maximum=32)
        x_max = (1 << (in_bits - 1)) if in_signed else (1 << in_bits) - 1
        w_max = 1 << (self.weight_bit_width() - 1)
        kb, ka = _transform_gains(self.spec.m)
        return ka * self.in_channels * kb * x_max * w_max

    def extra_repr(self) -> str:
        exporting = getattr(self.weight_quant, "export_mode", False)  # the proxy returns plain tensors then
        bits = "float" if not self.is_weight_quantized else "exporting" if exporting else self.weight_bit_width()
        s = (f"{self.in_channels}, {self.out_channels}, {self.spec}, padding={self.padding}, "
             f"weight_bits={bits}, bias={self.bias is not None}, {self.srbs_reason}")
        return s + (f", keep={self.keep}" if self.srbs_enabled else "")
