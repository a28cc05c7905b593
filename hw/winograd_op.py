"""The ``WinogradSRBS`` FINN hardware layer: a 3x3 stride-1 convolution computed
with Winograd F(m x m, 3x3) on Winograd-domain, sub-row-balanced sparse weights.

Semantics: exactly :func:`winoforge.winograd.winograd_conv2d` on integers.
Input 0 is the activation tensor NHWC ``(N, H, W, IFMChannels)``, input 1 an
initializer ``U`` of shape ``(OFMChannels, IFMChannels, t, t)`` (``t = m + 2``), the
integer Winograd-domain weight codes; output NHWC ``(N, Ho, Wo, OFMChannels)``,
``Ho = H + 2*Padding - 2``, the exact, unscaled integer result.  As everywhere in
FINN the tensors are float32 carriers of integers.

Two registered ops (see :func:`register`, called once when this module is imported):

* ``WinogradSRBS`` in ``finn.custom_op.fpgadataflow`` -- the generic HW layer;
* ``WinogradSRBS_rtl`` in ``finn.custom_op.fpgadataflow.rtl`` -- what FINN's
  ``SpecializeLayers`` turns it into.  Unlike FINN's own ``*_rtl`` layers it keeps a
  Python execution mode (``exec_mode`` "" or "python"); "rtlsim" (FINN's XSim)
  raises: the RTL is simulated with Verilator by :mod:`winoforge.hw.rtl`.  FINN's ``step_hw_codegen`` runs ``PrepareIP``, which for every node
  in the ``.rtl`` domain with ``backend="fpgadataflow"`` creates
  ``code_gen_dir_ipgen`` with ``make_build_dir("code_gen_ipgen_<name>_")`` (only
  if the attribute is empty or not an existing directory -- an existing one is
  taken as cached and nothing is generated) and calls
  ``code_generation_ipgen(model, fpgapart, clk)``, which ``RTLBackend`` forwards to
  :meth:`WinogradSRBS_rtl.generate_hdl`.  That writes the layer's SystemVerilog
  (``hw/rtl/winograd_srbs_layer.sv`` and a top module named after the node with
  FINN's ports), its packed SRBS weights as ``$readmemh`` files and a JSON of
  every parameter.

Importing the FINN modules used here needs no shim: ``finn.custom_op.fpgadataflow``
(and ``.rtl``) import without ``FINN_BUILD_DIR``, ``XILINX_VIVADO`` or the
``finn.xsi.SimEngine`` stub (measured with finn-plus 1.6.1; those are needed by
``finn.builder`` only, see ``hw/finn_env.py``).  Only :class:`WinogradSRBS_rtl`
code generation through ``PrepareIP`` needs FINN's settings (``FINN_BUILD_DIR``).

The layer's parameters and semantics are in :mod:`winoforge.hw.srbs_params`, its
output ranges in :mod:`~winoforge.hw.srbs_ranges`, its estimates in
:mod:`~winoforge.hw.srbs_estimates`, the folding search in
:mod:`~winoforge.hw.srbs_folding` and its code generation in
:mod:`~winoforge.hw.srbs_codegen`; this module is the FINN ops and the node factory.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
from onnx import NodeProto, helper
from qonnx.core.datatype import BaseDataType, DataType
from qonnx.custom_op.registry import add_op_to_domain
from qonnx.util.basic import get_by_name

import finn.custom_op.fpgadataflow as _fpgadataflow
import finn.custom_op.fpgadataflow.rtl as _fpgadataflow_rtl
from finn.custom_op.fpgadataflow.hwcustomop import HWCustomOp
from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend

from .srbs_codegen import INDICES_FILE, PARAMS_FILE, VALUES_FILE, weight_files, write_layer_parameters
from .srbs_estimates import CycleEstimate, InternalWidths, ResourceEstimate
from .srbs_folding import choose_folding
from .srbs_params import (
    ATTRS,
    DOMAIN,
    EXEC_MODES,
    FLOAT32_EXACT_LIMIT,
    OP_TYPE,
    RTL_DOMAIN,
    WinogradSRBSParams,
    attr_error,
    check_output_datatype_holds,
    check_weights,
    first_index,
    winograd_srbs_reference,
)
from .srbs_ranges import datatype_output_range, dt_range, exact_output_range, exact_range_cached, smallest_datatype

__all__ = [
    "OP_TYPE",
    "DOMAIN",
    "RTL_DOMAIN",
    "WinogradSRBS",
    "WinogradSRBS_rtl",
    "make_winograd_srbs_node",
    "register",
]


# --------------------------------------------------------------------------- node factory


def _datatype_name(value) -> str:
    return value.name if isinstance(value, BaseDataType) else str(value)


def make_winograd_srbs_node(
    input_name: str,
    weight_name: str,
    output_name: str,
    *,
    m: int,
    ifm_channels: int,
    ofm_channels: int,
    ifm_dim,
    input_datatype,
    weight_datatype,
    output_datatype=None,
    padding: int = 1,
    sub_row: int = 0,
    keep: int = 0,
    pe: int = 1,
    simd: int = 1,
    pos: int = 1,
    batch_size: int = 1,
    res_type: str = "auto",
    ram_style: str = "auto",
    runtime_weights: int = 0,
    isimd: int = 0,
    weights=None,
    rtl: bool = False,
    name: str = "",
) -> NodeProto:
    """A validated ``WinogradSRBS`` (or, with ``rtl=True``, ``WinogradSRBS_rtl``) node.

    Folding: ``pe``, ``simd``, ``pos`` and ``isimd`` (node attributes PE, SIMD, POS, ISIMD;
    see :func:`choose_folding`).

    ``output_datatype`` defaults to the smallest type holding the exact output range
    of ``weights`` when given (:func:`exact_output_range`), else the sound bound
    :func:`datatype_output_range`.  ``weights``, if given, are validated
    (:func:`check_weights`) and must fit the output datatype.
    """
    for label, tensor in (("input_name", input_name), ("weight_name", weight_name), ("output_name", output_name)):
        if not isinstance(tensor, str) or not tensor:
            raise ValueError(f"{label} must be a non-empty tensor name, got {tensor!r}")
    probe_odt = output_datatype if output_datatype is not None else "INT32"
    params = WinogradSRBSParams(
        m=m, ifm_channels=ifm_channels, ofm_channels=ofm_channels, ifm_dim=ifm_dim,
        input_datatype=_datatype_name(input_datatype), weight_datatype=_datatype_name(weight_datatype),
        output_datatype=_datatype_name(probe_odt), padding=padding, sub_row=sub_row, keep=keep,
        pe=pe, simd=simd, pos=pos, batch_size=batch_size, res_type=res_type, ram_style=ram_style,
        runtime_weights=runtime_weights, isimd=isimd,
    )
    if weights is not None:
        U = check_weights(weights, params)
        exact = exact_output_range(U, params)
        if output_datatype is None:
            params = params.replace(output_datatype=smallest_datatype(*exact))
        else:
            check_output_datatype_holds(params.output_datatype, exact)
    elif output_datatype is None:
        params = params.replace(output_datatype=smallest_datatype(*datatype_output_range(params)))
    return helper.make_node(
        OP_TYPE + ("_rtl" if rtl else ""),
        [input_name, weight_name],
        [output_name],
        domain=RTL_DOMAIN if rtl else DOMAIN,
        name=name,
        backend="fpgadataflow",
        **params.to_attributes(),
    )



# --------------------------------------------------------------------------- the FINN ops


class WinogradSRBS(HWCustomOp):
    """Generic FINN HW layer; executes bit-exactly in Python (exec_mode "" / "python")."""

    def __init__(self, onnx_node, **kwargs):
        super().__init__(onnx_node, **kwargs)
        self.params()  # validate on creation

    def get_nodeattr_types(self):
        attrs = super().get_nodeattr_types()
        for attr, (_, kind, required, default) in ATTRS.items():
            attrs[attr] = (kind, required, default)
        # HWCustomOp allows "", "rtlsim", "cppsim"; this op has a Python mode and no HLS.
        # Validated by params(), which gives the error message the attribute deserves.
        attrs["exec_mode"] = ("s", False, "")
        return attrs

    # ---- parameters and validation

    def params(self) -> WinogradSRBSParams:
        """The validated parameters (``ValueError`` naming a bad attribute)."""
        values = {}
        for attr in ATTRS:
            if get_by_name(self.onnx_node.attribute, attr) is not None:
                values[attr] = self.get_nodeattr(attr)
        params = WinogradSRBSParams.from_attributes(values)
        mode = self.get_nodeattr("exec_mode")
        if mode not in EXEC_MODES:
            raise attr_error("exec_mode", repr(mode), "no such execution mode (no HLS variant: no cppsim)",
                             ", ".join(repr(v) for v in EXEC_MODES))
        return params

    def set_nodeattr(self, name, value):
        """As FINN's, but a layer attribute that would make the node invalid raises
        ``ValueError`` and leaves the node unchanged."""
        if name not in ATTRS and name != "exec_mode":
            return super().set_nodeattr(name, value)
        old = get_by_name(self.onnx_node.attribute, name)
        saved = copy.deepcopy(old) if old is not None else None
        super().set_nodeattr(name, value)
        try:
            self.params()
        except ValueError:
            attrs = self.onnx_node.attribute
            index = next(i for i, a in enumerate(attrs) if a.name == name)
            if saved is None:
                del attrs[index]
            else:
                attrs[index].CopyFrom(saved)
            raise
        return None

    def verify_node(self):
        """Raise ``ValueError`` on a bad attribute or wiring; else FINN-style messages."""
        self.params()
        if self.get_nodeattr("backend") != "fpgadataflow":
            raise attr_error("backend", self.get_nodeattr("backend"), "must be fpgadataflow", "fpgadataflow")
        node = self.onnx_node
        if len(node.input) != 2 or len(node.output) != 1:
            raise ValueError(
                f"{OP_TYPE} needs 2 inputs (activations, weights) and 1 output, "
                f"got {len(node.input)} inputs and {len(node.output)} outputs"
            )
        return ["Attribute backend is set correctly", "All necessary attributes exist and are valid",
                "The number of inputs and outputs is correct"]

    def weights(self, model) -> np.ndarray | None:
        """The validated int64 weights from ``model``'s initializer (None if absent)."""
        U = model.get_initializer(self.onnx_node.input[1])
        return None if U is None else check_weights(U, self.params())

    # ---- datatypes

    def get_input_datatype(self, ind=0):
        if ind == 0:
            return DataType[self.get_nodeattr("inputDataType")]
        if ind == 1:
            return DataType[self.get_nodeattr("weightDataType")]
        raise ValueError(f"{OP_TYPE} has inputs 0 (activations) and 1 (weights), not {ind}")

    def get_output_datatype(self, ind=0):
        return DataType[self.get_nodeattr("outputDataType")]

    def infer_node_datatype(self, model):
        """Take the input tensor's datatype; widen ``outputDataType`` (never narrow --
        that is :meth:`minimize_accumulator_width`'s job) if it no longer holds the
        output range; annotate the output tensor."""
        node = self.onnx_node
        idt = model.get_tensor_datatype(node.input[0])
        if idt != self.get_input_datatype(0):
            self.set_nodeattr("inputDataType", idt.name)
        params = self.params()
        U = None if params.runtime_weights else self.weights(model)
        rng = exact_range_cached(U, params) if U is not None else datatype_output_range(params)
        lo, hi = dt_range(params.output_datatype)
        if rng[0] < lo or rng[1] > hi:
            self.set_nodeattr("outputDataType", smallest_datatype(min(rng[0], lo), max(rng[1], hi)).name)
        model.set_tensor_datatype(node.output[0], self.get_output_datatype())

    def minimize_accumulator_width(self, model, datatype_only=False):
        """Set ``outputDataType`` to the smallest type holding the output range: exact
        for the weights in ``model`` (:func:`exact_output_range`), or the sound bound
        :func:`datatype_output_range` when ``datatype_only``, without weights, or with
        runtime-writeable weights (any weights of ``weightDataType`` may be written later; as
        FINN's MVAU).  (Unlike MVAU, a last node is not rounded up to a multiple of 8 bits.)"""
        params = self.params()
        U = None if datatype_only or params.runtime_weights else self.weights(model)
        rng = exact_range_cached(U, params) if U is not None else datatype_output_range(params)
        odt = smallest_datatype(*rng)
        self.set_nodeattr("outputDataType", odt.name)
        model.set_tensor_datatype(self.onnx_node.output[0], odt)
        return odt

    def minimize_weight_bit_width(self, model, datatype_only=False):
        """As MVAU: shrink ``weightDataType`` to the smallest type holding the weights (not with
        runtime-writeable weights: the type is what a later weight set may use)."""
        U = None if datatype_only or self.params().runtime_weights else self.weights(model)
        if U is not None and U.size:
            wdt = smallest_datatype(min(int(U.min()), 0), max(int(U.max()), 0))
            self.set_nodeattr("weightDataType", wdt.name)
        return self.get_input_datatype(1)

    def internal_widths(self) -> InternalWidths:
        return self.params().internal_widths()

    # ---- shapes and streams

    def get_normal_input_shape(self, ind=0):
        p = self.params()
        if ind == 0:
            return (p.batch_size, *p.ifm_dim, p.ifm_channels)
        if ind == 1:
            return (p.ofm_channels, p.ifm_channels, p.t, p.t)
        raise ValueError(f"{OP_TYPE} has inputs 0 and 1, not {ind}")

    def get_folded_input_shape(self, ind=0):
        p = self.params()
        if ind == 0:
            return (p.batch_size, *p.ifm_dim, p.in_folds, p.in_simd)
        if ind == 1 and p.runtime_weights:  # the weight stream in1_V: bytes of LOAD_W-bit words
            from .rtl.winograd_layer import LOAD_W, weight_stream_length

            return (1, weight_stream_length(p), LOAD_W // 8)
        if ind == 1:  # the weight memory: POS banks, words of PE x lanes entries
            return (p.weight_memory_depth, p.pos, p.pe, p.lanes)
        raise ValueError(f"{OP_TYPE} has inputs 0 and 1, not {ind}")

    def get_normal_output_shape(self, ind=0):
        p = self.params()
        return (p.batch_size, *p.out_dim, p.ofm_channels)

    def get_folded_output_shape(self, ind=0):
        """``OE = out_stream_elems`` channels per beat (PE unless the output rate needs more)."""
        p = self.params()
        oe = p.out_stream_elems
        return (p.batch_size, *p.out_dim, p.ofm_channels // oe, oe)

    def get_instream_width(self, ind=0):
        """``ISIMD * in_bits`` (SIMD where ISIMD is 0) at any POS (an input-rate bound in the
        cycles instead)."""
        if ind == 0:
            return self.params().in_simd * self.get_input_datatype(0).bitwidth()
        if ind == 1 and self.get_nodeattr("runtime_writeable_weights"):
            from .rtl.winograd_layer import LOAD_W

            # the weight stream in1_V: FINN's get_verilog_top_module_intf_names lists it from this width
            return LOAD_W
        if ind == 1:
            return 0  # weights live in the layer's own memory: no stream
        raise ValueError(f"{OP_TYPE} has inputs 0 and 1, not {ind}")

    def get_outstream_width(self, ind=0):
        """``OE * out_bits``, ``OE = out_stream_elems`` (PE for POS = 1)."""
        return self.params().out_stream_elems * self.get_output_datatype().bitwidth()

    def make_shape_compatible_op(self, model):
        shape = model.get_tensor_shape(self.onnx_node.input[0])
        p = self.params()
        expect = (*p.ifm_dim, p.ifm_channels)
        if shape is not None and len(shape) == 4 and tuple(shape[1:]) != expect:
            raise ValueError(
                f"{OP_TYPE} input {self.onnx_node.input[0]} has shape {shape}, attributes say (N, {expect})"
            )
        return super().make_shape_compatible_op(model)

    # ---- execution

    def execute_node(self, context, graph):
        """Bit-exact Python model: ``winograd_conv2d`` on int64.  Refuses inputs or
        weights that are not integers within their datatypes, and outputs that a
        float32 carrier or ``outputDataType`` cannot hold."""
        mode = self.get_nodeattr("exec_mode")
        params = self.params()
        if mode == "rtlsim":
            raise NotImplementedError(
                f"{OP_TYPE} node {self.onnx_node.name}: exec_mode='rtlsim' is FINN's XSim simulation (Vivado); "
                "use exec_mode '' or 'python' (bit-exact Python model), or simulate the generated RTL with "
                "Verilator (winoforge.hw.rtl)"
            )
        node = self.onnx_node
        y = winograd_srbs_reference(context[node.input[0]], context[node.input[1]], params)
        big = np.abs(y) >= FLOAT32_EXACT_LIMIT
        if big.any():
            pos = first_index(big)
            raise ValueError(
                f"{OP_TYPE} node {node.name}: output {int(y[pos])} at (n, h, w, c) = {pos} has magnitude "
                f">= 2^24, which a float32 carrier cannot hold exactly"
            )
        odt = params.output_datatype
        lo, hi = dt_range(odt)
        out = (y < lo) | (y > hi)
        if out.any():
            pos = first_index(out)
            raise ValueError(
                f"{OP_TYPE} node {node.name}: output {int(y[pos])} at (n, h, w, c) = {pos} is outside "
                f"outputDataType={odt.name} [{lo}, {hi}]; run minimize_accumulator_width or widen it"
            )
        context[node.output[0]] = y.astype(np.float32)

    # ---- estimates

    def cycle_estimate(self) -> CycleEstimate:
        return self.params().cycles()

    def get_exp_cycles(self):
        return self.params().exp_cycles()

    def multipliers(self) -> int:
        """``POS * PE * SIMD*Keep/SubRow``."""
        return self.params().multipliers

    def ideal_cycles(self, model=None) -> float:
        """``nonzero multiplies / multipliers``, counting the weights' actual non-zeros
        when ``model`` holds them, else the SRBS budget."""
        U = self.weights(model) if model is not None else None
        return self.params().ideal_cycles(None if U is None else int(np.count_nonzero(U)))

    def resource_estimate(self, fpgapart: str = "") -> ResourceEstimate:
        return self.params().estimate_resources(fpgapart)

    def lut_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).lut

    def bram_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).bram18

    def uram_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).uram

    def dsp_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).dsp

    def ff_estimation(self, fpgapart=""):
        """Flip-flops of the RTL (calibrated against Yosys; FINN's layers have no FF estimate)."""
        return self.resource_estimate(fpgapart).ff

    def node_res_estimation(self, fpgapart):
        """FINN's keys plus ``FF``."""
        return {**super().node_res_estimation(fpgapart), "FF": self.ff_estimation(fpgapart)}

    def bram_efficiency_estimation(self, fpgapart):
        return self.resource_estimate(fpgapart).as_finn_dict()["BRAM_efficiency"]

    def get_op_and_param_counts(self):
        return self.params().op_and_param_counts()

    def choose_folding(self, target_cycles: int, fpgapart: str = "") -> tuple[int, int, int]:
        """Set PE, SIMD, POS and ISIMD by :func:`choose_folding`; returns ``(PE, SIMD, POS)``."""
        chosen = choose_folding(self.params(), target_cycles, fpgapart)
        self.set_nodeattr("ISIMD", 0)  # first: the new SIMD need not be a multiple of the old ISIMD
        self.set_nodeattr("PE", chosen.pe)
        self.set_nodeattr("SIMD", chosen.simd)
        self.set_nodeattr("POS", chosen.pos)
        self.set_nodeattr("ISIMD", chosen.isimd)
        return chosen.pe, chosen.simd, chosen.pos




