"""Reads histograms written as JSON, with the same semantics as the ``histguard send`` CLI.

Two forms are read:

* ROOT's TBufferJSON / JSROOT form (``TBufferJSON::ToJSON``, ``TObject::SaveAs("h.json")``): an
  object whose ``_typename`` is TH1F/TH1D/TH1I/TH1S/TH1C/TH1L or the TH2 equivalents. ``fArray``
  holds ``fNcells`` values including under- and overflow, as a plain array or TBufferJSON's
  compressed typed array (``{"$arr": "Float32", "len": N, ...}`` with ``p``/``v``/``n`` runs, or
  ``b``/``o`` base64 of little-endian values). Profiles, TH3 and other classes are refused.
* the plain form ``{"monitor", "run", "lumisection", "shape", "contents", "underflow",
  "overflow", "entries", "title"}`` (``shape`` and ``contents`` required).

What comes out (a :class:`histguard.Histogram`): contents without under/overflow, shape
``(nx,)`` or ``(nx, ny)`` indexed ``[ix, iy]`` (ROOT's bin ``(ix, iy)`` at ``[ix-1, iy-1]``);
for 2D, underflow is the sum of every cell with ``ix == 0`` or ``iy == 0`` (corners included)
and overflow the sum of the other cells outside the range; entries is ROOT's ``fEntries`` (for
the plain form ``entries`` if given, else the sum of contents, underflow and overflow); contents
are taken as written. Axis ranges and titles (``"title;x title;y title"`` as ROOT splits them)
come along; variable bin edges (``fXbins``) are kept in ``Axis.edges``.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import os
import struct
from typing import Any, Dict, List, Tuple, Union

import numpy as np

from histguard.errors import InvalidHistogram
from histguard.types import Axis, Histogram

MAX_FILE_BYTES = 64 << 20  # as the CLI
MAX_CELLS = 1 << 24  # including under/overflow

_ELEMENT_TYPES = {  # TBufferJSON's compressed array types: (bytes, struct code)
    "Float32": (4, "f"), "Float64": (8, "d"),
    "Int8": (1, "b"), "Int16": (2, "h"), "Int32": (4, "i"), "Int64": (8, "q"),
    "Uint8": (1, "B"), "Uint16": (2, "H"), "Uint32": (4, "I"), "Uint64": (8, "Q"),
    "Bool": (1, "B"),
}


class _Error(Exception):
    pass


def _show(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v if len(v) <= 40 else v[:40] + "...")
    kind = {dict: "object", list: "array"}.get(type(v), type(v).__name__)
    return f"a JSON {kind}"


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _finite(v: Any, what: str) -> float:
    if _is_number(v) and math.isfinite(v):
        return float(v)
    if v is None:
        raise _Error(f"{what} is null (ROOT writes NaN as null); values must be finite numbers")
    if not _is_number(v):
        raise _Error(f"{what} is {_show(v)}, expected a number")
    raise _Error(f"{what} is not a finite number")


def _integer(v: Any, what: str) -> int:
    if isinstance(v, int) and not isinstance(v, bool):
        if v > 2**63 - 1:
            raise _Error(f"{what} is {v}, too large")
        return v
    if isinstance(v, float) and math.isfinite(v) and v == math.floor(v) and abs(v) < 9.0e15:
        return int(v)
    raise _Error(f"{what} is {_show(v)}, expected an integer")


def _compressed(v: Dict[str, Any], what: str, max_len: int) -> List[float]:
    type_name = v.get("$arr")
    if not isinstance(type_name, str):
        raise _Error(f"{what}.$arr is {_show(type_name)}, expected a type name")
    if type_name not in _ELEMENT_TYPES:
        raise _Error(f"{what} has unknown compressed array type {json.dumps(type_name)}")
    size, code = _ELEMENT_TYPES[type_name]
    if "len" not in v:
        raise _Error(f'{what} is a compressed array without "len"')
    n = _integer(v["len"], f"{what}.len")
    if n < 0:
        raise _Error(f"{what}.len is {n}, expected >= 0")
    if n > max_len:
        raise _Error(f"{what}.len is {n}, more than the limit of {max_len} values")
    out = [0.0] * n

    if "b" in v:
        if not isinstance(v["b"], str):
            raise _Error(f"{what}.b is {_show(v['b'])}, expected a base64 string")
        text = v["b"].rstrip("=")
        try:
            raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise _Error(f"{what}.b is not valid base64") from None
        offset = _integer(v["o"], f"{what}.o") if "o" in v else 0
        if (offset < 0 or offset % size or offset + len(raw) > n * size or len(raw) % size):
            raise _Error(f"{what}: base64 data of {len(raw)} bytes at offset {offset} does not "
                         f"fit {n} {type_name} values")
        first = offset // size
        for i, (d,) in enumerate(struct.iter_unpack("<" + code, raw)):
            d = float(d)
            if not math.isfinite(d):
                raise _Error(f"{what}[{first + i}] is not a finite number")
            out[first + i] = d
        return out

    # Runs: "p<k>" start (default: where the previous run ended), "v<k>" an array of values or
    # one value repeated "n<k>" times (default 1); k is "", "1", "2", ...; they end at the first
    # missing "v<k>".
    p = 0
    k = 0
    while True:
        suffix = "" if k == 0 else str(k)
        if "p" + suffix in v:
            p = _integer(v["p" + suffix], f"{what}.p{suffix}")
        if "v" + suffix not in v:
            break
        values = v["v" + suffix]
        if isinstance(values, list):
            count = len(values)
        elif "n" + suffix in v:
            count = _integer(v["n" + suffix], f"{what}.n{suffix}")
        else:
            count = 1
        if p < 0 or count < 0 or p > n or count > n - p:
            raise _Error(f'{what}: compressed run "v{suffix}" writes values {p}..{p + count - 1} '
                         f"outside len={n}")
        if isinstance(values, list):
            for i, x in enumerate(values):
                out[p + i] = _finite(x, f"{what}[{p + i}]")
        else:
            out[p:p + count] = [_finite(values, f"{what}[{p}]")] * count
        p += count
        k += 1
    return out


def _numbers(v: Any, what: str, max_len: int) -> List[float]:
    if isinstance(v, dict) and "$arr" in v:
        return _compressed(v, what, max_len)
    if not isinstance(v, list):
        raise _Error(f"{what} is {_show(v)}, expected an array of numbers")
    if len(v) > max_len:
        raise _Error(f"{what} has {len(v)} values, more than the limit of {max_len}")
    return [_finite(x, f"{what}[{i}]") for i, x in enumerate(v)]


def _root_axis(doc: Dict[str, Any], key: str) -> Tuple[int, Axis]:
    if key not in doc:
        raise _Error(f'missing "{key}"')
    axis = doc[key]
    if not isinstance(axis, dict):
        raise _Error(f"{key} is {_show(axis)}, expected an axis object")
    if "fNbins" not in axis:
        raise _Error(f"missing {key}.fNbins")
    n = _integer(axis["fNbins"], f"{key}.fNbins")
    if n < 1 or n > MAX_CELLS:
        raise _Error(f"{key}.fNbins is {n}, expected 1..{MAX_CELLS}")
    bounds = []
    for b in ("fXmin", "fXmax"):
        if b not in axis:
            raise _Error(f"missing {key}.{b}")
        bounds.append(_finite(axis[b], f"{key}.{b}"))
    out = Axis(low=bounds[0], high=bounds[1])
    bins = axis.get("fXbins")
    if bins is not None:
        edges = _numbers(bins, f"{key}.fXbins", MAX_CELLS + 1)
        if edges:
            if len(edges) != n + 1:
                raise _Error(f"{key}.fXbins has {len(edges)} edges, expected fNbins+1={n + 1}")
            for i in range(1, len(edges)):
                if not edges[i] > edges[i - 1]:
                    raise _Error(f"{key}.fXbins is not increasing at index {i} "
                                 f"({json.dumps(edges[i - 1])} then {json.dumps(edges[i])})")
            out.low, out.high = edges[0], edges[-1]
            out.edges = np.asarray(edges, dtype=float)
    title = axis.get("fTitle")
    out.title = title if isinstance(title, str) else ""
    return n, out


def _root_dimension(type_name: str) -> int:
    q = json.dumps(type_name)
    if type_name.startswith("TProfile"):
        raise _Error(f"_typename {q} is a profile (a mean per bin), not a histogram of counts; "
                     "not supported")
    if type_name.startswith("TH3"):
        raise _Error(f"_typename {q} is a 3D histogram; only TH1 and TH2 are supported")
    if len(type_name) == 4 and type_name[3] in "FDISCL":
        if type_name.startswith("TH1"):
            return 1
        if type_name.startswith("TH2"):
            return 2
    raise _Error(f"unsupported _typename {q}: expected a TH1 or TH2 class (TH1F, TH1D, TH1I, "
                 "TH1S, TH1C, TH2F, TH2D, ...)")


def _parse_root(doc: Dict[str, Any]) -> Histogram:
    type_name = doc["_typename"]
    if not isinstance(type_name, str):
        raise _Error(f"_typename is {_show(type_name)}, expected a class name")
    dims = _root_dimension(type_name)
    nx, x = _root_axis(doc, "fXaxis")
    ny, y = 1, None
    if dims == 2:
        ny, y = _root_axis(doc, "fYaxis")
    nx2, ny2 = nx + 2, (ny + 2 if dims == 2 else 1)
    cells = nx2 * ny2
    if cells > MAX_CELLS:
        raise _Error(f"histogram has {cells} cells, more than the limit of {MAX_CELLS}")
    if "fNcells" not in doc:
        raise _Error('missing "fNcells"')
    ncells = _integer(doc["fNcells"], "fNcells")
    if ncells != cells:
        expect = ("(fXaxis.fNbins+2)*(fYaxis.fNbins+2)=" if dims == 2 else "fXaxis.fNbins+2=")
        raise _Error(f"fNcells={ncells} does not match the axes: expected {expect}{cells}")
    if "fArray" not in doc:
        raise _Error('missing "fArray"')
    array = np.asarray(_numbers(doc["fArray"], "fArray", MAX_CELLS), dtype=float)
    if array.size != cells:
        raise _Error(f"fArray has {array.size} values, expected fNcells={cells}")

    if dims == 1:
        contents = array[1:nx + 1].copy()
        underflow, overflow = float(array[0]), float(array[-1])
    else:
        grid = array.reshape(ny2, nx2).T  # [ix, iy], global bin ix + nx2 * iy
        contents = grid[1:nx + 1, 1:ny + 1].copy()
        underflow = float(grid[0, :].sum() + grid[1:, 0].sum())
        overflow = float(grid[1:, 1:].sum() - contents.sum())
    entries = float(array.sum())
    if "fEntries" in doc:
        entries = _finite(doc["fEntries"], "fEntries")

    name = doc.get("fName") if isinstance(doc.get("fName"), str) else ""
    title_text = doc.get("fTitle") if isinstance(doc.get("fTitle"), str) else ""
    parts = title_text.split(";")
    if not x.title and len(parts) > 1:
        x.title = parts[1]
    if y is not None and not y.title and len(parts) > 2:
        y.title = parts[2]
    return Histogram(contents=contents, underflow=underflow, overflow=overflow, entries=entries,
                     x_axis=x, y_axis=y, title=parts[0] or name, name=name)


def _parse_plain(doc: Dict[str, Any]) -> Histogram:
    if "shape" not in doc:
        raise _Error('missing "shape" (e.g. "shape": [100])')
    shape_json = doc["shape"]
    if not isinstance(shape_json, list):
        raise _Error(f"shape is {_show(shape_json)}, expected an array")
    if not 1 <= len(shape_json) <= 2:
        raise _Error(f"shape has {len(shape_json)} dimensions, expected 1 ([nx]) or 2 ([nx, ny])")
    shape = []
    cells = 1
    for i, s in enumerate(shape_json):
        n = _integer(s, f"shape[{i}]")
        if n < 1:
            raise _Error(f"shape[{i}] is {n}, expected a positive integer")
        cells *= n
        if n > MAX_CELLS or cells > MAX_CELLS:
            raise _Error(f"shape has more than the limit of {MAX_CELLS} bins")
        shape.append(n)
    if "contents" not in doc:
        raise _Error('missing "contents"')
    contents = _numbers(doc["contents"], "contents", MAX_CELLS)
    if len(contents) != cells:
        raise _Error(f"contents has {len(contents)} values, but shape "
                     f"[{', '.join(map(str, shape))}] needs {cells}")
    h = Histogram(contents=np.asarray(contents, dtype=float).reshape(shape))
    monitor = doc.get("monitor")
    if monitor is not None:
        if not isinstance(monitor, str):
            raise _Error(f"monitor is {_show(monitor)}, expected a string")
        h.monitor = monitor
    for key in ("run", "lumisection"):
        if doc.get(key) is None:
            continue
        n = _integer(doc[key], key)
        if n < 0:
            raise _Error(f"{key} is {n}, expected >= 0")
        setattr(h, key, n)
    for key in ("underflow", "overflow"):
        if doc.get(key) is not None:
            setattr(h, key, _finite(doc[key], key))
    h.entries = h.underflow + h.overflow + float(h.contents.sum())
    if doc.get("entries") is not None:
        h.entries = _finite(doc["entries"], "entries")
    if len(shape) == 2:
        h.y_axis = Axis()
    title = doc.get("title")
    h.title = title if isinstance(title, str) else ""
    return h


def _reject_constant(name: str) -> float:
    raise _Error(f"invalid JSON: {name} (NaN and Infinity are not valid JSON numbers)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Error(f"invalid JSON: number {text} overflows (infinite values are not accepted; "
                     "ROOT writes +-inf as +-2e308)")
    return value


def parse_document(doc: Any) -> Histogram:
    """Reads one already-decoded JSON document (a dict) in either form."""
    try:
        return _parse_document(doc)
    except _Error as e:
        raise InvalidHistogram(str(e)) from None


def _parse_document(doc: Any) -> Histogram:
    if not isinstance(doc, dict):
        kind = ("null" if doc is None else "an array" if isinstance(doc, list)
                else "a " + type(doc).__name__)
        raise _Error(f"the JSON document is {kind}, expected an object describing one histogram")
    if "_typename" in doc:
        return _parse_root(doc)
    if "shape" in doc or "contents" in doc:
        return _parse_plain(doc)
    raise _Error('not a histogram: neither a ROOT object (no "_typename") nor the plain form '
                 '(no "shape"/"contents")')


def parse_json(text: Union[str, bytes]) -> Histogram:
    """Reads one JSON document given as text."""
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    if len(text) > MAX_FILE_BYTES:
        raise InvalidHistogram(f"input is {len(text)} bytes, more than the limit of "
                               f"{MAX_FILE_BYTES} bytes (64 MiB)")
    if not text.strip():
        raise InvalidHistogram("empty input: no JSON document")
    try:
        doc = json.loads(text, parse_constant=_reject_constant, parse_float=_parse_float)
    except _Error as e:
        raise InvalidHistogram(str(e)) from None
    except ValueError as e:
        raise InvalidHistogram(f"invalid JSON: {e}") from None
    return parse_document(doc)


def read_file(path: Union[str, "os.PathLike[str]"]) -> Histogram:
    """Reads a JSON histogram file; error messages start with the path."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InvalidHistogram(f"{path}: no such file")
    if os.path.isdir(path):
        raise InvalidHistogram(f"{path}: is a directory, expected a JSON file")
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except OSError as e:
        raise InvalidHistogram(f"{path}: cannot open: {e.strerror}") from None
    if not data:
        raise InvalidHistogram(f"{path}: file is empty")
    if len(data) > MAX_FILE_BYTES:
        raise InvalidHistogram(f"{path}: file is larger than the limit of {MAX_FILE_BYTES} bytes "
                               "(64 MiB)")
    try:
        return parse_json(data)
    except UnicodeDecodeError:
        raise InvalidHistogram(f"{path}: invalid JSON: not UTF-8 text") from None
    except InvalidHistogram as e:
        raise InvalidHistogram(f"{path}: {e}") from None


def looks_like_json_text(s: str) -> bool:
    return s.lstrip()[:1] in ("{", "[")


def read(source: Any) -> Histogram:
    """A dict (decoded JSON), JSON text, or a path to a JSON file."""
    if isinstance(source, dict):
        return parse_document(source)
    if isinstance(source, (bytes, bytearray)):
        return parse_json(bytes(source))
    if isinstance(source, str) and looks_like_json_text(source):
        return parse_json(source)
    return read_file(source)


