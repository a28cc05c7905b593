"""Checkpoints without pickle: safetensors for tensors, JSON for the rest, sha256 for both.

A checkpoint is a folder ``<run>/checkpoints/step-<N>/`` holding

* ``tensors.safetensors`` -- every tensor of the saved state (model weights,
  optimizer moments, RNG states), under flattened keys;
* ``state.json`` -- the non-tensor structure (optimizer hyper-parameters,
  step counters, config, Python/numpy RNG states) with references to the
  tensor keys;
* ``manifest.json`` -- format version and the sha256 of the two files.

It is written into a temporary folder and renamed into place, so a run killed
while saving never leaves a half-written checkpoint; ``latest`` names the
newest complete one.  :func:`load_checkpoint` verifies both checksums and
refuses a checkpoint that does not match.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from winoforge.runtime.package import sha256_file

__all__ = ["FORMAT_VERSION", "CorruptCheckpointError", "sha256_file", "save_checkpoint", "load_checkpoint",
           "latest_checkpoint", "separate_shared"]

FORMAT_VERSION = 1
_TENSOR = "__tensor__"
_TUPLE = "__tuple__"


class CorruptCheckpointError(ValueError):
    """A checkpoint whose files are missing or do not match their checksums."""


def _split(obj: Any, tensors: dict[str, torch.Tensor], prefix: str) -> Any:
    """Replace tensors in a nested structure by references (tuples are marked to survive JSON)."""
    if isinstance(obj, torch.Tensor):
        key = prefix or "root"
        tensors[key] = obj.detach().cpu().contiguous()
        return {_TENSOR: key}
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"checkpoint keys must be str or int, got {type(k).__name__} at {prefix}")
            # int keys (optimizer state ids) survive JSON as strings: mark them
            jk = f"#int:{k}" if isinstance(k, int) else k
            out[jk] = _split(v, tensors, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, (list, tuple)):
        items = [_split(v, tensors, f"{prefix}.{i}") for i, v in enumerate(obj)]
        return {_TUPLE: items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix or 'root'} in a checkpoint")


def _join(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR}:
            return tensors[obj[_TENSOR]]
        if set(obj) == {_TUPLE}:
            return tuple(_join(v, tensors) for v in obj[_TUPLE])
        return {(int(k[5:]) if k.startswith("#int:") else k): _join(v, tensors) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, tensors) for v in obj]
    return obj


def separate_shared(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``tensors`` with every tensor that shares memory with an earlier one copied into its own:
    safetensors refuses shared tensors, and a model may share a parameter between modules (a
    ResNet student's residual add quantizes both branches with one scale).  Each name keeps its
    value, so loading the file back into a state dict (``load_state_dict``) restores the model;
    the copy costs the shared tensors' size once more."""
    seen: set[int] = set()
    out = {}
    for key, t in tensors.items():
        ptr = t.untyped_storage().data_ptr() if t.numel() else None
        out[key] = t.clone() if ptr in seen else t
        if ptr is not None:
            seen.add(ptr)
    return out


def save_checkpoint(run_dir: str | Path, step: int, state: dict[str, Any], keep_last: int = 3) -> Path:
    """Write ``state`` (nested dicts/lists of tensors and JSON scalars) as checkpoint ``step``."""
    run_dir = Path(run_dir)
    root = run_dir / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    tensors: dict[str, torch.Tensor] = {}
    structure = _split(state, tensors, "")
    save_file(separate_shared(tensors), str(tmp / "tensors.safetensors"))
    (tmp / "state.json").write_text(json.dumps(structure))
    manifest = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "sha256": {name: sha256_file(tmp / name) for name in ("tensors.safetensors", "state.json")},
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    latest_tmp = root / ".latest.tmp"
    latest_tmp.write_text(final.name)
    os.replace(latest_tmp, root / "latest")
    old = sorted(p for p in root.glob("step-*") if p.is_dir())[:-keep_last] if keep_last > 0 else []
    for p in old:
        shutil.rmtree(p, ignore_errors=True)
    return final


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The newest complete checkpoint of a run, or None."""
    root = Path(run_dir) / "checkpoints"
    pointer = root / "latest"
    if not pointer.is_file():
        return None
    path = root / pointer.read_text().strip()
    return path if path.is_dir() else None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load and verify a checkpoint folder; ``CorruptCheckpointError`` if it fails."""
    path = Path(path)
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise CorruptCheckpointError(f"checkpoint {path}: unreadable manifest.json ({err})") from None
    if manifest.get("format_version") != FORMAT_VERSION:
        raise CorruptCheckpointError(
            f"checkpoint {path}: format_version {manifest.get('format_version')!r}; allowed: {FORMAT_VERSION}")
    for name, digest in manifest.get("sha256", {}).items():
        f = path / name
        if not f.is_file():
            raise CorruptCheckpointError(f"checkpoint {path}: {name} is missing")
        if sha256_file(f) != digest:
            raise CorruptCheckpointError(f"checkpoint {path}: {name} does not match its sha256 in manifest.json")
    if set(manifest.get("sha256", {})) != {"tensors.safetensors", "state.json"}:
        raise CorruptCheckpointError(f"checkpoint {path}: manifest.json does not list both files")
    tensors = load_file(str(path / "tensors.safetensors"))
    return _join(json.loads((path / "state.json").read_text()), tensors)
