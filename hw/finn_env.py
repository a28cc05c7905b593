"""The shims that let finn-plus's Python builder run without Xilinx tools.

``notes/finn-without-vivado.md`` (shared) records each one as measured, with
finn-plus 1.6.1; each was removed in turn to confirm it is needed:

* ``FINN_BUILD_DIR`` must name an existing folder, or FINN's settings loader
  and ``step_create_dataflow_partition`` fail;
* ``XILINX_VIVADO`` must be set, or ``exit_buildflow`` raises after the last
  step (the folder need not exist);
* ``finn.xsi.SimEngine`` must exist before ``finn.builder`` is imported, or
  the import fails with "XSI not available" (XSI is Vivado's simulator API);
* ``FINN_SETTINGS`` pointing at a missing file keeps FINN from creating
  ``~/.finn/``.

None of them hides a real installation: where ``XILINX_VIVADO`` already names
an existing folder, or ``vivado`` is on ``PATH``, or ``finn.xsi`` imports, that
part is left alone.  :func:`vivado_available` tells the rest of the flow
(and the make targets) whether synthesis and bitfiles can run here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

__all__ = ["FAKE_VIVADO", "ensure_finn", "vivado_available", "shims_active"]

#: What ``XILINX_VIVADO`` is set to when no Vivado exists (it shows up in FINN's
#: ``report/metadata_builder.json`` as a tool version; our provenance records the truth).
FAKE_VIVADO = "/nonexistent/winoforge-no-vivado/Vivado/2024.2"

_active: dict[str, str] = {}


def vivado_available() -> bool:
    """True where a real Vivado is installed (``XILINX_VIVADO`` names a folder, or ``vivado`` on PATH)."""
    env = os.environ.get("XILINX_VIVADO", "")
    return (bool(env) and env != FAKE_VIVADO and Path(env).is_dir()) or shutil.which("vivado") is not None


def shims_active() -> dict[str, str]:
    """The shims :func:`ensure_finn` installed in this process (name -> what it set)."""
    return dict(_active)


def ensure_finn(build_dir: str | os.PathLike | None = None) -> None:
    """Prepare this process for ``import finn.builder``; call it before importing FINN.

    ``build_dir``: FINN's scratch folder (``FINN_BUILD_DIR``); created if missing.  An
    existing ``FINN_BUILD_DIR`` is kept when ``build_dir`` is None.
    """
    if build_dir is not None:
        path = Path(build_dir).resolve()
        path.mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(path)
    elif not os.environ.get("FINN_BUILD_DIR"):
        path = Path(os.environ.get("TMPDIR", "/tmp")) / f"winoforge-finn-{os.getuid()}"
        path.mkdir(parents=True, exist_ok=True)
        os.environ["FINN_BUILD_DIR"] = str(path)
        _active["FINN_BUILD_DIR"] = str(path)
    else:
        Path(os.environ["FINN_BUILD_DIR"]).mkdir(parents=True, exist_ok=True)
    if not vivado_available() and not os.environ.get("XILINX_VIVADO"):
        os.environ["XILINX_VIVADO"] = FAKE_VIVADO
        _active["XILINX_VIVADO"] = FAKE_VIVADO
    if not os.environ.get("FINN_SETTINGS"):
        missing = str(Path(os.environ["FINN_BUILD_DIR"]) / "no-finn-settings.toml")
        os.environ["FINN_SETTINGS"] = missing
        _active["FINN_SETTINGS"] = missing
    import finn.xsi

    # finn.xsi's module __getattr__ tries to build XSI (needs Vivado) and raises on any
    # attribute it lacks, so look into the module dict instead of hasattr().
    if "SimEngine" not in vars(finn.xsi) and not vivado_available():
        finn.xsi.SimEngine = object  # type: ignore[attr-defined]  # XSI needs Vivado; never used here
        _active["finn.xsi.SimEngine"] = "object"
