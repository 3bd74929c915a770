"""Exceptions raised by the histguard client.

Every error the client raises is a :class:`HistguardError`; the subclasses say what went wrong, so
a script can react to one case (``except histguard.UnknownMonitor``) and let the others through.
"""

from __future__ import annotations

from typing import Any, Optional


class HistguardError(Exception):
    """Base class of every histguard client error.

    ``code`` is the gRPC status code name (``"UNAVAILABLE"``, ``"NOT_FOUND"``, ...) when the error
    came from a call, else ``None``.
    """

    def __init__(self, message: str, *, code: Optional[str] = None) -> None:
        super().__init__(message)
        self.code = code


class DaemonUnavailable(HistguardError):
    """The daemon could not be reached, or did not answer within the timeout."""


class PermissionDenied(HistguardError):
    """The daemon refused the call: missing or wrong token, or a role that may not make it."""


class NotFound(HistguardError):
    """The daemon has no such thing: a stored histogram, a model version, ..."""


class UnknownMonitor(NotFound, KeyError):
    """The daemon knows no monitor of that name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NotSupported(HistguardError, NotImplementedError):
    """The daemon does not offer this call (its API has no such RPC)."""


class InvalidHistogram(HistguardError, ValueError):
    """The object given as a histogram cannot be read as one (client-side check)."""


class RejectedHistogram(HistguardError):
    """The daemon answered a histogram with quality REJECTED.

    ``reason`` is the daemon's explanation (the verdict's ``detail``) and ``verdict`` the whole
    :class:`~histguard.Verdict`.
    """

    def __init__(self, verdict: Any) -> None:
        self.verdict = verdict
        self.reason = verdict.detail or "no reason given"
        super().__init__(
            f"the daemon rejected {verdict.monitor!r} run {verdict.run} ls {verdict.lumisection}: "
            f"{self.reason}"
        )
