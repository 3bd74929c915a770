"""Plain Python values the client hands out: verdicts, histograms, inspections, monitors.

They are built from the daemon's protobuf answers, so scripts and notebooks never touch protobuf
types: numbers are ``int``/``float`` (64-bit fields are plain ints, not strings as in proto3
JSON), bin contents are numpy arrays, times are ``datetime``.
"""

from __future__ import annotations

import datetime as _dt
import enum
import json
import math
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Sequence, Tuple, Union

import numpy as np


class Quality(str, enum.Enum):
    """A verdict's quality; compares equal to its name (``Quality.BAD == "BAD"``)."""

    UNSPECIFIED = "UNSPECIFIED"
    GOOD = "GOOD"
    WARNING = "WARNING"
    BAD = "BAD"
    LEARNING = "LEARNING"
    LOW_STATISTICS = "LOW_STATISTICS"
    REJECTED = "REJECTED"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def from_proto(cls, value: int) -> "Quality":
        name = _quality_names().get(value, "QUALITY_UNSPECIFIED")
        try:
            return cls(name[len("QUALITY_"):])
        except ValueError:  # a quality added to the API after this client
            return cls.UNSPECIFIED

    def to_proto(self) -> int:
        from histguard import _stubs

        return _stubs.pb.Quality.Value("QUALITY_" + self.value)


def _quality_names() -> Dict[int, str]:
    from histguard import _stubs

    return {v.number: v.name for v in _stubs.pb.Quality.DESCRIPTOR.values}


@dataclass(frozen=True)
class TopBin:
    """One of the bins that deviate most from the expectation.

    ``bin`` is in ROOT's numbering: 1-based, ``ix`` for a 1D histogram and ``(ix, iy)`` for a 2D
    one (``None`` when the histogram's shape is not known, e.g. in :meth:`Client.monitors`).
    ``index`` is the flat 0-based index the API uses (``(ix-1) * ny + (iy-1)``); ``pull`` is the
    signed deviance residual, about ``(observed - expected) / sqrt(expected)``.
    """

    bin: Union[int, Tuple[int, int], None]
    index: int
    pull: float