class WinogradSRBS_rtl(WinogradSRBS, RTLBackend):  # noqa: N801 - FINN's naming convention
    """The specialised layer: the RTL of ``hw/rtl/winograd_srbs_layer.sv``
    (:mod:`winoforge.hw.rtl.winograd_layer`).  Executes in Python like
    :class:`WinogradSRBS` (FINN's ``RTLBackend.execute_node`` knows only rtlsim,
    which needs Vivado's XSim; the open flow simulates the HDL with Verilator)."""

    def execute_node(self, context, graph):
        return WinogradSRBS.execute_node(self, context, graph)

    def generate_hdl(self, model, fpgapart, clk):
        """Write into ``code_gen_dir_ipgen``: the weights and ``params.json``
        (:func:`winoforge.hw.srbs_codegen.write_layer_parameters`), the top module
        ``<node name>.sv`` with FINN's ports and padded stream widths (its
        ``$readmemh`` paths absolute, as FINN's IPI flow needs) and the layer's
        SystemVerilog sources; sets ``gen_top_module``."""
        from winoforge.hw.rtl.winograd_layer import layer_parameters, write_hdl

        try:  # refuse what the RTL does not build before anything is written
            layer_parameters(self.params())
        except ValueError as err:
            raise ValueError(f"{OP_TYPE}_rtl node {self.onnx_node.name}: {err}") from err
        write_layer_parameters(self, model, fpgapart, clk)
        code_gen_dir = Path(self.get_nodeattr("code_gen_dir_ipgen")).resolve()
        top = self.get_verilog_top_module_name()
        write_hdl(self.params(), code_gen_dir, top, weight_path=str(code_gen_dir))
        self.set_nodeattr("gen_top_module", top)

    def _top(self) -> str:
        top = self.get_nodeattr("gen_top_module")
        if not top:
            raise ValueError(f"{OP_TYPE}_rtl node {self.onnx_node.name}: no HDL generated yet (run generate_hdl, "
                             "FINN's step_hw_codegen / PrepareIP)")
        return top

    def get_rtl_file_list(self, abspath=False):
        """The layer's sources, the generated top module last."""
        from winoforge.hw.rtl.winograd_layer import LAYER_SOURCES

        folder = (self.get_nodeattr("code_gen_dir_ipgen") + "/") if abspath else ""
        return [folder + name for name in (*LAYER_SOURCES, self._top() + ".sv")]

    def get_all_meminit_filenames(self, abspath=False):
        """The ``$readmemh`` files (values; indices for SRBS layers); none with runtime-writeable
        weights (the RAM has no initial contents: the weights come through ``in1_V``)."""
        if self.params().runtime_weights:
            return []
        folder = (self.get_nodeattr("code_gen_dir_ipgen") + "/") if abspath else ""
        names = weight_files(self._top())
        return [folder + n for n in (names if self.params().index_bits else names[:1])]

    def code_generation_ipi(self):
        """TCL for FINN's IPI stitching, as FINN's RTL layers: add the sources and
        memory files, instantiate the top module as a block-design cell."""
        cmd = [f"add_files -norecurse {f}" for f in self.get_rtl_file_list(abspath=True)]
        cmd += [f"add_files -norecurse {f}" for f in self.get_all_meminit_filenames(abspath=True)]
        cmd.append(f"create_bd_cell -type module -reference {self._top()} {self.onnx_node.name}")
        return cmd


# --------------------------------------------------------------------------- registration


def register() -> None:
    """Register both ops with FINN's registries (idempotent).

    FINN's ``register_custom_op`` puts the class into
    ``finn.custom_op.fpgadataflow.custom_op`` / ``.rtl.custom_op``, the dictionaries
    qonnx's ``getCustomOp`` and FINN's ``SpecializeLayers`` consult;
    ``add_op_to_domain`` also refreshes qonnx's lookup cache.  Called once below,
    when this module is imported.
    """
    _fpgadataflow.register_custom_op(WinogradSRBS)
    _fpgadataflow_rtl.register_custom_op(WinogradSRBS_rtl)
    add_op_to_domain(DOMAIN, WinogradSRBS)
    add_op_to_domain(RTL_DOMAIN, WinogradSRBS_rtl)


register()
