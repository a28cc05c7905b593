"""QONNX export of trained students, and the check that the export computes what torch does.

:func:`export_student` runs Brevitas's QONNX exporter (TorchScript path: the
dynamo path cannot trace the SRBS mask bookkeeping) on a student in eval mode.
Every ``QuantWinogradConv2d`` switches to
:func:`winoforge.model.winograd_layer.winograd_conv2d_onnx` during export, so
it appears as a subgraph of *standard* ONNX nodes fed by a QONNX ``Quant``
node that holds the quantized, SRBS-sparse ``U``; any ONNX executor can run
it.  The graph is then tidied (shapes inferred, constants folded, ``Quant``
nodes kept, node names -- which carry the torch module names -- kept), and the
Winograd layers' parameters (``m``, padding, ``sub_row``, ``keep``, widths) are
stored as JSON in the model's ``metadata_props`` under ``winoforge.layers``.

:func:`check_export` runs the exported graph with ``qonnx.core.onnx_exec`` on
images and compares, with ``np.array_equal``, the integer codes of every
activation quantizer (torch ``QuantTensor.int()`` against the ``Quant`` node's
output divided by its scale) and the integer codes of the logits: the
classifier's accumulator ``sum_k W_int[j,k] * S_k`` recovered from the float
logits as ``(logit - bias) / (s_w[j] * s_in)``, where the recovery must land
within 1/4 of an integer (else the comparison refuses instead of rounding
an ambiguous value).
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from brevitas.nn import QuantIdentity, QuantLinear, QuantReLU
from torch import nn

from winoforge.model.students import float32_exact_problems

__all__ = ["module_path", "LAYERS_KEY", "HEAD_KEY", "read_metadata", "export_student", "tidy", "winograd_metadata", "ExportCheck",
           "check_export", "head_quantum", "output_codes", "quant_node_codes"]

#: metadata_props keys: the Winograd layers' parameters, and the classifier's output quantum.
LAYERS_KEY = "winoforge.layers"
HEAD_KEY = "winoforge.head"


def read_metadata(model, key: str):
    """A JSON ``metadata_props`` entry of an exported model (None if absent)."""
    for prop in model.model.metadata_props:
        if prop.key == key:
            return json.loads(prop.value)
    return None


def winograd_metadata(model: nn.Module) -> dict[str, dict[str, Any]]:
    """``{module name: {m, padding, sub_row, keep, weight_bits, in_channels, out_channels}}``."""
    from winoforge.model.students import winograd_layers

    out = {}
    for name, layer in winograd_layers(model).items():
        out[name] = {
            "m": layer.m, "padding": list(layer.padding) if isinstance(layer.padding, tuple) else layer.padding,
            "sub_row": layer.sub_row if layer.srbs_enabled else 0, "keep": layer.keep if layer.srbs_enabled else 0,
            "weight_bits": layer.weight_bit_width(), "in_channels": layer.in_channels,
            "out_channels": layer.out_channels,
        }
    return out


def tidy(model):
    """qonnx's cleanup without renaming: infer shapes, fold constants (``Quant`` kept), drop
    unused tensors.  Node names stay those of the export (``/features/block1/conv/Pad``)."""
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import GiveUniqueParameterTensors, RemoveStaticGraphInputs, RemoveUnusedTensors
    from qonnx.transformation.infer_shapes import InferShapes

    for node in model.graph.node:
        if node.op_type in ("Quant", "Trunc", "BipolarQuant"):
            node.domain = "qonnx.custom_op.general"
    for tr in (InferShapes(), GiveUniqueParameterTensors(),
               FoldConstants(exclude_op_types=["Quant", "BipolarQuant", "QuantizeLinear", "DequantizeLinear"]),
               RemoveUnusedTensors(), RemoveStaticGraphInputs(), InferShapes()):
        model = model.transform(tr)
    return model


def export_student(model: nn.Module, path: str | os.PathLike, image_shape: Sequence[int], batch: int = 1):
    """Export ``model`` (a student, put in eval mode) to QONNX at ``path``; returns the tidied
    ``ModelWrapper`` (also saved at ``path``)."""
    from brevitas.export import export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper

    if len(image_shape) != 3:
        raise ValueError(f"image_shape={tuple(image_shape)} is not allowed; allowed: (C, H, W)")
    problems = float32_exact_problems(model)
    if problems:  # a student saved before the builder refused such widths
        raise ValueError("export refused: " + "; ".join(problems))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval().cpu()
    example = torch.zeros(batch, *image_shape)
    raw = path.with_suffix(".raw.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about shape arithmetic, Brevitas naming
        export_qonnx(model, args=example, export_path=str(raw), dynamo=False)
    wrapped = tidy(ModelWrapper(str(raw)))
    raw.unlink()
    for key, value in ((LAYERS_KEY, winograd_metadata(model)), (HEAD_KEY, head_quantum(model, image_shape))):
        meta = wrapped.model.metadata_props.add()
        meta.key, meta.value = key, json.dumps(value, sort_keys=True)
    wrapped.save(str(path))
    return wrapped


# ------------------------------------------------------------------ checking


def _scale_of(model, node) -> np.ndarray:
    return np.asarray(model.get_initializer(node.input[1]), dtype=np.float64)


def module_path(scopes: Sequence[str]) -> str:
    """The torch module name from the scopes of an exported node name: ``["layer1", "layer1.0",
    "conv1"]`` -> ``layer1.0.conv1`` (the exporter repeats a parent's name in nested scopes)."""
    name = ""
    for scope in scopes:
        if name and scope.startswith(name + "."):
            name = scope
        else:
            name = f"{name}.{scope}" if name else scope
    return name


def quant_node_codes(model, context: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Integer codes of every activation ``Quant`` node (dynamic input), by module name
    (``/features/block1/relu/act_quant/export_handler/Quant`` -> ``features.block1.relu``)."""
    out = {}
    for node in model.graph.node:
        if node.op_type != "Quant" or model.get_initializer(node.input[0]) is not None:
            continue
        parts = [p for p in node.name.split("/") if p]
        cut = parts.index("act_quant") if "act_quant" in parts else len(parts) - 1
        name = module_path(parts[:cut])
        out[name] = _codes(context[node.output[0]], _scale_of(model, node), name)
    return out


def _codes(values: np.ndarray, scale: np.ndarray, what: str) -> np.ndarray:
    q = np.asarray(values, dtype=np.float64) / scale
    r = np.round(q)
    if q.size and np.abs(q - r).max() > 1e-3:
        raise AssertionError(f"{what}: values are not on the quantizer's grid (off by {np.abs(q - r).max():.3g})")
    return r.astype(np.int64)


def head_quantum(model: nn.Module, image_shape: Sequence[int]) -> dict[str, list[float]]:
    """``{"quantum": q_j, "bias": b_j}`` with ``logit_j = b_j + q_j * acc_j`` for the classifier's
    integer accumulator ``acc_j``: ``q_j = s_w[j] * s_act / pixels`` (the last activation
    quantizer's scale over the globally pooled pixels)."""
    fc = [m for m in model.modules() if isinstance(m, QuantLinear)][-1]
    act_unit = _head_input_unit(model, torch.zeros(1, *image_shape))
    with torch.no_grad():
        s_w = fc.quant_weight().scale.detach().double().reshape(-1).numpy()
    s_w = np.broadcast_to(s_w, (fc.out_features,))
    bias = fc.bias.detach().double().numpy() if fc.bias is not None else np.zeros(fc.out_features)
    return {"quantum": [float(v) for v in s_w * act_unit], "bias": [float(v) for v in bias]}


def output_codes(head: dict[str, list[float]], logits: np.ndarray, tol: float = 0.25) -> np.ndarray:
    """The classifier's integer accumulator from float logits (see :func:`head_quantum`); refuses
    values more than ``tol`` away from an integer instead of rounding an ambiguous value."""
    q = (np.asarray(logits, dtype=np.float64) - np.asarray(head["bias"])) / np.asarray(head["quantum"])
    r = np.round(q)
    worst = float(np.abs(q - r).max()) if q.size else 0.0
    if worst > tol:
        raise AssertionError(f"logits are {worst:.3g} away from the integer grid: cannot recover codes unambiguously")
    return r.astype(np.int64)


def _head_input_unit(model: nn.Module, x: torch.Tensor) -> float:
    """One unit of the classifier's integer input: the last activation quantizer's scale
    over the number of globally pooled pixels."""
    acts = [m for m in model.modules() if isinstance(m, (QuantReLU, QuantIdentity))]
    pools = [m for m in model.modules() if isinstance(m, nn.AdaptiveAvgPool2d)]
    if not pools:
        raise ValueError("the student has no global average pooling before its classifier")
    seen = {}

    def act_hook(mod, inp, out):
        seen["act"] = out

    def pool_hook(mod, inp, out):
        seen["pool_in"] = inp[0]

    handles = [acts[-1].register_forward_hook(act_hook), pools[-1].register_forward_hook(pool_hook)]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    pixels = int(np.prod(seen["pool_in"].shape[2:]))
    return float(seen["act"].scale.reshape(-1)[0]) / pixels


@dataclass
class ExportCheck:
    images: int
    quant_layers: list[str]
    logits_equal_float: bool
    max_logit_diff: float
    mismatches: dict[str, int] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return not self.mismatches


def _torch_codes(model: nn.Module, x: torch.Tensor) -> tuple[dict[str, np.ndarray], np.ndarray]:
    codes, handles = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, (QuantReLU, QuantIdentity)):
            def hook(m, inp, out, name=name):
                codes[name] = out.int().detach().numpy().astype(np.int64)
            handles.append(mod.register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits = model(x).numpy()
    finally:
        for h in handles:
            h.remove()
    return codes, logits


def check_export(model: nn.Module, onnx_model, images: torch.Tensor | np.ndarray, progress: bool = False) -> ExportCheck:
    """Run ``images`` (N, C, H, W floats as the student takes them) through torch and through
    the exported graph (qonnx's executor, one image at a time as exported); compare integer
    codes exactly.  Returns the comparison; ``.exact`` is False on any mismatch."""
    import qonnx.core.onnx_exec as oxe

    import winoforge.hw.ops  # noqa: F401  (registers our domain for fused graphs)

    x = torch.as_tensor(np.asarray(images, dtype=np.float32))
    model = model.eval().cpu()
    head = head_quantum(model, x.shape[1:])
    t_codes, t_logits = _torch_codes(model, x)
    iname, oname = onnx_model.graph.input[0].name, onnx_model.graph.output[0].name
    batch = onnx_model.get_tensor_shape(iname)[0]
    o_codes: dict[str, list[np.ndarray]] = {}
    o_logits = []
    rng = range(0, len(x), batch)
    if progress:
        from tqdm import tqdm

        rng = tqdm(rng, desc="check export", unit="batch")
    for i in rng:
        ctx = oxe.execute_onnx(onnx_model, {iname: x[i:i + batch].numpy()}, return_full_exec_context=True)
        o_logits.append(ctx[oname])
        for name, c in quant_node_codes(onnx_model, ctx).items():
            o_codes.setdefault(name, []).append(c)
    o_logits = np.concatenate(o_logits)
    mismatches = {}
    for name, tc in t_codes.items():
        if name not in o_codes:
            mismatches[name] = -1
            continue
        oc = np.concatenate(o_codes[name])
        if not np.array_equal(tc, oc):
            mismatches[name] = int((tc != oc).sum())
    t_out, o_out = output_codes(head, t_logits), output_codes(head, o_logits)
    if not np.array_equal(t_out, o_out):
        mismatches["logits"] = int((t_out != o_out).sum())
    return ExportCheck(len(x), sorted(t_codes), bool(np.array_equal(t_logits, o_logits)),
                       float(np.abs(t_logits - o_logits).max()), mismatches)
