"""histguard.Client: sends histograms to a histguard daemon and asks it about its monitors."""

from __future__ import annotations

import collections
import getpass
import os
import threading
from typing import Any, Iterable, Iterator, List, Optional, Tuple, Union

import grpc

from histguard import _stubs
from histguard.convert import to_histogram
from histguard.errors import (DaemonUnavailable, HistguardError, NotFound, NotSupported,
                              PermissionDenied, RejectedHistogram, UnknownMonitor)
from histguard.progress import Progress
from histguard.types import (ForgetResult, Histogram, Inspection, MonitorInfo, MonitorSummary,
                             Quality, RetrainResult, Verdict, monitor_info_from_proto,
                             monitor_summary_from_proto)

pb = _stubs.pb
pb_grpc = _stubs.pb_grpc

DEFAULT_ADDRESS = "localhost:50051"
_MAX_MESSAGE = 64 << 20

# One item of a bulk send: (monitor, run, lumisection, histogram), or a histguard.Histogram (or
# a plain-JSON dict/file) that names its own monitor, run and lumisection.
Item = Union[Tuple[str, int, int, Any], Histogram, Any]


def _read_bytes(value: Union[None, str, bytes, "os.PathLike[str]"], what: str) -> Optional[bytes]:
    if value is None:
        return None
    if isinstance(value, bytes):
        return value
    if isinstance(value, str) and value.lstrip().startswith("-----BEGIN"):
        return value.encode()
    try:
        with open(value, "rb") as f:
            return f.read()
    except OSError as e:
        raise HistguardError(f"cannot read {what} {os.fspath(value)}: {e.strerror}") from None


