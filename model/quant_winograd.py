"""``QuantWinogradConv2d``: a 3x3 stride-1 convolution trained in the Winograd domain.

The trainable parameter *is* the Winograd-domain weight ``U`` (Cout, Cin, t, t)
(DESIGN.md, "Integer exactness"): it is quantized directly by an injected
Brevitas weight quantizer with **one scale per output channel**, shared by
every Winograd position and input channel, optionally masked to the SRBS
pattern, and used as

    Y = A^T [ sum_c U_c . (B^T d_c B) ] A

with the fixed transforms of :class:`winoforge.winograd.WinogradSpec`.  With
integer input codes ``x_int`` (scale ``s_x``) and weight codes ``U_int``
(scale ``s_w[k]``) the output is ``s_x * s_w[k] * winograd_conv2d(x_int, U_int)``
(tested with ``np.array_equal`` on the codes).

The quantizer lives in an inner Brevitas ``QuantConv2d`` whose 1x1 weight of
shape ``(Cout, Cin*t*t, 1, 1)`` is ``U`` flattened: Brevitas's per-output-channel
machinery then gives exactly the scale sharing the hardware needs, and every
Brevitas weight quantizer (float or power-of-two scales, any bit width) can be
injected unchanged.
"""

from __future__ import annotations

import warnings
from math import ceil

import numpy as np
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d
from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFixedPoint
from torch import nn

from winoforge.winograd import WinogradSpec, filter_transform, srbs_mask
from winoforge.winograd.srbs import check_srbs_params

__all__ = ["QuantWinogradConv2d", "winograd_conv2d_torch", "WEIGHT_QUANTIZERS"]

#: Injectable weight quantizers by name: float per-channel scales, or power-of-two
#: per-channel scales (bit-exact through FINN's Python execution, see DESIGN.md).
WEIGHT_QUANTIZERS = {
    "float": Int8WeightPerChannelFloat,
    "po2": Int8WeightPerTensorFixedPoint.let(scaling_per_output_channel=True),
}


_KRON_CACHE: dict[tuple[int, torch.dtype, torch.device], tuple[torch.Tensor, torch.Tensor]] = {}


