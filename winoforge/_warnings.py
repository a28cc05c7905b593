"""Third-party warnings kept off the console: what ``winoforge`` prints is the project's own.

One place for every filter.  Each known warning is matched narrowly (category, the
start of its message, the module that raises it) and says why it is harmless here;
any *other* third-party warning is not hidden but written to a log file
(:data:`LOG_PATH`, relative to the working directory), and the CLI says at exit how
many went there.  Warnings raised by winoforge's own modules stay on the console.
"""

from __future__ import annotations

import atexit
import logging
import re
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

__all__ = ["KnownWarning", "KNOWN_WARNINGS", "KNOWN_LOG_RECORDS", "LOG_PATH", "quiet_third_party", "logged_count"]


@dataclass(frozen=True)
class KnownWarning:
    """A third-party message known to be harmless for winoforge, and why."""

    source: str  # the module that raises it (warnings) or the logger that emits it (logging)
    message: str  # regular expression matched at the start of the message
    why: str
    category: type[Warning] = UserWarning


#: ``warnings.warn`` messages filtered out.
KNOWN_WARNINGS: tuple[KnownWarning, ...] = (
    KnownWarning("torch._tensor", r"Named tensors and all their associated APIs are an experimental feature",
                 "Brevitas 0.13 names tensor dimensions with Tensor.rename (why torch stays < 2.13); the "
                 "named dimensions never leave Brevitas's quantizers"),
    KnownWarning("brevitas.graph.equalize", r"fast_hadamard_transform package not found",
                 "an optional CUDA kernel for Brevitas's Hadamard rotations, which winoforge does not use"),
    # qonnx inside FINN's steps: every build step's model is executed on golden images and must equal
    # the previous level exactly (hw.build), so a transformation that went wrong fails the build
    KnownWarning("qonnx.transformation.gemm_to_matmul", r"The GemmToMatMul transformation only offers explicit "
                 r"support for version 9", "the classifier's Gemm (opset 20) converts correctly; verified per step"),
    KnownWarning("qonnx.transformation.infer_data_layouts", r"Assuming 4D input is NCHW",
                 "winoforge exports NCHW models (torch's layout); verified per step"),
)

#: ``logging`` records filtered out (logger name, message).
KNOWN_LOG_RECORDS: tuple[KnownWarning, ...] = (
    KnownWarning("torch.utils.cpp_extension", r"No CUDA runtime is found, using CUDA_HOME",
                 "torch probes for a CUDA toolkit to compile C++ extensions on import; winoforge compiles "
                 "none, and --set device=cuda checks for a GPU itself"),
)

#: Where other third-party warnings go (relative to the working directory).
LOG_PATH = Path("build") / "logs" / "warnings.log"

_state: dict[str, object] = {"installed": False, "count": 0}


class _DropKnownRecords(logging.Filter):
    def __init__(self, patterns: list[re.Pattern[str]]) -> None:
        super().__init__()
        self.patterns = patterns

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(p.match(message) for p in self.patterns)


def _own_roots() -> tuple[Path, ...]:
    """The folders of winoforge's own modules (the package maps several top-level folders)."""
    import winoforge

    root = Path(winoforge.__file__).resolve().parent.parent
    return tuple(root / name for name in ("winoforge", "winograd", "model", "hw", "runtime", "benchmarks"))


def _is_own(filename: str, roots: tuple[Path, ...]) -> bool:
    try:
        path = Path(filename).resolve()
    except (OSError, ValueError):
        return False
    return any(path.is_relative_to(r) for r in roots)


def logged_count() -> int:
    """How many third-party warnings went to :data:`LOG_PATH` in this process."""
    return int(_state["count"])  # type: ignore[call-overload]


def quiet_third_party(log_path: Path | None = None, announce: bool = True) -> None:
    """Install the filters (idempotent).  ``announce``: at exit, say on stderr how many
    warnings went to the log file."""
    for known in KNOWN_WARNINGS:
        warnings.filterwarnings("ignore", message=known.message, category=known.category,
                                module=re.escape(known.source))
    if not _state["installed"]:
        _state["installed"] = True
        by_logger: dict[str, list[re.Pattern[str]]] = {}
        for known in KNOWN_LOG_RECORDS:
            by_logger.setdefault(known.source, []).append(re.compile(known.message))
        for name, patterns in by_logger.items():
            logging.getLogger(name).addFilter(_DropKnownRecords(patterns))
        if announce:
            atexit.register(_announce, Path(log_path or LOG_PATH))
    if getattr(warnings.showwarning, "_winoforge", False):
        return
    path = Path(log_path or LOG_PATH)
    roots = _own_roots()
    console = warnings.showwarning  # whatever shows warnings now (Python's, or pytest's recorder)

    def showwarning(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001 -- warnings' signature
        if file is not None or _is_own(filename, roots):
            return console(message, category, filename, lineno, file, line)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as log:
                log.write(warnings.formatwarning(message, category, filename, lineno, line))
        except OSError:  # no writable log: the console is better than losing it
            return console(message, category, filename, lineno, file, line)
        _state["count"] = logged_count() + 1

    showwarning._winoforge = True  # type: ignore[attr-defined]
    warnings.showwarning = showwarning


def _announce(path: Path) -> None:
    if logged_count():
        print(f"winoforge: {logged_count()} third-party warning(s) written to {path}", file=sys.stderr)
