"""Trained models shipped with the project, by name (in the style of torchvision's weight enums).

``models/`` at the repository root holds, per model, ``<name>.safetensors`` (the weights) and
``<name>.json`` (its model card: what it is, the config and data it was trained with, epochs,
test accuracy, the weights' sha256, the command that reproduces it, the git commit it was
trained at, where and how long it trained, and the run's own ``model.json``).

* :class:`Pretrained` -- the names the project ships (``fmnist-vgg-teacher``,
  ``fmnist-vgg-pynqz2-srbs75``) with the config and command that train each.
* :func:`resolve` -- a name to a *run-like folder* (``model.safetensors`` + ``model.json``, as a
  finished ``winoforge train-teacher``/``distill`` run), after checking the weights' sha256: a
  changed file is refused, named.  Everything that takes a run folder takes it: ``winoforge
  export --pretrained NAME``, ``teachers = ["pretrained:NAME"]`` in a distill config.
* :func:`load_pretrained` -- the model itself, ``(model, card)``.
* :func:`add_model` -- import a finished run folder into ``models/`` with its card
  (``winoforge models add RUN --name NAME --command ... --trained-on ...``);
  :func:`list_models` (``winoforge models list``).

The folder is ``models/`` beside the package sources; a ``root`` argument (every function) or
the ``WINOFORGE_MODELS`` environment variable, read only in :func:`models_dir`, points elsewhere
(tests register their own small models in a temporary folder).

Numpy-free and torch-free except :func:`load_pretrained`: ``winoforge models list`` needs neither.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from winoforge.runtime.package import sha256_file

__all__ = ["CARD_FORMAT", "PREFIX", "ModelInfo", "Pretrained", "models_dir", "allowed_names", "card_path",
           "read_card", "verify", "describe", "resolve", "resolve_run", "load_pretrained", "add_model", "list_models"]

#: Version of the model-card format written by :func:`add_model`.
CARD_FORMAT = 1
#: How a config names a registry model where it takes a run folder: ``"pretrained:fmnist-vgg-teacher"``.
PREFIX = "pretrained:"
#: Environment variable that points the registry at another models folder (see :func:`models_dir`).
ENV_VAR = "WINOFORGE_MODELS"

_REPO = Path(__file__).resolve().parent.parent
_NAME = re.compile(r"[a-z0-9][a-z0-9._-]*")


@dataclass(frozen=True)
class ModelInfo:
    """What a shipped name stands for (the card in ``models/`` holds what was measured)."""

    name: str
    kind: str  # "teacher" | "student"
    config: str  # the TOML config that trains it, relative to the repository
    description: str
    command: str  # how to reproduce it from scratch
    target_accuracy: float  # the project's target (issue 14), torch, all 10,000 test images


class Pretrained(Enum):
    """The models the project ships; ``Pretrained("fmnist-vgg-teacher")`` or ``Pretrained.from_name``."""

    FMNIST_VGG_TEACHER = ModelInfo(
        "fmnist-vgg-teacher", "teacher", "configs/fmnist_teacher_vgg.toml",
        "FP32 VGG teacher for Fashion-MNIST (the teacher of the distilled students)",
        "winoforge train-teacher --config configs/fmnist_teacher_vgg.toml", 0.940)
    FMNIST_VGG_PYNQZ2_SRBS75 = ModelInfo(
        "fmnist-vgg-pynqz2-srbs75", "student", "configs/fmnist_distill_w4a4_srbs25_pynqz2.toml",
        "W4A4 Winograd F(2,3) VGG 32,32,M,64,64,M,128,128,M, SRBS 2/8 (75% sparse), power-of-two "
        "scales, distilled from fmnist-vgg-teacher: the PYNQ-Z2 student of the demo and the notebook",
        "winoforge distill --config configs/fmnist_distill_w4a4_srbs25_pynqz2.toml "
        "--set 'teachers=[\"pretrained:fmnist-vgg-teacher\"]'", 0.925)
    FMNIST_RESNET8_PYNQZ2_SRBS75 = ModelInfo(
        "fmnist-resnet8-pynqz2-srbs75", "student", "configs/fmnist_distill_w4a4_srbs25_resnet.toml",
        "W4A4 ResNet-8 (basic blocks, widths 16/32/64, 1x1 projection shortcuts), every 3x3 convolution "
        "Winograd F(2,3) with SRBS 2/8 (75% sparse), power-of-two scales, distilled from "
        "fmnist-vgg-teacher: the residual PYNQ-Z2 student",
        "winoforge distill --config configs/fmnist_distill_w4a4_srbs25_resnet.toml "
        "--set 'teachers=[\"pretrained:fmnist-vgg-teacher\"]'", 0.91)

    def __new__(cls, info: ModelInfo):
        obj = object.__new__(cls)
        obj._value_ = info.name
        obj.info = info
        return obj

    @classmethod
    def from_name(cls, name: str) -> "Pretrained":
        try:
            return cls(name)
        except ValueError:
            raise ValueError(f"pretrained model {name!r} is not a shipped model; allowed: "
                             f"{', '.join(m.value for m in cls)}") from None


def models_dir(root: str | os.PathLike | None = None) -> Path:
    """The models folder: ``root`` if given, else ``$WINOFORGE_MODELS``, else ``models/`` of the repository."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else _REPO / "models"


