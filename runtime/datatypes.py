"""FINN datatype names, parsed without qonnx.

FINN (qonnx ``DataType``) names the element type of every tensor the accelerator
exchanges with the host.  Its driver writes them into ``io_shape_dict`` in the
form ``"DataType['UINT8']"``; manifests and ONNX annotations hold the bare name
``"UINT8"``.  Both forms (and ``DataType["UINT8"]`` / ``DataType.UINT8``) parse to
the same :class:`DataType`.

Supported names (the ones a FINN dataflow accelerator puts on its DMA ports):

===============  ========  ======  ====================  =========
name             bitwidth  signed  values                integer
===============  ========  ======  ====================  =========
``UINTn``        n (1-64)  no      0 .. 2**n - 1         yes  (``UINT1`` is ``BINARY``)
``INTn``         n (1-64)  yes     -2**(n-1) .. 2**(n-1)-1  yes
``BINARY``       1         no      {0, 1}                yes
``BIPOLAR``      1         yes     {-1, +1} (encoded 0/1)  yes
``TERNARY``      2         yes     {-1, 0, +1}           yes
``FLOAT16``      16        yes     IEEE 754 half         no
``FLOAT32``      32        yes     IEEE 754 single       no
===============  ========  ======  ====================  =========

``min``/``max``/``bitwidth``/``signed``/``is_integer`` agree with qonnx's
``DataType`` for every name above (checked against qonnx in the host tests).
FINN's fixed-point (``FIXED<w,i>``) and arbitrary-precision float types do not
appear on the DMA ports of the flows here and are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DataType", "parse_datatype", "ALLOWED_FORMS"]

#: What :func:`parse_datatype` accepts, for error messages.
ALLOWED_FORMS = ("UINTn / INTn (n = 1..64), BINARY, BIPOLAR, TERNARY, FLOAT16, FLOAT32; "
                 "bare ('UINT8') or as FINN's driver writes it (\"DataType['UINT8']\")")

_WRAPPED = re.compile(r"""^DataType\s*(?:\[\s*(['"])(?P<a>[A-Za-z0-9_]+)\1\s*\]|\.(?P<b>[A-Za-z0-9_]+))$""")
_INT = re.compile(r"^(?P<u>U?)INT(?P<bits>[0-9]+)$")


@dataclass(frozen=True)
class DataType:
    """One FINN element type.  Build it with :func:`parse_datatype`."""

    #: canonical FINN name, e.g. ``"UINT8"``
    name: str
    #: bits per element in the packed stream
    bitwidth: int
    #: whether negative values exist
    signed: bool
    #: smallest / largest value (``float`` for the float types, ``int`` otherwise)
    min: int | float
    max: int | float
    #: integer types: every value is an integer in ``[min, max]``
    is_integer: bool

    @property
    def numpy_dtype(self) -> np.dtype:
        """The smallest numpy dtype that holds every value exactly (as qonnx's ``to_numpy_dt``)."""
        if not self.is_integer:
            return np.dtype(f"float{self.bitwidth}")
        for bits in (8, 16, 32, 64):
            if self.bitwidth <= bits:
                return np.dtype(f"{'int' if self.signed else 'uint'}{bits}")
        raise AssertionError(self.name)  # unreachable: bitwidth <= 64 by construction

    def allowed_values(self) -> str:
        """The allowed values in words, for error messages."""
        if self.name == "BIPOLAR":
            return "{-1, +1}"
        if self.name == "TERNARY":
            return "{-1, 0, +1}"
        if self.is_integer:
            return f"integers {self.min}..{self.max}"
        return f"finite {self.name} values (|x| <= {self.max:.7g}), NaN or +-inf"

    def driver_name(self) -> str:
        """The form FINN's driver writes in ``io_shape_dict``: ``"DataType['UINT8']"``."""
        return f"DataType['{self.name}']"

    def __str__(self) -> str:
        return self.name


def _make(name: str) -> DataType | None:
    if name == "BINARY":
        return DataType(name, 1, False, 0, 1, True)
    if name == "BIPOLAR":
        return DataType(name, 1, True, -1, 1, True)
    if name == "TERNARY":
        return DataType(name, 2, True, -1, 1, True)
    if name == "FLOAT32":
        top = float(np.finfo(np.float32).max)
        return DataType(name, 32, True, -top, top, False)
    if name == "FLOAT16":
        top = float(np.finfo(np.float16).max)
        return DataType(name, 16, True, -top, top, False)
    match = _INT.match(name)
    if match is None:
        return None
    bits = int(match["bits"])
    if not 1 <= bits <= 64 or match["bits"] != str(bits):
        return None
    if match["u"]:
        if bits == 1:  # qonnx's alias: DataType["UINT1"].name == "BINARY"
            return _make("BINARY")
        return DataType(name, bits, False, 0, (1 << bits) - 1, True)
    return DataType(name, bits, True, -(1 << (bits - 1)), (1 << (bits - 1)) - 1, True)


def parse_datatype(value: Any) -> DataType:
    """The :class:`DataType` named by ``value``.

    ``value`` may be a :class:`DataType` (returned as is), a name (``"UINT8"``), the
    driver form (``"DataType['UINT8']"``, ``'DataType["UINT8"]'``, ``"DataType.UINT8"``)
    or any object with a string ``name`` attribute (a qonnx ``DataType``).
    Raises ``ValueError`` naming ``value`` and the allowed forms.
    """
    if isinstance(value, DataType):
        return value
    raw = value
    if not isinstance(value, str):
        value = getattr(value, "name", None)
        if not isinstance(value, str):
            raise ValueError(f"datatype {raw!r} is not a FINN datatype name; allowed: {ALLOWED_FORMS}")
    text = value.strip()
    wrapped = _WRAPPED.match(text)
    if wrapped is not None:
        text = wrapped["a"] or wrapped["b"]
    parsed = _make(text)
    if parsed is None:
        raise ValueError(f"datatype {raw!r} is not a supported FINN datatype; allowed: {ALLOWED_FORMS}")
    return parsed
