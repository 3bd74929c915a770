"""python -m histguard, histguard.plot, and what the client sends for authentication."""

import concurrent.futures
import json
import os
import subprocess
import sys

import grpc
import numpy as np
import pytest

import histguard
from conftest import FIXTURES, PACKAGE_LIB, occupancy, spectrum, uhi_map
from test_daemon import free_port, hot_spectrum, take_ls


def cli(*args, env=None):
    environment = dict(os.environ, PYTHONPATH=PACKAGE_LIB, **(env or {}))
    return subprocess.run([sys.executable, "-m", "histguard", *args], capture_output=True,
                          text=True, env=environment, timeout=120)


# ---- python -m histguard ----

def test_cli_send_prints_each_verdict_and_a_summary(daemon):
    files = [os.path.join(FIXTURES, f) for f in ("th1d_timing_compact.json",
                                                 "th1f_timing_pretty.json")]
    r = cli("send", "-a", daemon.address, "--monitor", "py/cli", "--run", "5", *files)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [f"{files[0]}: py/cli run 5 ls 0: LEARNING" + lines[0].split("LEARNING")[1],
                     f"{files[1]}: py/cli run 5 ls 1: LEARNING" + lines[1].split("LEARNING")[1]]
    assert "sent 2 of 2 files" in r.stderr and "2 LEARNING" in r.stderr


def test_cli_send_names_a_malformed_file_sends_the_rest_and_exits_1(daemon, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"_typename": "TProfile", "fName": "p"}')
    good = os.path.join(FIXTURES, "th2f_occupancy_compact.json")  # names itself pixel_occupancy
    r = cli("send", "-a", daemon.address, "--run", "6", str(bad), good)
    assert r.returncode == 1
    assert f"{bad}: _typename \"TProfile\" is a profile" in r.stderr
    assert r.stdout.startswith(f"{good}: pixel_occupancy run 6 ls 0: ")
    assert "sent 1 of 2 files" in r.stderr and "1 files failed" in r.stderr


def test_cli_send_to_no_daemon_exits_3():
    r = cli("send", "-a", f"127.0.0.1:{free_port()}", "--timeout", "5", "-m", "py/x",
            os.path.join(FIXTURES, "th1d_timing_compact.json"))
    assert r.returncode == 3 and "cannot reach the daemon" in r.stderr


