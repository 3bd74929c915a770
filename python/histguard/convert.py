"""Turns what a user has in hand into a :class:`histguard.Histogram`.

Accepted:

* a :class:`histguard.Histogram` (sent as it is);
* a numpy array (or nested list) of 1 or 2 dimensions: bin contents indexed ``[ix, iy]``, no
  under/overflow, no axis ranges;
* any object that follows the Unified Histogram Interface's plottable protocol (hist,
  boost-histogram, uproot's TH1/TH2): ``.values()``, ``.variances()``, ``.axes`` with ``.edges``
  (or iterable ``(low, high)`` bins) and ``.label``, and ``.kind``;
* ROOT's TBufferJSON output or the plain JSON form: a dict, JSON text, or a path to a file,
  read with the ``histguard send`` CLI's rules (see :mod:`histguard.rootjson`).

Contents travel as written, as the CLI sends them: weighted histograms send their sums of weights
(variances are not sent; the daemon models counts), fractional values are fine, and what the
daemon refuses (negative, NaN or infinite bins) comes back as a REJECTED verdict with the reason.
Profiles (UHI kind MEAN, ROOT TProfile) are refused here: they hold means, not counts.
"""

from __future__ import annotations

import os
from typing import Any, Tuple

import numpy as np

from histguard import rootjson
from histguard.errors import InvalidHistogram
from histguard.types import Axis, Histogram


def to_histogram(obj: Any) -> Histogram:
    """Reads ``obj`` (see the module's description) into a :class:`Histogram`."""
    if isinstance(obj, Histogram):
        _check_contents(np.asarray(obj.contents), "histogram contents")
        return obj
    if isinstance(obj, (dict, str, bytes, bytearray, os.PathLike)):
        return rootjson.read(obj)
    if _is_uhi(obj):
        return _from_uhi(obj)
    if isinstance(obj, (np.ndarray, list, tuple)) or hasattr(obj, "__array__"):
        return _from_array(obj)
    raise InvalidHistogram(
        f"cannot read a {type(obj).__name__} as a histogram: give a numpy array (1D or 2D), an "
        "object with the UHI plottable protocol (.values(), .axes, .kind), a histguard.Histogram, "
        "or ROOT TBufferJSON / plain JSON (dict, text or file path)")


def _check_contents(a: np.ndarray, what: str) -> np.ndarray:
    if a.ndim not in (1, 2):
        raise InvalidHistogram(f"{what} has {a.ndim} dimensions; only 1D and 2D histograms are "
                               "supported")
    if a.size == 0:
        raise InvalidHistogram(f"{what} are empty")
    if not (np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_):
        raise InvalidHistogram(f"{what} are of type {a.dtype}, expected numbers")
    if np.iscomplexobj(a):
        raise InvalidHistogram(f"{what} are complex numbers, expected real ones")
    return a


def _from_array(obj: Any) -> Histogram:
    try:
        a = np.asarray(obj)
    except Exception as e:  # ragged lists and the like
        raise InvalidHistogram(f"cannot read the array: {e}") from None
    if a.dtype == object:
        raise InvalidHistogram("the array holds objects, expected numbers (a ragged list?)")
    a = _check_contents(a, "array contents").astype(np.float64)
    return Histogram(contents=a, y_axis=Axis() if a.ndim == 2 else None)


def _is_uhi(obj: Any) -> bool:
    return callable(getattr(obj, "values", None)) and hasattr(obj, "axes") and hasattr(obj, "kind")


def _kind(obj: Any) -> str:
    kind = getattr(obj, "kind")
    kind = getattr(kind, "value", kind)
    return str(kind).upper()


def _axis_edges(axis: Any, n: int, which: str) -> Tuple[np.ndarray, bool]:
    """The axis' ``n + 1`` edges and whether they are real (False: a categorical axis)."""
    edges = getattr(axis, "edges", None)
    if callable(edges):  # uproot's TAxis.edges()
        edges = edges()
    if edges is not None:
        e = np.asarray(edges, dtype=float).ravel()
        if e.size == n + 1:
            return e, True
        raise InvalidHistogram(f"{which} axis has {e.size} edges for {n} bins")
    try:  # PlottableAxis: iterating gives (low, high) per bin for continuous axes
        bins = [axis[i] for i in range(len(axis))]
        if bins and all(isinstance(b, tuple) and len(b) == 2 for b in bins):
            e = np.array([float(bins[0][0])] + [float(b[1]) for b in bins])
            if e.size == n + 1:
                return e, True
    except Exception:
        pass
    return np.arange(n + 1, dtype=float), False  # categorical: bin numbers


