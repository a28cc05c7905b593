"""``make bitfile``: FINN's own stitching, synthesis and bitfile -- only where Vivado exists.

The vendor path of DESIGN.md ("Two hardware paths from one build"): the package's
exported model is built again with our steps plus FINN's IP generation, FIFO sizing,
stitched IP and Zynq bitfile steps; the ``.bit`` and ``.hwh`` go into the package and
its manifest (``bitfile``) is re-written, so the ``pynq`` backend can load it.

Without Vivado and Vitis HLS on PATH this stops *before any work* with a message
naming what is missing and a non-zero exit (``tests/hw/test_rtl_network.py`` checks
that).  The Vivado branch has never run here: no Xilinx tool exists on these machines.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

__all__ = ["VENDOR_TOOLS", "VivadoMissingError", "missing_tools", "build_bitfile", "main", "InsertWeightDMA",
           "step_insert_weight_dmas", "weight_dma_names"]

#: what FINN's bitfile flow calls: Vitis HLS for the HLS layers' IP, Vivado for the rest
VENDOR_TOOLS = ("vivado", "vitis_hls")


class InsertWeightDMA:
    """A qonnx transformation: every ``WinogradSRBS_rtl`` with runtime-writeable weights gets an
    input DMA of its own (FINN's ``IODMA_hls``, ``direction="in"``, ``burstMode="increment"``,
    64-bit AXI-MM and stream) feeding its weight stream ``in1_V``, as FINN's ``InsertIODMA`` gives
    its external-weight MVAUs one (there in ``wrap`` mode, a set per frame; here the host streams
    a set once, batch count 1, and the layer keeps it).  The DMA reads the bytes of the layer's
    ``LOAD_W``-bit words (``numInputVectors = [1, words]``, ``NumChannels = 8`` UINT8, as
    InsertIODMA's byte-wide inputs) from a new graph input ``weights_<node>`` (the host's buffer,
    as FINN's ``ExternalizeParams`` makes of external weights; ZynqBuild's ``InsertIODMA`` then
    leaves it to this DMA); the DMA's output becomes the node's second input, without an
    initializer, so that partitioning makes it the layer partition's input (the layer's RTL
    has no initial weights: ``write_layer_parameters`` and the IPI files leave them out).  The
    graph is not executed in Python after this step.  ZynqBuild's ``Floorplan`` then puts each
    such DMA in a partition of its own, which ``MakeZYNQProject`` names ``idma<k>``
    (:func:`weight_dma_names`).  Applied once (``apply`` returns ``(model, False)``)."""

    def apply(self, model):
        from onnx import TensorProto, helper
        from qonnx.core.datatype import DataType
        from qonnx.custom_op.registry import getCustomOp

        from .rtl.winograd_layer import LOAD_W, weight_stream_length

        for node in list(model.graph.node):
            if not node.op_type.startswith("WinogradSRBS") or model.find_producer(node.input[1]) is not None:
                continue
            inst = getCustomOp(node)
            params = inst.params()
            if not params.runtime_weights:
                continue
            U = inst.weights(model)
            if U is None:
                raise ValueError(f"node {node.name}: runtime-writeable weights need an initializer at input 1")
            words = weight_stream_length(params)
            src = f"weights_{node.name}"  # a graph input: the host's buffer (FINN's ExternalizeParams does the same)
            model.graph.input.append(helper.make_tensor_value_info(src, TensorProto.FLOAT,
                                                                   [1, words, LOAD_W // 8]))
            model.set_tensor_datatype(src, DataType["UINT8"])
            dst = model.make_new_valueinfo_name()
            model.graph.value_info.append(helper.make_tensor_value_info(dst, TensorProto.FLOAT, list(U.shape)))
            model.set_tensor_datatype(dst, model.get_tensor_datatype(node.input[1]))
            dma = helper.make_node("IODMA_hls", [src], [dst], numInputVectors=[1, words], NumChannels=LOAD_W // 8,
                                   dataType="UINT8", intfWidth=LOAD_W, streamWidth=LOAD_W, direction="in",
                                   burstMode="increment", domain="finn.custom_op.fpgadataflow.hls",
                                   backend="fpgadataflow", name=f"IODMA_weights_{node.name}")
            node.input[1] = dst
            model.graph.node.insert(list(model.graph.node).index(node), dma)
        return model, False


def step_insert_weight_dmas(model, cfg):
    """FINN build step: :class:`InsertWeightDMA` (before ``step_synthesize_bitfile``, whose
    ZynqBuild adds the image DMAs and partitions the graph)."""
    model, _ = InsertWeightDMA().apply(model)
    return model


def weight_dma_names(parent) -> list[str]:
    """The cell names ``MakeZYNQProject`` gives the weight DMAs of a partitioned model, in the
    order of the layers they feed (graph order: the manifest's ``runtime_weights`` order).  As
    MakeZYNQProject: in graph order, a partition whose first input has no producer is an input
    DMA, named ``idma0``, ``idma1``...; a weight DMA's partition is one whose output tensor is a
    ``WinogradSRBS`` node's second input inside the partition consuming it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    idma, idx = {}, 0
    for node in parent.graph.node:
        if node.op_type != "StreamingDataflowPartition":
            continue
        if not len(node.input) or parent.find_producer(node.input[0]) is None:
            idma[node.output[0]], idx = f"idma{idx}", idx + 1
    order = []
    for node in parent.graph.node:
        if node.op_type != "StreamingDataflowPartition" or node.output[0] in idma:
            continue
        sub = ModelWrapper(getCustomOp(node).get_nodeattr("model"))
        # the partition's inputs are its model's graph inputs, in the same order
        outer = {inner.name: t for inner, t in zip(sub.graph.input, node.input)}
        for n in sub.graph.node:
            if n.op_type.startswith("WinogradSRBS") and len(n.input) > 1 and outer.get(n.input[1]) in idma:
                order.append(idma[outer[n.input[1]]])
    return order


#: FINN's steps after ours: IP generation, FIFO sizing, stitching, the weight DMAs, synthesis and bitfile
VENDOR_STEPS = ["step_hw_ipgen", "step_set_fifo_depths", "step_create_stitched_ip", step_insert_weight_dmas,
                "step_synthesize_bitfile"]


class VivadoMissingError(RuntimeError):
    """Vivado / Vitis HLS are not on PATH."""


def missing_tools() -> list[str]:
    return [tool for tool in VENDOR_TOOLS if shutil.which(tool) is None]


def check_tools() -> None:
    missing = missing_tools()
    if missing:
        raise VivadoMissingError(
            f"FINN's bitfile flow needs Xilinx Vivado and Vitis HLS on PATH; missing: {', '.join(missing)}. Source the "
            "Vivado settings script (settings64.sh) where Vivado is installed and run it there; on this machine "
            "use `make sim` (Verilator) and `make synth` (Yosys) for the open flow")


def build_bitfile(package: str | Path, work_root: str | Path = "build/bitfile") -> Path:
    """Build the bitfile of ``package`` with FINN (needs Vivado); returns the ``.bit``'s path."""
    check_tools()  # before any work
    from winoforge.runtime.package import load_package, write_manifest

    from .build import make_build_config, run_build, winograd_steps

    pkg = load_package(package)
    if pkg.manifest.get("flow") != "winograd-srbs":
        raise ValueError(f"{pkg.path}: flow {pkg.manifest.get('flow')!r}; make bitfile builds winograd-srbs packages")
    from finn.builder.build_dataflow_config import DataflowOutputType

    work = Path(work_root) / pkg.name
    board = pkg.manifest["board"].lower()
    cfg = make_build_config(work, board, target_fps=pkg.manifest.get("estimated_fps"),
                            clock_mhz=pkg.manifest.get("clock_mhz"), mvau_wwidth_max=pkg.manifest.get("mvau_wwidth_max"))
    cfg.generate_outputs = [DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE]
    entries = pkg.manifest.get("runtime_weights") or []
    # --runtime-weights: every Winograd layer; else only those the build moved to URAM (the steps move them again)
    steps = winograd_steps(codegen=True, runtime_weights=pkg.manifest.get("all_runtime_weights", bool(entries)))
    steps += VENDOR_STEPS
    result = run_build(pkg.path / "model.onnx", cfg, steps, name=pkg.name)
    bits = sorted((work / "bitfile").glob("*.bit"))
    if not bits or not bits[0].with_suffix(".hwh").is_file():
        raise RuntimeError(f"FINN's bitfile step wrote no .bit/.hwh into {work / 'bitfile'}")
    shutil.copy2(bits[0], pkg.path / "accelerator.bit")
    shutil.copy2(bits[0].with_suffix(".hwh"), pkg.path / "accelerator.hwh")
    info = {k: v for k, v in pkg.manifest.items() if k not in ("files", "format_version")}
    info["bitfile"] = "accelerator.bit"
    if entries:  # the weight DMAs as the block design names them
        names = weight_dma_names(result.model)
        if len(names) != len(entries):
            raise RuntimeError(f"the bitfile's design has {len(names)} weight DMAs ({', '.join(names)}); the package "
                               f"lists {len(entries)} layers with runtime-writeable weights")
        info["runtime_weights"] = [{**e, "dma": name} for e, name in zip(entries, names)]
    write_manifest(pkg.path, info)
    return pkg.path / "accelerator.bit"


def main(argv: list[str] | None = None) -> int:
    """``python -m winoforge.hw.bitfile PACKAGE`` (``make bitfile``)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m winoforge.hw.bitfile PACKAGE", file=sys.stderr)
        return 2
    try:
        bit = build_bitfile(args[0])
    except VivadoMissingError as err:
        print(f"make bitfile: {err}", file=sys.stderr)
        return 2
    print(json.dumps({"bitfile": str(bit)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
