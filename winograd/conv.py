"""Winograd-domain 2-D convolution (stride 1) and its exact integer reference.

``winograd_conv2d`` is split into the steps the hardware performs, each public so
that later levels (torch layer, FINN op, RTL reference) can check themselves
against one of them:

1. :func:`extract_tiles`   -- pad, cut overlapping ``t x t`` tiles with stride ``m``
2. :func:`input_transform` -- ``V = B^T d B`` per tile and channel
3. per Winograd position ``xi``: ``M_xi = U_xi (Cout x Cin) @ V_xi (Cin x tiles)``
4. :func:`output_transform` -- ``Y = A^T M A``, then :func:`assemble_tiles` crops.

All ``convolutions'' here are cross-correlations, as in every CNN framework.
"""

from __future__ import annotations

from math import ceil

import numpy as np

from ._checks import INT64_MAX, check_array, check_int, is_integer, max_abs
from .transforms import WinogradSpec

__all__ = [
    "as_spec",
    "filter_transform",
    "integer_filter_transform",
    "conv_output_size",
    "extract_tiles",
    "input_transform",
    "output_transform",
    "assemble_tiles",
    "winograd_conv2d",
    "direct_conv2d",
]


def as_spec(spec: WinogradSpec | int) -> WinogradSpec:
    """Accept a :class:`WinogradSpec` or an output tile size ``m`` (``r = 3``)."""
    if isinstance(spec, WinogradSpec):
        return spec
    if isinstance(spec, (int, np.integer)) and not isinstance(spec, bool):
        return WinogradSpec(int(spec))
    raise ValueError(f"spec must be a WinogradSpec or an int m, got {spec!r}")


def _padding_pair(padding) -> tuple[int, int]:
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding must be an int or a pair (ph, pw), got {padding!r}")
        return check_int("padding[0]", padding[0], minimum=0), check_int("padding[1]", padding[1], minimum=0)
    p = check_int("padding", padding, minimum=0)
    return p, p


def conv_output_size(size: int, kernel: int, padding: int) -> int:
    """Stride-1 output size ``size + 2*padding - kernel + 1``."""
    return size + 2 * padding - kernel + 1


def filter_transform(g, spec: WinogradSpec | int) -> np.ndarray:
    """``U = G g G^T``: ``(Cout, Cin, r, r)`` -> ``(Cout, Cin, t, t)`` float64."""
    spec = as_spec(spec)
    g = check_array("g", g, 4, "(Cout, Cin, r, r)")
    if g.shape[2:] != (spec.r, spec.r):
        raise ValueError(f"g must have kernel size {spec.r}x{spec.r} for {spec}, got shape {g.shape}")
    G = spec.G
    return G @ g.astype(np.float64) @ G.T


def integer_filter_transform(g, spec: WinogradSpec | int) -> tuple[np.ndarray, int]:
    """Exact transform of an integer kernel: ``(D * G g G^T, D)`` with int64 values.

    ``D = spec.filter_denominator``; ``winograd_conv2d(x, U_int)`` then equals
    ``D * direct_conv2d(x, g)`` exactly.
    """
    spec = as_spec(spec)
    g = check_array("g", g, 4, "(Cout, Cin, r, r)")
    if not is_integer(g):
        raise ValueError(f"g must hold integers for an exact transform, got dtype {g.dtype}")
    if g.shape[2:] != (spec.r, spec.r):
        raise ValueError(f"g must have kernel size {spec.r}x{spec.r} for {spec}, got shape {g.shape}")
    Gs = spec.G_scaled
    row = int(np.abs(Gs).sum(axis=1).max())
    if max_abs(g) * row * row > INT64_MAX:
        raise ValueError("g is too large: its integer transform would overflow int64")
    g = g.astype(np.int64)
    return Gs @ g @ Gs.T, spec.filter_denominator


def _tile_grid(out_h: int, out_w: int, m: int) -> tuple[int, int]:
    return ceil(out_h / m), ceil(out_w / m)