def root_bin(index: int, shape: Optional[Sequence[int]]) -> Union[int, Tuple[int, int], None]:
    """ROOT's 1-based bin number of the flat 0-based API index ``index`` for ``shape``."""
    if not shape:
        return None
    if len(shape) == 2 and shape[1] > 0:
        return (index // shape[1] + 1, index % shape[1] + 1)
    return index + 1


@dataclass(frozen=True)
class Verdict:
    """The daemon's answer for one histogram.

    ``p_value`` is calibrated (1 when unknown, e.g. while LEARNING); ``score`` is the Poisson
    deviance per bin against the expectation (about 1 when normal); ``model_version`` 0 means no
    model yet; ``detail`` says why LEARNING / LOW_STATISTICS / REJECTED. ``nuisances`` holds the
    fitted nuisance parameters (name -> value) when the daemon reports them, else it is empty.
    """

    monitor: str
    run: int
    lumisection: int
    quality: Quality
    p_value: float
    score: float
    model_version: int
    top_bins: Tuple[TopBin, ...] = ()
    detail: str = ""
    nuisances: Dict[str, float] = field(default_factory=dict)

    @property
    def significance(self) -> float:
        """``-log10(p_value)``: WARNING from 3, BAD from 5 with the default thresholds."""
        if self.p_value <= 0:
            return math.inf
        return -math.log10(min(self.p_value, 1.0))

    @property
    def rejected(self) -> bool:
        return self.quality == Quality.REJECTED

    @property
    def scored(self) -> bool:
        """Whether a model scored it (GOOD, WARNING or BAD)."""
        return self.quality in (Quality.GOOD, Quality.WARNING, Quality.BAD)

    def __str__(self) -> str:
        """One line, as ``histguard send`` prints it."""
        text = f"{self.monitor} run {self.run} ls {self.lumisection}: {self.quality.value}"
        if self.quality not in (Quality.REJECTED, Quality.LOW_STATISTICS):
            text += f" score {self.score:.3g} p {self.p_value:.3g} model v{self.model_version}"
        if self.top_bins and self.quality in (Quality.BAD, Quality.WARNING):
            text += " bins " + " ".join(
                f"{_bin_text(b)}({b.pull:+.1f})" for b in self.top_bins)
        if self.nuisances:
            text += " nuisances " + " ".join(f"{k}={v:.3g}" for k, v in self.nuisances.items())
        if self.detail and self.quality != Quality.GOOD:
            text += f" - {self.detail}"
        return text

    @classmethod
    def from_proto(cls, v: Any, shape: Optional[Sequence[int]] = None) -> "Verdict":
        shape = tuple(int(s) for s in shape) if shape else None
        return cls(
            monitor=v.monitor,
            run=int(v.run),
            lumisection=int(v.lumisection),
            quality=Quality.from_proto(v.quality),
            p_value=float(v.p_value),
            score=float(v.score),
            model_version=int(v.model_version),
            top_bins=tuple(
                TopBin(bin=root_bin(b.bin, shape), index=int(b.bin), pull=float(b.pull))
                for b in v.top_bins),
            detail=v.detail,
            nuisances=_nuisances(v),
        )


def _bin_text(b: TopBin) -> str:
    if b.bin is None:
        return f"#{b.index}"
    if isinstance(b.bin, tuple):
        return f"{b.bin[0]},{b.bin[1]}"
    return str(b.bin)


def _nuisances(v: Any) -> Dict[str, float]:
    """The verdict's fitted nuisances, whatever form the API gives them; {} when it has none.

    Accepted forms: a ``map<string, double>``, a repeated message with a name and a value, or a
    message whose numeric fields are the nuisances.
    """
    fields = v.DESCRIPTOR.fields_by_name
    f = fields.get("nuisances") or fields.get("nuisance")
    if f is None:
        return {}
    value = getattr(v, f.name)
    out: Dict[str, float] = {}
    try:
        if f.message_type is not None and f.message_type.GetOptions().map_entry:
            return {str(k): float(value[k]) for k in sorted(value)}  # maps have no order
        if f.label == f.LABEL_REPEATED:
            for item in value:
                if isinstance(item, (int, float)):
                    out[str(len(out))] = float(item)
                    continue
                name, number = None, None
                for sub, x in item.ListFields():
                    if name is None and isinstance(x, str):
                        name = x
                    elif number is None and isinstance(x, (int, float)) and not isinstance(x, bool):
                        number = float(x)
                if number is not None:
                    out[name or str(len(out))] = number
            return out
        if f.message_type is not None:
            if not v.HasField(f.name):
                return {}
            for sub, x in value.ListFields():
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    out[sub.name] = float(x)
            return out
    except Exception:  # an unexpected form: the verdict is still worth having
        return {}
    return out


@dataclass
class Axis:
    """One axis: its range, title and, for variable binning, its edges.

    Only ``low``, ``high`` and ``title`` travel to the daemon (the API's ``Axis``); variable
    ``edges`` stay on the client side. ``low == high == 0`` means unknown.
    """

    low: float = 0.0
    high: float = 0.0
    title: str = ""
    edges: Optional[np.ndarray] = None

    def bin_edges(self, nbins: int) -> np.ndarray:
        """``nbins + 1`` edges: the variable ones, else uniform over [low, high], else 0..nbins."""
        if self.edges is not None and len(self.edges) == nbins + 1:
            return np.asarray(self.edges, dtype=float)
        if self.high > self.low:
            return np.linspace(self.low, self.high, nbins + 1)
        return np.arange(nbins + 1, dtype=float)


@dataclass
class Histogram:
    """A histogram as the client sends it.

    ``contents`` is a float array of shape ``(nx,)`` or ``(nx, ny)``, indexed ``[ix, iy]`` 0-based
    without under/overflow (ROOT's bin ``(ix, iy)`` is ``contents[ix-1, iy-1]``). ``entries`` 0
    means the sum of the contents. ``monitor``, ``run`` and ``lumisection`` are what the source
    said (the plain JSON form can name them), ``None`` otherwise; ``name`` is the ROOT object's
    name.
    """

    contents: np.ndarray
    underflow: float = 0.0
    overflow: float = 0.0
    entries: float = 0.0
    x_axis: Axis = field(default_factory=Axis)
    y_axis: Optional[Axis] = None
    title: str = ""
    name: str = ""
    monitor: Optional[str] = None
    run: Optional[int] = None
    lumisection: Optional[int] = None

    @property
    def shape(self) -> Tuple[int, ...]:
        return tuple(int(n) for n in np.shape(self.contents))

    def to_proto(self, monitor: str, run: int, lumisection: int, time_unix_ms: int = 0) -> Any:
        from histguard import _stubs

        h = _stubs.pb.Histogram(
            monitor=monitor,
            run=int(run),
            lumisection=int(lumisection),
            time_unix_ms=int(time_unix_ms),
            shape=list(self.shape),
            underflow=float(self.underflow),
            overflow=float(self.overflow),
            entries=float(self.entries),
        )
        h.contents.extend(np.asarray(self.contents, dtype=np.float64).ravel(order="C").tolist())
        for axis, target in ((self.x_axis, h.x_axis), (self.y_axis, h.y_axis)):
            if axis is None:
                continue
            target.low, target.high, target.title = float(axis.low), float(axis.high), axis.title
        return h


@dataclass
class Inspection:
    """One stored histogram beside what the model expected, as :meth:`Client.inspect` returns it.

    ``observed``, ``expected`` and ``pulls`` have the histogram's shape (``(nx,)`` or
    ``(nx, ny)``, indexed ``[ix, iy]``); ``expected`` and ``pulls`` are ``None`` when no model
    scored the histogram (LEARNING, LOW_STATISTICS with no model yet, REJECTED). ``x_edges`` and
    ``y_edges`` are the bin edges (uniform over the axis range that travelled with the histogram,
    or the bin numbers 0..n when it had none).
    """

    monitor: str
    run: int
    lumisection: int
    observed: np.ndarray
    expected: Optional[np.ndarray]
    pulls: Optional[np.ndarray]
    x_edges: np.ndarray
    y_edges: Optional[np.ndarray]
    x_title: str
    y_title: str
    underflow: float
    overflow: float
    entries: float
    verdict: Verdict
    in_training_window: bool

    @property
    def ndim(self) -> int:
        return self.observed.ndim

    @property
    def has_expectation(self) -> bool:
        return self.expected is not None

    def worst_bins(self, n: int = 10) -> list:
        """The ``n`` bins with the largest |pull|, as ``(root_bin, observed, expected, pull)``."""
        if self.pulls is None:
            return []
        flat = np.nan_to_num(np.abs(self.pulls.ravel()), nan=-1.0)
        order = np.argsort(-flat, kind="stable")[:n]
        shape = self.observed.shape
        return [(root_bin(int(i), shape), float(self.observed.ravel()[i]),
                 float(self.expected.ravel()[i]), float(self.pulls.ravel()[i])) for i in order]

    @classmethod
    def from_proto(cls, r: Any) -> "Inspection":
        h = r.histogram
        shape = tuple(int(s) for s in h.shape) or (len(h.contents),)
        observed = np.asarray(h.contents, dtype=float).reshape(shape)
        n = observed.size
        expected = pulls = None
        if len(r.expected) == n and len(r.pulls) == n and n > 0:
            expected = np.asarray(r.expected, dtype=float).reshape(shape)
            pulls = np.asarray(r.pulls, dtype=float).reshape(shape)
        entries = float(h.entries) if h.entries else float(observed.sum())
        x = Axis(h.x_axis.low, h.x_axis.high, h.x_axis.title)
        y = Axis(h.y_axis.low, h.y_axis.high, h.y_axis.title)
        return cls(
            monitor=h.monitor or r.verdict.monitor,
            run=int(h.run),
            lumisection=int(h.lumisection),
            observed=observed,
            expected=expected,
            pulls=pulls,
            x_edges=x.bin_edges(shape[0]),
            y_edges=y.bin_edges(shape[1]) if len(shape) == 2 else None,
            x_title=x.title,
            y_title=y.title if len(shape) == 2 else "",
            underflow=float(h.underflow),
            overflow=float(h.overflow),
            entries=entries,
            verdict=Verdict.from_proto(r.verdict, shape),
            in_training_window=bool(r.in_training_window),
        )


@dataclass(frozen=True)
class MonitorSummary:
    """A line of :meth:`Client.monitors`."""

    monitor: str
    model_version: int
    window_size: int
    last_verdict: Optional[Verdict]


@dataclass(frozen=True)
class Thresholds:
    warning_p: float
    bad_p: float
    min_entries: float


@dataclass(frozen=True)
class ModelVersion:
    """One stored model version of a monitor; ``manifest`` is its parsed JSON manifest."""

    version: int
    created: Optional[_dt.datetime]
    sample_count: int
    training_loss: float
    holdout_loss: float
    reason: str
    manifest: Dict[str, Any]
    active: bool
    #: The monitor's anchor: the last version a person chose (approve, accept, rollback), at
    #: first its first model; trainings never drop it.
    anchor: bool = False


@dataclass(frozen=True)
class MonitorInfo:
    """What :meth:`Client.monitor` returns; ``active_version`` 0 = still learning."""

    monitor: str
    shape: Tuple[int, ...]
    active_version: int
    versions: Tuple[ModelVersion, ...]
    window_size: int
    thresholds: Optional[Thresholds]
    last_verdict: Optional[Verdict]
    #: A candidate held because it learned a localised change ("bins 43-46 low by 45%"), for
    #: :meth:`Client.approve` or :meth:`Client.reject`; "" when none is held.
    pending_change: str = ""
    change_rejected: bool = False
    #: (run, from_lumisection) of a new normal being learned after :meth:`Client.accept`.
    accepting: Optional[Tuple[int, int]] = None
    #: Lumisections in a row flagged, once 10 or more, and the bins the first of them named.
    lasting_lumisections: int = 0
    lasting_change: str = ""
    #: What the active model's change check fitted against the data it replaced (1D).
    nuisances: str = ""
    #: The anchor's version (see :attr:`ModelVersion.anchor`); 0 while learning.
    anchor_version: int = 0


@dataclass(frozen=True)
class RetrainResult:
    """What :meth:`Client.retrain` returns: the new version, or why the candidate was rejected."""

    accepted: bool
    version: int
    reason: str


@dataclass(frozen=True)
class ForgetResult:
    """What :meth:`Client.forget` returns: how much of the monitor the daemon deleted."""

    versions_deleted: int
    histograms_deleted: int


def _last_verdict(msg: Any, field_name: str, shape: Optional[Sequence[int]]) -> Optional[Verdict]:
    if not msg.HasField(field_name):
        return None
    v = getattr(msg, field_name)
    if v.quality == 0:  # QUALITY_UNSPECIFIED: nothing judged yet
        return None
    return Verdict.from_proto(v, shape)


def monitor_summary_from_proto(m: Any) -> MonitorSummary:
    return MonitorSummary(
        monitor=m.monitor,
        model_version=int(m.model_version),
        window_size=int(m.window_size),
        last_verdict=_last_verdict(m, "last_verdict", None),
    )


def monitor_info_from_proto(m: Any) -> MonitorInfo:
    shape = tuple(int(s) for s in m.shape)
    versions = []
    for v in m.versions:
        try:
            manifest = json.loads(v.manifest_json) if v.manifest_json else {}
        except ValueError:
            manifest = {"raw": v.manifest_json}
        created = (_dt.datetime.fromtimestamp(v.created_unix_ms / 1000, tz=_dt.timezone.utc)
                   if v.created_unix_ms else None)
        versions.append(ModelVersion(
            version=int(v.version), created=created, sample_count=int(v.sample_count),
            training_loss=float(v.training_loss), holdout_loss=float(v.holdout_loss),
            reason=v.reason, manifest=manifest,
            active=bool(v.active) or (m.active_version != 0 and v.version == m.active_version),
            anchor=bool(getattr(v, "anchor", False))))
    versions.sort(key=lambda x: x.version, reverse=True)
    thresholds = None
    if m.HasField("thresholds"):
        t = m.thresholds
        thresholds = Thresholds(float(t.warning_p), float(t.bad_p), float(t.min_entries))
    return MonitorInfo(
        monitor=m.monitor,
        shape=shape,
        active_version=int(m.active_version),
        versions=tuple(versions),
        window_size=int(m.window_size),
        thresholds=thresholds,
        last_verdict=_last_verdict(m, "last_verdict", shape),
        pending_change=getattr(m, "pending_change", ""),
        change_rejected=bool(getattr(m, "change_rejected", False)),
        accepting=((int(m.accepting.run), int(m.accepting.from_lumisection))
                   if m.HasField("accepting") else None),
        lasting_lumisections=int(getattr(m, "lasting_lumisections", 0)),
        lasting_change=getattr(m, "lasting_change", ""),
        nuisances=getattr(m, "nuisances", ""),
        anchor_version=int(getattr(m, "anchor_version", 0)),
    )