def card_path(name: str, root: str | os.PathLike | None = None) -> Path:
    return models_dir(root) / f"{name}.json"


def allowed_names(root: str | os.PathLike | None = None) -> list[str]:
    """The shipped names plus any model imported into the folder (``winoforge models add``)."""
    folder = models_dir(root)
    local = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
    return list(dict.fromkeys([m.value for m in Pretrained] + local))


def _check_name(name: str, root) -> None:
    allowed = allowed_names(root)
    if name not in allowed:
        raise ValueError(f"pretrained model {name!r} is unknown; allowed: {', '.join(allowed)}")


def read_card(name: str, root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The model card of ``name``; refuses unknown names (naming the allowed ones) and shipped
    names whose files are not in the folder (naming the missing file and how to get it)."""
    _check_name(name, root)
    path = card_path(name, root)
    if not path.is_file():
        how = ""
        if name in {m.value for m in Pretrained}:
            info = Pretrained(name).info
            how = (f"; train it (`{info.command}`) and import the finished run with `winoforge models add RUN "
                   f"--name {name} --command ... --trained-on ...`")
        raise FileNotFoundError(f"pretrained model {name!r} is not in {models_dir(root)} (no {path.name}){how}")
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not a model card (not JSON: {err})") from None
    for key in ("name", "kind", "weights", "sha256", "model"):
        if key not in card:
            raise ValueError(f"{path}: not a model card (no {key!r})")
    return card


def verify(name: str, root: str | os.PathLike | None = None) -> tuple[Path, dict[str, Any]]:
    """``(weights file, card)`` after checking the weights against the card's sha256."""
    card = read_card(name, root)
    weights = models_dir(root) / card["weights"]
    if Path(card["weights"]).name != card["weights"]:
        raise ValueError(f"{card_path(name, root)}: weights={card['weights']!r} must be a file name in the models folder")
    if not weights.is_file():
        raise FileNotFoundError(f"pretrained model {name!r}: its weights file {weights} is missing")
    if sha256_file(weights) != card["sha256"]:
        raise ValueError(f"{weights} does not match its sha256 in {card_path(name, root).name}: refusing a changed "
                         f"weights file (pretrained model {name!r})")
    return weights, card


def resolve(name: str, root: str | os.PathLike | None = None) -> Path:
    """A run-like folder of ``name`` (``model.safetensors`` + ``model.json`` + ``card.json``) under
    ``<models>/.runs/<name>/``, after :func:`verify`.  The loaders check the sha256 again when they
    read it (``model.json`` carries the card's digest), so a file changed later is refused too."""
    weights, card = verify(name, root)
    run = models_dir(root) / ".runs" / name
    run.mkdir(parents=True, exist_ok=True)
    link = run / "model.safetensors"
    tmp = run / f"model.safetensors.{os.getpid()}.tmp"  # per process: two resolving at once do not collide
    tmp.unlink(missing_ok=True)
    try:
        tmp.symlink_to(weights.resolve())
    except OSError:  # no symlinks (some file systems): a copy, checked again by the loaders
        shutil.copyfile(weights, tmp)
    os.replace(tmp, link)
    for fname, data in (("model.json", {**card["model"], "sha256": card["sha256"]}), ("card.json", card)):
        part = run / f"{fname}.{os.getpid()}.tmp"
        part.write_text(json.dumps(data, indent=2) + "\n")
        os.replace(part, run / fname)
    return run


def resolve_run(spec: str | os.PathLike, root: str | os.PathLike | None = None) -> Path:
    """A run folder as configs name it: ``"pretrained:NAME"`` through :func:`resolve`, else the path."""
    text = str(spec)
    return resolve(text[len(PREFIX):], root) if text.startswith(PREFIX) else Path(spec)


def load_pretrained(name: str, device: str = "cpu", root: str | os.PathLike | None = None):
    """``(model, card)`` of a registry model, in eval mode (needs torch/Brevitas)."""
    from .recipes import load_student, load_teacher

    run = resolve(name, root)
    card = json.loads((run / "card.json").read_text())
    if card["kind"] == "teacher":
        return load_teacher(run, device), card
    return load_student(run, device)[0], card


# ------------------------------------------------------------------ importing runs


def _git_head() -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        out = subprocess.run([git, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, cwd=_REPO)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: {what} is not JSON ({err})") from None


def _training_seconds(run: Path) -> float | None:
    """The run's training time: the wall time the benchmark recorded, else the sum of its epochs."""
    wall = run / "bench_wall.json"
    if wall.is_file():
        data = _read_json(wall, "bench_wall.json")
        for key in ("wall_s", "seconds"):
            if isinstance(data, dict) and isinstance(data.get(key), (int, float)):
                return float(data[key])
    metrics = run / "metrics.jsonl"
    if not metrics.is_file():
        return None
    lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return float(sum(r.get("seconds", 0.0) for r in lines)) if lines else None


def add_model(run_dir: str | os.PathLike, name: str, command: str, trained_on: str, commit: str | None = None,
              root: str | os.PathLike | None = None, notes: str | None = None) -> dict[str, Any]:
    """Import the finished run ``run_dir`` into the models folder as ``<name>.safetensors`` and
    ``<name>.json`` (its card); returns the card.  The run's weights must match the sha256 in its
    ``model.json``.  ``commit``: the git commit it was trained at (a run folder does not record
    it); without it the card records the current HEAD as the import commit and says so.  A shipped
    name must receive a model of its kind, and is checked against its target accuracy (recorded,
    not refused: a model short of its target ships with the shortfall in its card)."""
    run = Path(run_dir)
    if not _NAME.fullmatch(name):
        raise ValueError(f"name={name!r} is not allowed; allowed: lower-case letters, digits, '.', '_' and '-', "
                         "starting with a letter or digit (e.g. fmnist-vgg-teacher)")
    if not command.strip():
        raise ValueError("command is empty; allowed: the command line that reproduces the run")
    if not trained_on.strip():
        raise ValueError("trained_on is empty; allowed: where and on what it trained, e.g. '1x H200, 2 h'")
    info_path, weights = run / "model.json", run / "model.safetensors"
    if not info_path.is_file() or not weights.is_file():
        raise ValueError(f"{run} holds no finished run (needs model.json and model.safetensors)")
    info = _read_json(info_path, "model.json")
    if not isinstance(info, dict) or "sha256" not in info:
        raise ValueError(f"{info_path}: not a run's model.json (no sha256)")
    digest = sha256_file(weights)
    if digest != info["sha256"]:
        raise ValueError(f"{weights} does not match its sha256 in model.json: refusing a corrupt run")
    kind = "student" if info.get("kind") == "student" else "teacher"
    shipped = {m.value: m.info for m in Pretrained}
    if name in shipped and shipped[name].kind != kind:
        raise ValueError(f"name={name!r} is the shipped {shipped[name].kind}; {run} holds a {kind}")
    config = _read_json(run / "config.json", "config.json") if (run / "config.json").is_file() else None
    test = info.get("test", {}) if isinstance(info.get("test"), dict) else {}
    acc = test.get("acc")
    seconds = _training_seconds(run)
    head = _git_head()
    card: dict[str, Any] = {
        "format": CARD_FORMAT, "name": name, "kind": kind,
        "description": describe(info),
        "weights": f"{name}.safetensors", "sha256": digest, "size": weights.stat().st_size,
        "test_accuracy": acc, "test_images": _test_images(config),
        "target_accuracy": shipped[name].target_accuracy if name in shipped else None,
        "epochs": info.get("epochs"), "dataset": info.get("dataset"),
        "data": (config or {}).get("data"), "config": config,
        "config_file": shipped[name].config if name in shipped else None,
        "command": command, "git_commit": commit or head,
        "git_commit_source": "given when imported" if commit else "HEAD when imported (the run records no commit)",
        "trained_on": trained_on, "training_seconds": seconds,
        "imported": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), "imported_at_commit": head,
        "notes": notes, "model": {k: v for k, v in info.items() if k != "sha256"},
    }
    if acc is not None and card["target_accuracy"] is not None:
        card["target_met"] = bool(acc >= card["target_accuracy"])
    folder = models_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(weights, folder / card["weights"])
    if sha256_file(folder / card["weights"]) != digest:
        raise OSError(f"{folder / card['weights']}: the copy differs from {weights}")
    (folder / f"{name}.json").write_text(json.dumps(card, indent=2) + "\n")
    return card


def describe(info: dict[str, Any]) -> str:
    """What a run's ``model.json`` holds, in one line (from the run itself, not from its name)."""
    epochs = f"{info.get('epochs')} epochs on {info.get('dataset')}"
    if info.get("kind") != "student":
        options = info.get("arch_options") or {}
        return f"FP32 {info.get('arch')} teacher{' ' + json.dumps(options) if options else ''}, {epochs}"
    st = info.get("student", {})
    if st.get("arch") == "resnet":  # a ResNet's shape is its depth and base width (its `widths` is unused)
        widths = f"depth {st.get('depth')} width {st.get('width')}"
    else:
        widths = ",".join(str(w) for w in st.get("widths", []))
    bits = "FP32" if st.get("precision") == "fp32" else f"W{st.get('w_bits')}A{st.get('a_bits')}"
    density = info.get("density")
    srbs = f", SRBS density {density:g} (sub_row {st.get('sub_row')})" if density is not None and density < 1 else ""
    return (f"{bits} Winograd F({st.get('m')},3) {st.get('arch')} {widths}{srbs}, {st.get('weight_quant')} scales, "
            f"{'KD' if info.get('kd') else 'no teacher'}, {epochs}")


def _test_images(config: dict | None) -> int | None:
    data = (config or {}).get("data") or {}
    if data.get("name") == "fashion-mnist":
        return data.get("test_subset") or 10000
    return data.get("test_subset")


def list_models(root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per allowed name: name, kind, present (files in the folder), test accuracy, sha256 ok."""
    rows = []
    for name in allowed_names(root):
        row: dict[str, Any] = {"name": name, "present": card_path(name, root).is_file()}
        if name in {m.value for m in Pretrained}:
            row.update(kind=Pretrained(name).info.kind, description=Pretrained(name).info.description)
        if row["present"]:
            try:
                _, card = verify(name, root)
                row.update(kind=card["kind"], test_accuracy=card.get("test_accuracy"), epochs=card.get("epochs"),
                           sha256_ok=True, trained_on=card.get("trained_on"))
            except (ValueError, OSError) as err:
                row.update(sha256_ok=False, error=" ".join(str(err).split()))
        rows.append(row)
    return rows