def _axis_title(axis: Any) -> str:
    for attr in ("label", "title", "name"):
        value = getattr(axis, attr, None)
        if callable(value):
            try:
                value = value()
            except TypeError:
                continue
        if isinstance(value, str) and value:
            return value
    return ""


def _flow_sums(obj: Any, contents: np.ndarray) -> Tuple[float, float]:
    """(underflow, overflow) with the CLI's 2D rule, when the object exposes its flow bins."""
    try:
        full = np.asarray(obj.values(flow=True), dtype=float)
    except Exception:
        return 0.0, 0.0
    if full.shape == contents.shape or full.ndim != contents.ndim:
        return 0.0, 0.0
    # Where each axis' flow bins sit: from traits when given, else from the size (n + 2: both).
    lo, hi = [], []
    for d, axis in enumerate(obj.axes):
        extra = full.shape[d] - contents.shape[d]
        traits = getattr(axis, "traits", None)
        under = getattr(traits, "underflow", None)
        over = getattr(traits, "overflow", None)
        if under is None or over is None or int(bool(under)) + int(bool(over)) != extra:
            if extra == 2:
                under, over = True, True
            elif extra == 0:
                under, over = False, False
            else:
                return 0.0, 0.0  # one flow bin and no traits to say which: leave them out
        lo.append(int(bool(under)))
        hi.append(int(bool(over)))
    padded = np.zeros(tuple(n + 2 for n in contents.shape))
    region = tuple(slice(1 - lo[d], 1 + contents.shape[d] + hi[d]) for d in range(contents.ndim))
    padded[region] = full
    under_mask = np.zeros(padded.shape, dtype=bool)
    for d in range(contents.ndim):
        index = [slice(None)] * contents.ndim
        index[d] = 0
        under_mask[tuple(index)] = True
    inner = tuple(slice(1, n + 1) for n in contents.shape)
    outside = np.ones(padded.shape, dtype=bool)
    outside[inner] = False
    finite = np.where(np.isfinite(padded), padded, 0.0)
    return float(finite[under_mask].sum()), float(finite[outside & ~under_mask].sum())


def _from_uhi(obj: Any) -> Histogram:
    kind = _kind(obj)
    if kind == "MEAN":
        raise InvalidHistogram(
            "the histogram is a profile (UHI kind MEAN: a mean per bin), not a histogram of "
            "counts; not supported")
    if kind != "COUNT":
        raise InvalidHistogram(f"unknown UHI kind {kind!r}, expected COUNT")
    try:
        values = obj.values()
    except Exception as e:
        raise InvalidHistogram(f"the histogram's values() failed: {e}") from None
    contents = _check_contents(np.asarray(values), "histogram values").astype(np.float64)
    axes = list(obj.axes)
    if len(axes) != contents.ndim:
        raise InvalidHistogram(f"the histogram has {len(axes)} axes but values() of "
                               f"{contents.ndim} dimensions")
    built = []
    for d, axis in enumerate(axes):
        edges, real = _axis_edges(axis, contents.shape[d], "xy"[d])
        a = Axis(title=_axis_title(axis))
        if real:
            a.low, a.high = float(edges[0]), float(edges[-1])
            widths = np.diff(edges)
            if not np.allclose(widths, widths[0], rtol=1e-9, atol=0):
                a.edges = edges
        built.append(a)
    underflow, overflow = _flow_sums(obj, contents)
    name = getattr(obj, "name", "")
    name = name if isinstance(name, str) else ""
    title = ""
    for attr in ("title", "label"):
        value = getattr(obj, attr, None)
        if isinstance(value, str) and value:
            title = value
            break
    return Histogram(contents=contents, underflow=underflow, overflow=overflow,
                     x_axis=built[0], y_axis=built[1] if len(built) == 2 else None,
                     title=title or name, name=name)


