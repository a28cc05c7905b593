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

__all__ = ["VENDOR_TOOLS", "VivadoMissingError", "missing_tools", "build_bitfile", "main"]

#: what FINN's bitfile flow calls: Vitis HLS for the HLS layers' IP, Vivado for the rest
VENDOR_TOOLS = ("vivado", "vitis_hls")
#: FINN's steps after ours: IP generation, FIFO sizing, stitching, synthesis and bitfile
VENDOR_STEPS = ["step_hw_ipgen", "step_set_fifo_depths", "step_create_stitched_ip", "step_synthesize_bitfile"]


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
                            clock_mhz=pkg.manifest.get("clock_mhz"))
    cfg.generate_outputs = [DataflowOutputType.STITCHED_IP, DataflowOutputType.BITFILE]
    run_build(pkg.path / "model.onnx", cfg, winograd_steps(codegen=True) + VENDOR_STEPS, name=pkg.name)
    bits = sorted((work / "bitfile").glob("*.bit"))
    if not bits or not bits[0].with_suffix(".hwh").is_file():
        raise RuntimeError(f"FINN's bitfile step wrote no .bit/.hwh into {work / 'bitfile'}")
    shutil.copy2(bits[0], pkg.path / "accelerator.bit")
    shutil.copy2(bits[0].with_suffix(".hwh"), pkg.path / "accelerator.hwh")
    info = {k: v for k, v in pkg.manifest.items() if k not in ("files", "format_version")}
    info["bitfile"] = "accelerator.bit"
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