def test_cli_inspect_text_and_json(daemon, client, trained):
    ls = take_ls(trained, "py/spectrum")
    client.submit("py/spectrum", 1, ls, hot_spectrum(30))
    r = cli("inspect", "-a", daemon.address, "py/spectrum", "--run", "1", "--ls", str(ls),
            "--top", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith(f"py/spectrum run 1 ls {ls}: BAD")
    assert lines[3].split()[0] == "BIN" and lines[4].split()[0] == "31"
    assert "3 of 40 bins" in lines[-1]

    r = cli("inspect", "-a", daemon.address, "py/spectrum", "--run", "1", "--ls", str(ls),
            "--json")
    doc = json.loads(r.stdout)
    assert doc["run"] == 1 and doc["lumisection"] == ls  # numbers, not strings
    assert doc["verdict"]["quality"] == "BAD" and doc["verdict"]["top_bins"][0]["bin"] == 31
    assert len(doc["observed"]) == 40 and len(doc["x_edges"]) == 41


def test_cli_inspect_of_an_unknown_monitor_exits_1(daemon):
    r = cli("inspect", "-a", daemon.address, "py/none", "--run", "1", "--ls", "1")
    assert r.returncode == 1 and "no monitor named 'py/none'" in r.stderr


def test_cli_monitors_lists_them(daemon, trained):
    r = cli("monitors", "-a", daemon.address, "--prefix", "py/sp")
    assert r.returncode == 0
    header, row = r.stdout.splitlines()
    assert header.split() == ["MONITOR", "MODEL", "WINDOW", "LAST", "P"]
    assert row.split()[0] == "py/spectrum" and row.split()[1].startswith("v")


# ---- histguard.plot ----

@pytest.fixture
def agg():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    yield
    plt.close("all")


def test_plot_1d_draws_observed_expected_and_pulls(agg, client, trained, tmp_path):
    ls = take_ls(trained, "py/spectrum")
    client.submit("py/spectrum", 1, ls, hot_spectrum(30))
    fig = histguard.plot(client.inspect("py/spectrum", 1, ls))
    top, pulls = fig.axes
    assert sorted(t.get_text() for t in top.get_legend().get_texts()) == ["expected", "observed"]
    heights = [p.get_height() for p in pulls.patches]
    assert len(heights) == 40 and int(np.argmax(heights)) == 30
    fig.savefig(tmp_path / "spectrum.png")
    assert (tmp_path / "spectrum.png").stat().st_size > 1000


def test_plot_2d_draws_three_maps(agg, client, trained):
    ls = take_ls(trained, "py/map")
    client.submit("py/map", 1, ls, uhi_map(occupancy()))
    fig = histguard.plot(client.inspect("py/map", 1, ls))
    titles = [a.get_title() for a in fig.axes if a.get_title()]
    assert titles == ["observed", "expected", "pull"]


def test_plot_without_expectation_draws_the_observed_only(agg, client):
    client.submit("py/plot-learning", 1, 1, spectrum())
    fig = histguard.plot(client.inspect("py/plot-learning", 1, 1))
    assert len(fig.axes) == 1


# ---- authentication ----

class Recorder:
    """An in-process Ingest service that records the metadata of each call."""

    def __init__(self, tls=None):
        from histguard import _stubs

        self.metadata = []
        recorder = self

        class Ingest(_stubs.pb_grpc.IngestServicer):
            def Submit(self, request, context):
                recorder.metadata.append(dict(context.invocation_metadata()))
                return _stubs.pb.SubmitResponse(verdicts=[
                    _stubs.pb.Verdict(monitor=h.monitor, quality=_stubs.pb.QUALITY_LEARNING)
                    for h in request.histograms])

        self.server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        _stubs.pb_grpc.add_IngestServicer_to_server(Ingest(), self.server)
        if tls:
            credentials = grpc.ssl_server_credentials([(tls[0], tls[1])])
            self.port = self.server.add_secure_port("127.0.0.1:0", credentials)
        else:
            self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    def stop(self):
        self.server.stop(None)


@pytest.fixture
def recorder():
    r = Recorder()
    yield r
    r.stop()


def test_token_travels_as_a_bearer_authorization(recorder, monkeypatch):
    monkeypatch.delenv("HISTGUARD_TOKEN", raising=False)
    with histguard.Client(f"127.0.0.1:{recorder.port}", token="s3cret") as c:
        c.submit("m/a", 1, 1, np.ones(3))
    with histguard.Client(f"127.0.0.1:{recorder.port}") as c:
        c.submit("m/a", 1, 2, np.ones(3))
    monkeypatch.setenv("HISTGUARD_TOKEN", "from-env")
    with histguard.Client(f"127.0.0.1:{recorder.port}") as c:
        c.submit("m/a", 1, 3, np.ones(3))
    assert [m.get("authorization") for m in recorder.metadata] == [
        "Bearer s3cret", None, "Bearer from-env"]


def test_client_certificate_needs_its_key():
    with pytest.raises(histguard.HistguardError, match="both tls_cert and tls_key"):
        histguard.Client("localhost:1", tls_cert=b"-----BEGIN CERTIFICATE-----")


def test_tls_with_a_ca_file_and_a_token(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)], capture_output=True)
    if made.returncode != 0:
        pytest.skip("openssl cannot make a test certificate here")
    server = Recorder(tls=(key.read_bytes(), cert.read_bytes()))
    try:
        with histguard.Client(f"localhost:{server.port}", tls_ca=str(cert), token="t") as c:
            assert c.submit("m/a", 1, 1, np.ones(3)).quality == "LEARNING"
        assert server.metadata[-1]["authorization"] == "Bearer t"
        with histguard.Client(f"localhost:{server.port}", timeout=5) as plain:
            with pytest.raises(histguard.DaemonUnavailable):
                plain.submit("m/a", 1, 2, np.ones(3))
    finally:
        server.stop()
