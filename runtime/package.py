"""Deployment packages (``bitstreams/<name>/``), loaded and verified with the stdlib only.

A package is a folder with ``manifest.json`` (format in ``bitstreams/README.md``);
its ``"files"`` entry maps every other file's path, relative to the folder and
with ``/`` separators, to ``{"sha256": <hex>, "bytes": <size>}``.  Loading checks:

* ``manifest.json`` exists and is a JSON object with ``format_version`` 1 and a
  ``files`` mapping;
* every listed path stays inside the package (no absolute paths, no ``..``);
* every listed file exists, has the listed size and the listed sha256.

Files present but not listed are allowed by default (reported in
:attr:`Package.unlisted`); ``strict=True`` refuses them too.  Every refusal is a
:class:`CorruptPackageError` (a ``ValueError``) naming the package and the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

__all__ = ["PACKAGE_FORMAT", "MANIFEST", "CorruptPackageError", "Package", "load_package", "verify_package",
           "sha256_file", "write_manifest"]

#: The manifest format this runtime reads.
PACKAGE_FORMAT = 1
#: The manifest's file name inside a package.
MANIFEST = "manifest.json"


class CorruptPackageError(ValueError):
    """A deployment package whose files do not match the sha256 in its manifest."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_manifest(package: str | Path, info: dict[str, Any]) -> Path:
    """Write ``<package>/manifest.json``: ``format_version``, ``info``, and ``files`` -- the
    sha256 and size of every other file in the folder (``/``-separated relative paths).
    Returns the manifest's path."""
    package = Path(package)
    files = {}
    for path in sorted(p for p in package.rglob("*") if p.is_file() and p.name != MANIFEST):
        files[path.relative_to(package).as_posix()] = {"sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {"format_version": PACKAGE_FORMAT, **info, "files": files}
    target = package / MANIFEST
    target.write_text(json.dumps(manifest, indent=2, default=str) + "\n")
    return target


@dataclass(frozen=True)
class Package:
    """A verified deployment package."""

    #: the package folder
    path: Path
    #: the parsed ``manifest.json``
    manifest: dict[str, Any]
    #: files in the folder that the manifest does not list (relative, ``/``-separated)
    unlisted: tuple[str, ...] = field(default=())

    def file(self, rel: str) -> Path:
        """Path of the listed file ``rel``; ``KeyError`` naming it if the manifest does not list it."""
        if rel not in self.manifest["files"]:
            raise KeyError(f"{self.path}: {rel} is not listed in {MANIFEST}")
        return self.path / rel

    @property
    def name(self) -> str:
        """The package's name (manifest ``name``, else the folder name)."""
        return str(self.manifest.get("name") or self.path.name)

    @property
    def bitfile(self) -> Path | None:
        """The ``.bit`` file named by manifest ``bitfile`` (``None`` where Vivado built none)."""
        rel = self.manifest.get("bitfile")
        return None if not rel else self.path / rel


def _safe_rel(package: Path, rel: Any) -> PurePosixPath:
    if not isinstance(rel, str) or not rel:
        raise CorruptPackageError(f"{package}: {MANIFEST} lists a file with an invalid name {rel!r}")
    pure = PurePosixPath(rel)
    if pure.is_absolute() or ".." in pure.parts or "\\" in rel or rel != pure.as_posix():
        raise CorruptPackageError(f"{package}: {MANIFEST} lists {rel!r}, which is not a plain path "
                                  "inside the package")
    if rel == MANIFEST:
        raise CorruptPackageError(f"{package}: {MANIFEST} lists itself")
    return pure


def load_package(package: str | Path, strict: bool = False) -> Package:
    """The verified package in folder ``package`` (module docstring for the checks).

    ``strict=True`` also refuses files that the manifest does not list.
    Raises :class:`CorruptPackageError` naming the package, the file, and for a
    mismatch the expected and found sha256 (or size).
    """
    package = Path(package)
    manifest_path = package / MANIFEST
    if not manifest_path.is_file():
        raise CorruptPackageError(f"{package} has no {MANIFEST}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CorruptPackageError(f"{manifest_path} is not valid JSON: {err}") from None
    if not isinstance(manifest, dict):
        raise CorruptPackageError(f"{manifest_path} holds {type(manifest).__name__}, not a JSON object")
    if manifest.get("format_version") != PACKAGE_FORMAT:
        raise CorruptPackageError(f"{manifest_path}: format_version {manifest.get('format_version')!r}; "
                                  f"allowed: {PACKAGE_FORMAT}")
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise CorruptPackageError(f"{manifest_path}: 'files' must map each file to its sha256 and size, "
                                  f"got {type(files).__name__}")
    for rel, entry in files.items():
        _safe_rel(package, rel)
        if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
            raise CorruptPackageError(f"{package}: {rel} has no sha256 in {MANIFEST}")
        path = package / rel
        if not path.is_file():
            raise CorruptPackageError(f"{package}: {rel} is listed in the manifest but missing")
        size = entry.get("bytes")
        found_size = path.stat().st_size
        if size is not None and size != found_size:
            raise CorruptPackageError(f"{package}: {rel} does not match its size in {MANIFEST} "
                                      f"(expected {size} bytes, found {found_size})")
        found = sha256_file(path)
        if found != entry["sha256"].lower():
            raise CorruptPackageError(f"{package}: {rel} does not match its sha256 in {MANIFEST} "
                                      f"(expected {entry['sha256']}, found {found})")
    unlisted = tuple(sorted(p.relative_to(package).as_posix() for p in package.rglob("*")
                            if p.is_file() and p != manifest_path
                            and p.relative_to(package).as_posix() not in files))
    if strict and unlisted:
        raise CorruptPackageError(f"{package}: {len(unlisted)} file(s) not listed in {MANIFEST}: "
                                  + ", ".join(unlisted[:10]) + (" ..." if len(unlisted) > 10 else ""))
    return Package(package, manifest, unlisted)


def verify_package(package: str | Path, strict: bool = False) -> dict[str, Any]:
    """The manifest of ``package`` after :func:`load_package`'s checks (the host flow's
    ``winoforge.hw.flow.verify_package`` contract); raises :class:`CorruptPackageError`."""
    return load_package(package, strict=strict).manifest