def _kron_transforms(spec: WinogradSpec, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``B^T (x) B^T`` (t*t x t*t) and ``A^T (x) A^T`` (m*m x t*t): each 2-D transform as one matrix
    on row-major flattened tiles, so it runs as a single GEMM over all tiles."""
    key = (spec.m, like.dtype, like.device)
    if key not in _KRON_CACHE:
        kb = np.kron(spec.BT, spec.BT).astype(np.float64)
        ka = np.kron(spec.AT, spec.AT).astype(np.float64)
        _KRON_CACHE[key] = (torch.tensor(kb, dtype=like.dtype, device=like.device),
                            torch.tensor(ka, dtype=like.dtype, device=like.device))
    return _KRON_CACHE[key]


def winograd_conv2d_torch(x: torch.Tensor, U: torch.Tensor, spec: WinogradSpec, padding: int = 1) -> torch.Tensor:
    """Differentiable stride-1 Winograd convolution in torch (same tiling as the numpy core).

    Layout chosen so that every stage is one large matrix product: tiles as a
    ``(t*t, Cin*N*tiles)`` matrix, the input transform ``(B^T (x) B^T) @ tiles``,
    the ``t*t`` per-position products as one batched matmul
    ``(t*t, Cout, Cin) @ (t*t, Cin, N*tiles)``, the output transform
    ``(A^T (x) A^T) @ M``.  Autograd's backward is then the transposed GEMMs.
    """
    n, c, h, w = x.shape
    m, r, t = spec.m, spec.r, spec.t
    out_h, out_w = h + 2 * padding - r + 1, w + 2 * padding - r + 1
    th, tw = ceil(out_h / m), ceil(out_w / m)
    need_h, need_w = th * m + r - 1, tw * m + r - 1
    xp = F.pad(x, (padding, need_w - w - padding, padding, need_h - h - padding))
    KB, KA = _kron_transforms(spec, x)
    tiles = xp.unfold(2, t, m).unfold(3, t, m)  # (N, C, th, tw, t, t), a view
    X = tiles.permute(4, 5, 1, 0, 2, 3).reshape(t * t, c * n * th * tw)
    V = (KB @ X).view(t * t, c, n * th * tw)
    k = U.shape[0]
    M = torch.bmm(U.permute(2, 3, 0, 1).reshape(t * t, k, c), V)  # (t*t, K, N*tiles)
    Y = (KA @ M.view(t * t, k * n * th * tw)).view(m, m, k, n, th, tw)
    Y = Y.permute(3, 2, 4, 0, 5, 1).reshape(n, k, th * m, tw * m)
    return Y[:, :, :out_h, :out_w]


class QuantWinogradConv2d(nn.Module):
    """3x3 stride-1 convolution whose trainable weight is the quantized, optionally
    SRBS-sparse Winograd-domain ``U``.

    ``weight_quant``: a Brevitas weight quantizer (default per-output-channel
    float scales) or a name from :data:`WEIGHT_QUANTIZERS`.  ``sub_row``/``keep``
    enable SRBS; a layer whose ``in_channels`` is not a multiple of ``sub_row``
    stays dense, warns, and says why in ``srbs_note``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        *,
        m: int = 2,
        padding: int = 1,
        weight_bit_width: int = 4,
        weight_quant=Int8WeightPerChannelFloat,
        sub_row: int | None = None,
        keep: int | None = None,
        spatial_weight: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        if isinstance(weight_bit_width, bool) or not isinstance(weight_bit_width, int) or not 2 <= weight_bit_width <= 8:
            raise ValueError(f"weight_bit_width={weight_bit_width!r} is out of range; allowed: 2..8")
        if isinstance(weight_quant, str):
            if weight_quant not in WEIGHT_QUANTIZERS:
                raise ValueError(f"weight_quant={weight_quant!r} is not allowed; allowed: {', '.join(WEIGHT_QUANTIZERS)}")
            weight_quant = WEIGHT_QUANTIZERS[weight_quant]
        if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
            raise ValueError(f"padding={padding!r} is out of range; allowed: integer >= 0")
        self.spec = WinogradSpec(m)
        self.in_channels, self.out_channels, self.padding = in_channels, out_channels, padding
        t = self.spec.t
        self.wq = QuantConv2d(in_channels * t * t, out_channels, 1, bias=False,
                              weight_quant=weight_quant, weight_bit_width=weight_bit_width)
        if spatial_weight is None:
            spatial_weight = torch.empty(out_channels, in_channels, 3, 3)
            nn.init.kaiming_normal_(spatial_weight, mode="fan_out", nonlinearity="relu")
        self.load_spatial_weight(spatial_weight)
        self.register_buffer("mask", torch.ones(out_channels, in_channels, t, t))
        self.sub_row: int | None = None
        self.keep: int | None = None
        self.srbs_note = "dense: no SRBS requested"
        if sub_row is not None or keep is not None:
            if sub_row is None or keep is None:
                raise ValueError("sub_row and keep must be given together")
            if isinstance(sub_row, int) and sub_row >= 1 and in_channels % sub_row:
                self.srbs_note = f"dense: in_channels={in_channels} is not a multiple of sub_row={sub_row}"
                warnings.warn(f"QuantWinogradConv2d stays {self.srbs_note}", stacklevel=2)
            else:
                self.sub_row, _ = check_srbs_params(in_channels, sub_row, keep)
                self.srbs_note = f"SRBS sub_row={sub_row}"
                self.set_keep(keep)

    @classmethod
    def from_conv(cls, conv: nn.Conv2d, **kw) -> "QuantWinogradConv2d":
        """Initialise ``U = G g G^T`` from a spatial 3x3 stride-1 convolution (e.g. a teacher's)."""
        if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError(f"conv must be 3x3, stride 1, dense, undilated; got {conv}")
        kw.setdefault("padding", conv.padding[0])
        return cls(conv.in_channels, conv.out_channels, spatial_weight=conv.weight.detach(), **kw)

    @property
    def srbs_enabled(self) -> bool:
        return self.sub_row is not None

    @property
    def U(self) -> torch.Tensor:  # noqa: N802
        """The float Winograd-domain parameter, viewed as (Cout, Cin, t, t)."""
        t = self.spec.t
        return self.wq.weight.view(self.out_channels, self.in_channels, t, t)

    @torch.no_grad()
    def load_spatial_weight(self, g: torch.Tensor) -> None:
        g = torch.as_tensor(g)
        if tuple(g.shape) != (self.out_channels, self.in_channels, 3, 3):
            raise ValueError(f"spatial weight must be ({self.out_channels}, {self.in_channels}, 3, 3), got {tuple(g.shape)}")
        U = filter_transform(g.double().cpu().numpy(), self.spec)
        self.wq.weight.copy_(torch.from_numpy(U).reshape_as(self.wq.weight).to(self.wq.weight))

    @torch.no_grad()
    def set_keep(self, keep: int) -> None:
        """Recompute the SRBS mask from ``|U|`` with ``keep`` non-zeros per sub-row, and apply it."""
        if not self.srbs_enabled:
            raise ValueError(f"set_keep on a layer that is {self.srbs_note}")
        _, keep = check_srbs_params(self.in_channels, self.sub_row, keep)
        # Entries already pruned are zero and lose every tie, so a smaller keep only removes more.
        mask = srbs_mask(self.U.detach().cpu().double().numpy(), self.sub_row, keep)
        self.mask.copy_(torch.from_numpy(mask).to(self.mask))
        self.keep = keep
        self.apply_mask_()

    @torch.no_grad()
    def apply_mask_(self) -> None:
        """Zero the masked entries of ``U`` in place (after every optimizer step)."""
        self.U.mul_(self.mask)

    def quant_weight(self) -> torch.Tensor:
        """Quantized, masked ``U`` (float values on the quantizer's grid)."""
        t = self.spec.t
        q = self.wq.quant_weight()
        return q.value.view(self.out_channels, self.in_channels, t, t) * self.mask

    def weight_scale(self) -> torch.Tensor:
        """Per-output-channel scale, shape (Cout,)."""
        return self.wq.quant_weight().scale.detach().reshape(-1)

    @torch.no_grad()
    def int_weight(self) -> np.ndarray:
        """Integer codes of the quantized, masked ``U`` (int64, Cout x Cin x t x t)."""
        codes = self.quant_weight() / self.weight_scale().view(-1, 1, 1, 1)
        return torch.round(codes).to(torch.int64).cpu().numpy()

    def forward(self, x) -> torch.Tensor:
        x = getattr(x, "value", x)  # a Brevitas QuantTensor from the preceding quantizer
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"input must be (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return winograd_conv2d_torch(x, self.quant_weight(), self.spec, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, {self.spec}, padding={self.padding}, "
                f"w_bits={int(self.wq.quant_weight().bit_width)}, {self.srbs_note}"
                + (f", keep={self.keep}" if self.keep else ""))
