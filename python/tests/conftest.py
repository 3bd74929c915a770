"""Test set-up: builds the package (stubs included) into a temporary directory, imports it from
there, and starts a real histguardd on free ports for the tests that need one.

$HISTGUARDD is the daemon binary (ctest passes the one CMake built; the daemon tests fail when it
is not there); without it the tests look for build/server/histguardd in the checkout, and the
daemon tests are skipped when there is none.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pytest

PYTHON_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REPO = os.path.dirname(PYTHON_DIR)
FIXTURES = os.path.join(REPO, "tests", "data", "root-json")


def _build_package():
    """Builds the package as pip would, without touching the source tree; returns its dir."""
    base = tempfile.mkdtemp(prefix="histguard-py-build-")
    src = os.path.join(base, "src")
    shutil.copytree(PYTHON_DIR, src, ignore=shutil.ignore_patterns(
        "tests", "build", "*.egg-info", "__pycache__", "v1", "_version.py"))
    lib = os.path.join(base, "lib")
    env = dict(os.environ, HISTGUARD_SOURCE_DIR=REPO)
    result = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_py", "--build-lib", lib],
        cwd=src, env=env, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"building the package failed:\n{result.stdout}\n{result.stderr}")
    return base, lib


_BUILD_BASE, PACKAGE_LIB = _build_package()
sys.path.insert(0, PACKAGE_LIB)

import histguard  # noqa: E402  (from the build above)

assert os.path.dirname(os.path.dirname(histguard.__file__)) == PACKAGE_LIB, histguard.__file__


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_BUILD_BASE, ignore_errors=True)


def daemon_path():
    path = os.environ.get("HISTGUARDD") or os.path.join(REPO, "build", "server", "histguardd")
    return path if os.path.isfile(path) and os.access(path, os.X_OK) else None


class Daemon:
    """A histguardd process on 127.0.0.1 with free ports and its own data directory."""

    # Small first trainings so the tests get models in seconds; retraining off so that versions
    # stay where the tests put them.
    FLAGS = ["--min-train-samples", "40", "--window-size", "200", "--history", "400",
             "--drift-window", "100", "--retraining", "false", "--sync-writes", "false",
             "--train-budget-seconds", "30"]

    def __init__(self, binary, extra=()):
        self.data_dir = tempfile.mkdtemp(prefix="histguard-py-daemon-")
        self.log_path = os.path.join(self.data_dir, "daemon.log")
        self._log = open(self.log_path, "wb")
        self.process = subprocess.Popen(
            [binary, "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
             "--data-dir", os.path.join(self.data_dir, "data"), *self.FLAGS, *extra],
            stdout=subprocess.PIPE, stderr=self._log)
        line = self._first_line(timeout=60)
        try:
            event = json.loads(line)
        except ValueError:
            event = {}
        if event.get("event") != "listening":
            self.stop()
            raise RuntimeError(f"histguardd did not start: {line!r}; log:\n{self.log()}")
        port = event["grpc"].rsplit(":", 1)[1]
        self.address = f"127.0.0.1:{port}"
        # Keep reading stdout so the daemon never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _first_line(self, timeout):
        result = []
        reader = threading.Thread(target=lambda: result.append(self.process.stdout.readline()),
                                  daemon=True)
        reader.start()
        reader.join(timeout)
        return result[0].decode(errors="replace").strip() if result else ""

    def _drain(self):
        for _ in self.process.stdout:
            pass

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()[-4000:]

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def require_daemon():
    """The daemon binary; fails the test when $HISTGUARDD is wrong, skips it when there is none."""
    binary = daemon_path()
    if binary is None and os.environ.get("HISTGUARDD"):
        pytest.fail(f"HISTGUARDD={os.environ['HISTGUARDD']} is not an executable file")
    if binary is None:
        pytest.skip("no histguardd binary: build it (cmake --build build) or set HISTGUARDD")
    return binary


@pytest.fixture(scope="session")
def daemon():
    d = Daemon(require_daemon())
    yield d
    d.stop()


@pytest.fixture(scope="session")
def client(daemon):
    c = histguard.Client(daemon.address, timeout=60)
    c.wait_ready(30)
    yield c
    c.close()


# ---- simulated detector histograms ----

RNG = np.random.default_rng(int(os.environ.get("HISTGUARD_TEST_SEED", "17")))
SPECTRUM_BINS = 40
MAP_SHAPE = (8, 6)


def spectrum(entries=20000, rng=RNG):
    """A peak on a flat background, 40 bins over [-20, 20] ns."""
    x = np.linspace(-19.5, 19.5, SPECTRUM_BINS)
    shape = 0.2 + np.exp(-0.5 * (x / 4.0) ** 2)
    return rng.poisson(entries * shape / shape.sum()).astype(float)


def occupancy(entries=20000, rng=RNG):
    """An 8 x 6 map, [ix, iy], brighter towards the middle."""
    ix, iy = np.meshgrid(np.arange(MAP_SHAPE[0]), np.arange(MAP_SHAPE[1]), indexing="ij")
    shape = 1.0 + 0.5 * np.cos((ix - 3.5) / 3) + 0.3 * np.cos((iy - 2.5) / 2)
    return rng.poisson(entries * shape / shape.sum()).astype(float)


class UhiAxis:
    """A regular axis as hist / boost-histogram / uproot expose it (UHI PlottableAxis)."""

    def __init__(self, edges, label="", flow=True):
        self.edges = np.asarray(edges, dtype=float)
        self.label = label
        self.traits = type("Traits", (), {"circular": False, "discrete": False,
                                           "underflow": flow, "overflow": flow})()

    def __len__(self):
        return len(self.edges) - 1

    def __getitem__(self, i):
        return (self.edges[i], self.edges[i + 1])

    def __iter__(self):
        return (self[i] for i in range(len(self)))


class UhiHistogram:
    """A histogram following the UHI PlottableProtocol, standing in for hist and uproot objects
    (which cannot be installed here). ``flow`` holds the contents with under/overflow bins."""

    def __init__(self, values, axes, kind="COUNT", variances=None, flow=None, name=""):
        self._values = np.asarray(values, dtype=float)
        self._variances = variances
        self._flow = flow
        self.axes = tuple(axes)
        self.kind = kind
        self.name = name

    def values(self, flow=False):
        if flow:
            if self._flow is None:
                raise TypeError("no flow bins")
            return self._flow
        return self._values

    def variances(self, flow=False):
        return self._values if self._variances is None else self._variances

    def counts(self, flow=False):
        return self.values(flow)


def uhi_spectrum(values):
    return UhiHistogram(values, [UhiAxis(np.linspace(-20, 20, SPECTRUM_BINS + 1), "t [ns]")],
                        name="timing")


def uhi_map(values):
    return UhiHistogram(values, [UhiAxis(np.arange(MAP_SHAPE[0] + 1), "column"),
                                 UhiAxis(np.arange(MAP_SHAPE[1] + 1) * 2.0, "row")],
                        name="occupancy")


@pytest.fixture(scope="session")
def trained(client):
    """Two monitors with a first model: a 1D spectrum sent as numpy arrays and a 2D map sent as
    UHI objects. Returns {monitor: next free lumisection}."""
    monitors = {"py/spectrum": lambda: spectrum(), "py/map": lambda: uhi_map(occupancy())}
    items = []
    for ls in range(1, 51):
        for name, make in monitors.items():
            items.append((name, 1, ls, make()))
    verdicts = list(client.stream(items))
    assert len(verdicts) == len(items)
    next_ls = {name: 51 for name in monitors}
    deadline = time.monotonic() + 300
    pending = set(monitors)
    while pending and time.monotonic() < deadline:
        for name in sorted(pending):
            v = client.submit(name, 1, next_ls[name], monitors[name]())
            next_ls[name] += 1
            if v.model_version > 0:
                pending.discard(name)
        if pending:
            time.sleep(0.5)
    assert not pending, f"no model trained in time for {sorted(pending)}"
    return next_ls
