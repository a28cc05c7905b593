"""Typed configuration: dataclasses filled from TOML plus ``key.sub=value`` overrides.

Every field is type-checked where the config is made; an unknown key or a
value of the wrong type raises ``ValueError`` naming the dotted field and what
is allowed.  Ranges are checked by each dataclass's ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

__all__ = ["from_dict", "to_dict", "load_config", "parse_override", "apply_overrides"]

T = TypeVar("T")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(path: str, tp, value):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(path, arg, value)
            except ValueError as err:
                errors.append(str(err))
        raise ValueError(f"{path}: {value!r} matches none of {_type_name(tp)}")
    if origin is typing.Literal:
        if value not in args:
            raise ValueError(f"{path}={value!r} is not allowed; allowed: {', '.join(map(repr, args))}")
        return value
    if dataclasses.is_dataclass(tp):
        if dataclasses.is_dataclass(value) and isinstance(value, tp):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{path} must be a table of {tp.__name__} fields, got {value!r}")
        return from_dict(tp, value, prefix=path)
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{path} must be a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ValueError(f"{path} must have {len(args)} items, got {len(value)}")
            return tuple(_convert(f"{path}[{i}]", a, v) for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        items = [_convert(f"{path}[{i}]", item, v) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ValueError(f"{path} must be a table, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_convert(f"{path}", kt, k): _convert(f"{path}.{k}", vt, v) for k, v in value.items()}
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{path} must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{path} must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"{path} must be a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ValueError(f"{path} must be a string, got {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, (str, Path)):
            raise ValueError(f"{path} must be a path string, got {value!r}")
        return Path(value)
    raise ValueError(f"{path}: unsupported field type {_type_name(tp)}")  # pragma: no cover


def from_dict(cls: type[T], data: Mapping[str, Any], prefix: str = "") -> T:
    """Build dataclass ``cls`` from a mapping, checking names and types."""
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        where = f"{prefix}." if prefix else ""
        raise ValueError(f"unknown config key {where}{unknown[0]}; allowed: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in data.items():
        path = f"{prefix}.{name}" if prefix else name
        kwargs[name] = _convert(path, hints[name], value)
    try:
        return cls(**kwargs)
    except TypeError as err:  # a required field is missing
        raise ValueError(f"{prefix or cls.__name__}: {err}") from None


def to_dict(obj) -> dict[str, Any]:
    """A dataclass as plain TOML/JSON-friendly data (paths as strings, tuples as lists)."""

    def plain(v):
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {str(k): plain(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return plain(obj)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"student.w_bits=4"`` -> (["student", "w_bits"], 4): the value is read as a TOML value,
    falling back to a bare string."""
    if "=" not in text:
        raise ValueError(f"override {text!r} must look like section.key=value")
    key, raw = text.split("=", 1)
    keys = [k.strip() for k in key.split(".")]
    if not all(keys):
        raise ValueError(f"override {text!r} has an empty key")
    try:
        value = tomllib.loads(f"v = {raw.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return keys, value


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy); types are checked later by :func:`from_dict`."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        keys, value = parse_override(text)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ValueError(f"override {text!r}: {k} is not a table")
        node[keys[-1]] = value
    return data


def load_config(cls: type[T], path: str | Path | None = None, overrides: Sequence[str] = ()) -> T:
    """Read TOML ``path`` (optional), apply overrides, build and validate ``cls``."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as err:
            raise ValueError(f"config file {path} is not valid TOML: {err}") from None
    return from_dict(cls, apply_overrides(data, overrides))
