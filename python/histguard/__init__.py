"""histguard: the Python client of the histguard data-quality-monitoring daemon.

    import histguard
    with histguard.Client("localhost:50051") as client:
        verdict = client.submit("ecal/barrel/timing", run=356000, lumisection=42, histogram=h)
        print(verdict.quality, verdict.p_value, verdict.top_bins)
        histguard.plot(client.inspect("ecal/barrel/timing", 356000, 42))

``h`` may be a numpy array, a hist / boost-histogram / uproot histogram (anything with the UHI
plottable protocol), a :class:`Histogram`, or ROOT TBufferJSON output. See docs/python.md.
"""

from histguard._version import __version__
from histguard.client import Client
from histguard.convert import to_histogram
from histguard.errors import (DaemonUnavailable, HistguardError, InvalidHistogram, NotFound,
                              NotSupported, PermissionDenied, RejectedHistogram, UnknownMonitor)
from histguard.plotting import plot
from histguard.rootjson import read as read_json
from histguard.types import (Axis, ForgetResult, Histogram, Inspection, MonitorInfo,
                             MonitorSummary, ModelVersion, Quality, RetrainResult, Thresholds,
                             TopBin, Verdict)

__all__ = [
    "__version__", "Client", "to_histogram", "read_json", "plot",
    "Axis", "Histogram", "Inspection", "MonitorInfo", "MonitorSummary", "ModelVersion", "Quality",
    "RetrainResult", "ForgetResult", "Thresholds", "TopBin", "Verdict",
    "HistguardError", "DaemonUnavailable", "PermissionDenied", "NotFound", "UnknownMonitor",
    "NotSupported", "InvalidHistogram", "RejectedHistogram",
]
