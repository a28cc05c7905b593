"""The stock-FINN baseline: the same student with dense direct 3x3 convolutions.

:func:`direct_baseline` copies a student and replaces every
``QuantWinogradConv2d`` by a Brevitas ``QuantConv2d`` (3x3, same padding, same
weight bit width and quantizer kind, per-output-channel scales), initialised
with the spatial kernel closest to the layer's ``U`` in the least-squares sense,
``g = G^+ U G^+T`` (exact where ``U`` lies in the range of ``G (.) G^T``; a trained,
pruned ``U`` generally does not, so the baseline computes a *different* function:
it is a hardware-cost reference, not an accuracy reference).  Everything else
-- BatchNorm, activations and their widths, pooling, the classifier -- is shared
by value.  FINN builds it with its own ``ConvolutionInputGenerator`` + ``MVAU``.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from brevitas.nn import QuantConv2d
from torch import nn

from winoforge.model.winograd_layer import QuantWinogradConv2d

__all__ = ["direct_baseline"]


def _spatial_kernel(layer: QuantWinogradConv2d) -> torch.Tensor:
    G = np.asarray(layer.spec.G, dtype=np.float64)
    Gp = np.linalg.pinv(G)
    U = layer.masked_weight().detach().double().cpu().numpy()
    return torch.from_numpy(np.einsum("ia,ocab,jb->ocij", Gp, U, Gp)).float()


def direct_baseline(student: nn.Module) -> nn.Module:
    """A copy of ``student`` with ``QuantConv2d`` in place of each Winograd layer (see module doc)."""
    model = copy.deepcopy(student).cpu().eval()
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if not isinstance(child, QuantWinogradConv2d):
                continue
            ph, pw = child.padding if isinstance(child.padding, tuple) else (child.padding, child.padding)
            conv = QuantConv2d(child.in_channels, child.out_channels, 3, padding=(ph, pw), bias=child.bias is not None,
                               weight_bit_width=child.weight_bit_width(),
                               weight_quant=child.weight_quant_spec,
                               return_quant_tensor=child.return_quant_tensor)
            with torch.no_grad():
                conv.weight.copy_(_spatial_kernel(child))
                if child.bias is not None:
                    conv.bias.copy_(child.bias)
            setattr(module, child_name, conv)
    return model.eval()