class Client:
    """A connection to one histguard daemon.

    ``address`` is ``host:port`` (default: ``$HISTGUARD_ADDRESS``, else ``localhost:50051``).
    ``token`` is sent as ``authorization: Bearer <token>`` on every call (default:
    ``$HISTGUARD_TOKEN``). ``tls_ca`` (PEM file, bytes or text) turns on TLS with that CA;
    ``tls=True`` turns it on with the system's CAs; ``tls_cert`` and ``tls_key`` add a client
    certificate (mutual TLS). ``timeout`` bounds each call in seconds (``retrain_timeout`` the
    retrain call, which trains a model). Use it as a context manager, or call ``close()``.
    """

    def __init__(self, address: Optional[str] = None, *, token: Optional[str] = None,
                 tls: bool = False, tls_ca: Any = None, tls_cert: Any = None, tls_key: Any = None,
                 tls_server_name: Optional[str] = None, timeout: float = 30.0,
                 retrain_timeout: float = 600.0) -> None:
        self.address = address or os.environ.get("HISTGUARD_ADDRESS") or DEFAULT_ADDRESS
        self.timeout = timeout
        self.retrain_timeout = retrain_timeout
        if token is None:
            token = os.environ.get("HISTGUARD_TOKEN") or None
        self._metadata: Tuple[Tuple[str, str], ...] = (
            (("authorization", f"Bearer {token.strip()}"),) if token else ())
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE),
                   ("grpc.max_send_message_length", _MAX_MESSAGE)]
        if (tls_cert is None) != (tls_key is None):
            raise HistguardError("a client certificate needs both tls_cert and tls_key")
        self.tls = bool(tls or tls_ca is not None or tls_cert is not None)
        if self.tls:
            if tls_server_name:
                options.append(("grpc.ssl_target_name_override", tls_server_name))
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read_bytes(tls_ca, "the CA certificate"),
                private_key=_read_bytes(tls_key, "the client key"),
                certificate_chain=_read_bytes(tls_cert, "the client certificate"))
            self._channel = grpc.secure_channel(self.address, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.address, options=options)
        self._ingest = pb_grpc.IngestStub(self._channel)
        self._control = pb_grpc.ControlStub(self._channel)

    # ---- life cycle ----

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"histguard.Client({self.address!r}{', tls' if self.tls else ''})"

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Waits until the connection to the daemon is up; DaemonUnavailable if not in time."""
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError:
            raise DaemonUnavailable(
                f"cannot reach the daemon at {self.address} within {timeout:g} s",
                code="UNAVAILABLE") from None

    def health(self) -> str:
        """The daemon's gRPC health status: ``"SERVING"``, ``"NOT_SERVING"``, ..."""
        check = self._channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=lambda _: b"",  # HealthCheckRequest{service: ""}
            response_deserializer=lambda b: b)
        raw = self._call(check, None, "the health check")
        status = raw[1] if len(raw) >= 2 and raw[0] == 0x08 else 0  # field 1, varint
        return {0: "UNKNOWN", 1: "SERVING", 2: "NOT_SERVING", 3: "SERVICE_UNKNOWN"}.get(
            status, str(status))

    # ---- errors ----

    def _error(self, e: grpc.RpcError, what: str, timeout: Optional[float]) -> HistguardError:
        code = e.code() if hasattr(e, "code") else None
        details = (e.details() if hasattr(e, "details") else None) or str(e)
        name = code.name if code is not None else None
        if code == grpc.StatusCode.UNAVAILABLE:
            return DaemonUnavailable(f"cannot reach the daemon at {self.address}: {details}",
                                     code=name)
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            within = f" within {timeout:g} s" if timeout else ""
            return DaemonUnavailable(
                f"no answer from the daemon at {self.address}{within} for {what}: {details}",
                code=name)
        if code == grpc.StatusCode.NOT_FOUND:
            if details.startswith("no monitor named"):
                return UnknownMonitor(f"{details} (daemon at {self.address})", code=name)
            return NotFound(details, code=name)
        if code in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            hint = "" if self._metadata else " (no token given: pass token= or set HISTGUARD_TOKEN)"
            return PermissionDenied(f"the daemon at {self.address} refused {what}: {details}{hint}",
                                    code=name)
        if code == grpc.StatusCode.UNIMPLEMENTED:
            return NotSupported(f"the daemon at {self.address} does not offer {what} (is it an "
                                f"older version?): {details}", code=name)
        return HistguardError(f"{what} failed: {details} ({name})", code=name)

    def _call(self, method: Any, request: Any, what: str, timeout: Optional[float] = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        try:
            return method(request, timeout=timeout, metadata=self._metadata)
        except grpc.RpcError as e:
            raise self._error(e, what, timeout) from None

    # ---- ingest ----

    def _prepare(self, item: Item) -> Tuple[Any, Tuple[int, ...]]:
        if isinstance(item, tuple) and len(item) == 4:
            monitor, run, lumisection, histogram = item
            h = to_histogram(histogram)
        else:
            h = to_histogram(item)
            monitor = h.monitor or h.name
            run, lumisection = h.run, h.lumisection
            if not monitor or run is None or lumisection is None:
                raise HistguardError(
                    "a bulk item is (monitor, run, lumisection, histogram), or a histogram that "
                    f"names its monitor, run and lumisection; got {type(item).__name__} without "
                    "them")
        return h.to_proto(monitor, run, lumisection), h.shape

    def submit(self, monitor: str, run: int, lumisection: int, histogram: Any, *,
               raise_on_reject: bool = True) -> Verdict:
        """Sends one histogram and returns its :class:`Verdict`.

        ``histogram`` is a numpy array, a UHI plottable object (hist, uproot, ...), a
        :class:`histguard.Histogram`, or ROOT/plain JSON (dict, text or path). A histogram the
        daemon answers REJECTED raises :class:`RejectedHistogram` (with the daemon's reason),
        unless ``raise_on_reject=False``, which returns the REJECTED verdict.
        """
        proto, shape = self._prepare((monitor, run, lumisection, histogram))
        response = self._call(self._ingest.Submit, pb.SubmitRequest(histograms=[proto]),
                              "Submit")
        if len(response.verdicts) != 1:
            raise HistguardError(f"Submit answered {len(response.verdicts)} verdicts for 1 "
                                 "histogram")
        verdict = Verdict.from_proto(response.verdicts[0], shape)
        if raise_on_reject and verdict.rejected:
            raise RejectedHistogram(verdict)
        return verdict

    def submit_many(self, items: Iterable[Item], *, batch: int = 100, progress: bool = False,
                    raise_on_reject: bool = False) -> List[Verdict]:
        """Sends many histograms in ``Submit`` calls of ``batch`` and returns the verdicts in order.

        Each item is ``(monitor, run, lumisection, histogram)``, or a histogram that names its
        own monitor, run and lumisection (the plain JSON form). REJECTED histograms come back as
        REJECTED verdicts (the rest of the batch goes on), unless ``raise_on_reject``.
        ``progress=True`` shows a progress line on stderr (tqdm's bar when tqdm is installed).
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        bar = Progress(total, progress)
        out: List[Verdict] = []
        pending: List[Any] = []
        shapes: List[Tuple[int, ...]] = []

        def flush() -> None:
            if not pending:
                return
            response = self._call(self._ingest.Submit, pb.SubmitRequest(histograms=pending),
                                  "Submit")
            verdicts = [Verdict.from_proto(v, s) for v, s in zip(response.verdicts, shapes)]
            if len(verdicts) != len(pending):
                raise HistguardError(f"Submit answered {len(response.verdicts)} verdicts for "
                                     f"{len(pending)} histograms")
            bar.update(verdicts)
            out.extend(verdicts)
            pending.clear()
            shapes.clear()
            if raise_on_reject:
                for v in verdicts:
                    if v.rejected:
                        raise RejectedHistogram(v)

        try:
            for item in items:
                proto, shape = self._prepare(item)
                pending.append(proto)
                shapes.append(shape)
                if len(pending) >= batch:
                    flush()
            flush()
        finally:
            bar.close()
        return out

    def stream(self, items: Iterable[Item], *, progress: bool = False,
               raise_on_reject: bool = False) -> Iterator[Verdict]:
        """Sends histograms over one bidirectional stream and yields each verdict as it comes.

        Items are as for :meth:`submit_many`; verdicts come in the order sent. It is a generator:
        nothing is sent until it is iterated (``list(client.stream(items))`` sends them all).
        Suited to a continuous feed; REJECTED verdicts are yielded unless ``raise_on_reject``.
        """
        total = len(items) if hasattr(items, "__len__") else None  # type: ignore[arg-type]
        shapes: "collections.deque[Tuple[int, ...]]" = collections.deque()
        lock = threading.Lock()
        failure: List[BaseException] = []

        def requests() -> Iterator[Any]:
            try:
                for item in items:
                    proto, shape = self._prepare(item)
                    with lock:
                        shapes.append(shape)
                    yield proto
            except Exception as e:  # raised to the caller once the stream has ended
                failure.append(e)

        bar = Progress(total, progress)
        call = self._ingest.Stream(requests(), metadata=self._metadata)
        try:
            for v in call:
                with lock:
                    shape = shapes.popleft() if shapes else None
                verdict = Verdict.from_proto(v, shape)
                bar.update([verdict])
                if raise_on_reject and verdict.rejected:
                    raise RejectedHistogram(verdict)
                yield verdict
        except grpc.RpcError as e:
            if failure:
                raise failure[0]
            raise self._error(e, "Stream", None) from None
        finally:
            call.cancel()
            bar.close()
        if failure:
            raise failure[0]

    # ---- control ----

    def start_run(self, run: int) -> Tuple[int, bool]:
        """Run control: ``run`` started. Returns the daemon's (run, open) after the call.

        While a run is open the ``HistguardDaqSilent`` alert fires when histograms stop coming;
        a histogram of a newer run also opens it. Needs the ingest role.
        """
        r = self._call(self._ingest.SetRunState, pb.RunStateRequest(run=int(run), open=True),
                       "SetRunState")
        return int(r.run), bool(r.open)

    def end_run(self, run: int) -> Tuple[int, bool]:
        """Run control: ``run`` ended, so the silence until the next run raises no alert."""
        r = self._call(self._ingest.SetRunState, pb.RunStateRequest(run=int(run), open=False),
                       "SetRunState")
        return int(r.run), bool(r.open)

    def monitors(self, prefix: str = "") -> List[MonitorSummary]:
        """Every monitor (or those whose name starts with ``prefix``), sorted by name."""
        response = self._call(self._control.ListMonitors, pb.ListMonitorsRequest(prefix=prefix),
                              "ListMonitors")
        return sorted((monitor_summary_from_proto(m) for m in response.monitors),
                      key=lambda m: m.monitor)

    def monitor(self, name: str) -> MonitorInfo:
        """One monitor in detail: shape, model versions (newest first), thresholds, last verdict."""
        return monitor_info_from_proto(
            self._call(self._control.GetMonitor, pb.GetMonitorRequest(monitor=name),
                       "GetMonitor"))

    def inspect(self, name: str, run: int, lumisection: int) -> Inspection:
        """One stored histogram with the expectation of the model that scored it and the pulls."""
        response = self._call(
            self._control.Inspect,
            pb.InspectRequest(monitor=name, run=int(run), lumisection=int(lumisection)),
            "Inspect")
        return Inspection.from_proto(response)

    def label(self, name: str, run: int, lumisection: Union[int, Iterable[int]],
              label: Union[str, Quality, bool], *, comment: str = "",
              author: Optional[str] = None) -> None:
        """Records a person's GOOD or BAD for (monitor, run, lumisection).

        ``label`` is ``"GOOD"``/``"BAD"`` (or a :class:`Quality`, or True for GOOD);
        ``lumisection`` may be a range or list to label several. ``author`` defaults to the
        login name.
        """
        if isinstance(label, bool):
            quality = Quality.GOOD if label else Quality.BAD
        else:
            try:
                quality = Quality(str(label).upper())
            except ValueError:
                quality = Quality.UNSPECIFIED
        if quality not in (Quality.GOOD, Quality.BAD):
            raise ValueError(f"a label is GOOD or BAD, not {label!r}")
        if author is None:
            try:
                author = getpass.getuser()
            except Exception:
                author = ""
        sections = [lumisection] if isinstance(lumisection, int) else list(lumisection)
        for ls in sections:
            self._call(self._control.Label,
                       pb.LabelRequest(monitor=name, run=int(run), lumisection=int(ls),
                                       label=quality.to_proto(), comment=comment, author=author),
                       "Label")

    def retrain(self, name: str, *, timeout: Optional[float] = None) -> RetrainResult:
        """Trains a candidate model now; returns the new version or why it was rejected."""
        timeout = self.retrain_timeout if timeout is None else timeout
        r = self._call(self._control.Retrain, pb.RetrainRequest(monitor=name), "Retrain",
                       timeout=timeout)
        return RetrainResult(accepted=bool(r.accepted), version=int(r.version), reason=r.reason)

    def rollback(self, name: str, version: int) -> int:
        """Makes a stored model version active again; returns the active version."""
        r = self._call(self._control.Rollback,
                       pb.RollbackRequest(monitor=name, version=int(version)), "Rollback")
        return int(r.active_version)

    def forget(self, monitor: str, comment: str = "") -> ForgetResult:
        """Retires a monitor: the daemon deletes its models, stored histograms, labels and state,
        and the name is free again (for a new binning, say). Cannot be undone.

        ``comment`` says why, for the daemon's log and audit record. Needs the operator role;
        an unknown name raises :class:`UnknownMonitor`.
        """
        r = self._call(self._control.Forget,
                       pb.ForgetRequest(monitor=monitor, comment=comment), "Forget")
        return ForgetResult(versions_deleted=int(r.versions_deleted),
                            histograms_deleted=int(r.histograms_deleted))

    def approve(self, name: str, *, comment: str = "") -> int:
        """Approves the candidate a monitor holds because it learned a localised change
        (``monitor(name).pending_change``): it becomes the active model and the change the new
        normal. Returns the now active version. Needs the operator role; raises
        :class:`HistguardError` (code ``FAILED_PRECONDITION``) when no candidate is held, and
        :class:`NotSupported` against a daemon without the call.
        """
        r = self._call(self._control.Approve, pb.ApproveRequest(monitor=name, comment=comment),
                       "Approve")
        return int(r.version)

    def reject(self, name: str, *, comment: str = "") -> None:
        """Rejects the candidate a monitor holds for a localised change: the change stays flagged
        and out of the training window, and later candidates that learn one are dropped, until a
        change is approved or accepted. Needs the operator role."""
        self._call(self._control.Reject, pb.RejectRequest(monitor=name, comment=comment), "Reject")

    def accept(self, name: str, run: int, from_lumisection: int, *, comment: str = "") -> int:
        """Accepts what the monitor receives from (run, from_lumisection) on as its new normal:
        those histograms enter the training window whatever their verdict (unless labelled BAD),
        and the next model learns them. Returns how many accepted histograms that model needs.
        Needs the operator role."""
        r = self._call(self._control.Accept,
                       pb.AcceptRequest(monitor=name, run=int(run),
                                        from_lumisection=int(from_lumisection), comment=comment),
                       "Accept")
        return int(r.histograms_needed)