def extract_tiles(x, spec: WinogradSpec | int, padding=1) -> np.ndarray:
    """Pad ``x (N, C, H, W)`` and cut tiles ``(N, C, tiles_h, tiles_w, t, t)``.

    Tiles overlap by ``r - 1``; the bottom/right edge is zero-padded to whole
    tiles (those extra outputs are cropped by :func:`assemble_tiles`).
    """
    spec = as_spec(spec)
    x = check_array("x", x, 4, "(N, Cin, H, W)")
    ph, pw = _padding_pair(padding)
    n, c, h, w = x.shape
    out_h, out_w = conv_output_size(h, spec.r, ph), conv_output_size(w, spec.r, pw)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"x of spatial size {h}x{w} with padding ({ph}, {pw}) is smaller than the "
            f"{spec.r}x{spec.r} kernel; need H + 2*padding >= {spec.r}"
        )
    th, tw = _tile_grid(out_h, out_w, spec.m)
    need_h, need_w = th * spec.m + spec.r - 1, tw * spec.m + spec.r - 1
    xp = np.pad(x, ((0, 0), (0, 0), (ph, need_h - h - ph), (pw, need_w - w - pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (spec.t, spec.t), axis=(2, 3))
    return win[:, :, :: spec.m, :: spec.m]


def input_transform(tiles: np.ndarray, spec: WinogradSpec | int) -> np.ndarray:
    """``V = B^T d B`` over the last two axes; int64 for integer tiles, else float64."""
    spec = as_spec(spec)
    BT = spec.BT if is_integer(tiles) else spec.BT.astype(np.float64)
    tiles = tiles.astype(BT.dtype, copy=False)
    return BT @ tiles @ BT.T


def output_transform(M: np.ndarray, spec: WinogradSpec | int) -> np.ndarray:
    """``Y = A^T M A`` over the last two axes (``t x t`` -> ``m x m``)."""
    spec = as_spec(spec)
    AT = spec.AT if is_integer(M) else spec.AT.astype(np.float64)
    return AT @ M.astype(AT.dtype, copy=False) @ AT.T


def assemble_tiles(Y: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """``(N, C, tiles_h, tiles_w, m, m)`` -> ``(N, C, out_h, out_w)`` (cropped)."""
    n, c, th, tw, m, _ = Y.shape
    full = Y.transpose(0, 1, 2, 4, 3, 5).reshape(n, c, th * m, tw * m)
    return full[:, :, :out_h, :out_w]


def _check_int64_bound(bound: int, what: str) -> None:
    if bound > INT64_MAX:
        raise ValueError(
            f"integer {what} could overflow int64 (worst-case magnitude {bound}); "
            "use smaller input/weight values or float inputs"
        )


def winograd_conv2d(x, U, spec: WinogradSpec | int, padding=1) -> np.ndarray:
    """Stride-1 convolution of ``x (N, Cin, H, W)`` with Winograd-domain weights
    ``U (Cout, Cin, t, t)``.

    Integer ``x`` and integer ``U``: computed in int64, exact, returns int64
    (``ValueError`` if the worst case for these magnitudes could overflow).
    Otherwise float64.  With ``U = filter_transform(g)`` the result equals
    ``conv2d(x, g, padding)``.
    """
    spec = as_spec(spec)
    x = check_array("x", x, 4, "(N, Cin, H, W)")
    U = check_array("U", U, 4, "(Cout, Cin, t, t)")
    if U.shape[2:] != (spec.t, spec.t):
        raise ValueError(f"U must be (Cout, Cin, {spec.t}, {spec.t}) for {spec}, got shape {U.shape}")
    if U.shape[1] != x.shape[1]:
        raise ValueError(f"channel mismatch: x has Cin={x.shape[1]} but U has Cin={U.shape[1]}")
    exact = is_integer(x) and is_integer(U)
    if exact:
        bt = int(np.abs(spec.BT).sum(axis=1).max())
        at = int(np.abs(spec.AT).sum(axis=1).max())
        _check_int64_bound(max_abs(x) * bt * bt * max_abs(U) * x.shape[1] * at * at, "Winograd convolution")
        x, U = x.astype(np.int64), U.astype(np.int64)
    else:
        x, U = x.astype(np.float64), U.astype(np.float64)
    ph, pw = _padding_pair(padding)
    out_h = conv_output_size(x.shape[2], spec.r, ph)
    out_w = conv_output_size(x.shape[3], spec.r, pw)
    tiles = extract_tiles(x, spec, (ph, pw))
    n, cin, th, tw, t, _ = tiles.shape
    cout = U.shape[0]
    V = input_transform(tiles, spec)  # (N, Cin, th, tw, t, t)
    V = V.transpose(4, 5, 1, 0, 2, 3).reshape(t * t, cin, n * th * tw)
    Uxi = U.transpose(2, 3, 0, 1).reshape(t * t, cout, cin)
    M = np.matmul(Uxi, V)  # (t*t, Cout, tiles): one matrix product per Winograd position
    M = M.reshape(t, t, cout, n, th, tw).transpose(3, 2, 4, 5, 0, 1)
    return assemble_tiles(output_transform(M, spec), out_h, out_w)


def direct_conv2d(x, g, padding=1) -> np.ndarray:
    """Reference stride-1 cross-correlation, ``x (N, Cin, H, W)``, ``g (Cout, Cin, kh, kw)``.

    Exact int64 for integer operands (``ValueError`` on possible overflow), float64 otherwise.
    """
    x = check_array("x", x, 4, "(N, Cin, H, W)")
    g = check_array("g", g, 4, "(Cout, Cin, kh, kw)")
    if g.shape[1] != x.shape[1]:
        raise ValueError(f"channel mismatch: x has Cin={x.shape[1]} but g has Cin={g.shape[1]}")
    ph, pw = _padding_pair(padding)
    kh, kw = g.shape[2:]
    out_h, out_w = conv_output_size(x.shape[2], kh, ph), conv_output_size(x.shape[3], kw, pw)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x of spatial size {x.shape[2]}x{x.shape[3]} is smaller than the {kh}x{kw} kernel")
    if is_integer(x) and is_integer(g):
        _check_int64_bound(max_abs(x) * max_abs(g) * x.shape[1] * kh * kw, "direct convolution")
        x, g = x.astype(np.int64), g.astype(np.int64)
    else:
        x, g = x.astype(np.float64), g.astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (kh, kw), axis=(2, 3))  # N,C,Ho,Wo,kh,kw
    n, c = x.shape[:2]
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(n * out_h * out_w, c * kh * kw)
    out = cols @ g.reshape(g.shape[0], -1).T
    return out.reshape(n, out_h, out_w, g.shape[0]).transpose(0, 3, 1, 2)
