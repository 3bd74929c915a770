"""The client against a real histguardd with TLS and bearer tokens, as a secured deployment runs it:
credentials from scripts/make-secrets.sh, one token per role (ingest, read, operator)."""

import os
import shutil
import subprocess

import numpy as np
import pytest

import histguard
from conftest import REPO, Daemon, require_daemon, spectrum

MONITOR = "sec/timing"


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    if shutil.which("openssl") is None:
        pytest.skip("scripts/make-secrets.sh needs openssl")
    directory = tmp_path_factory.mktemp("secrets")
    made = subprocess.run([os.path.join(REPO, "scripts", "make-secrets.sh"), str(directory)],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    for name in ("ca.pem", "tls.crt", "tls.key", "tokens", "ingest.token", "read.token",
                 "operator.token"):
        assert (directory / name).stat().st_size > 0, name
    return directory


@pytest.fixture(scope="module")
def secured(secrets):
    d = Daemon(require_daemon(), extra=["--tls-cert", str(secrets / "tls.crt"),
                                        "--tls-key", str(secrets / "tls.key"),
                                        "--token-file", str(secrets / "tokens")])
    yield d
    d.stop()


@pytest.fixture(autouse=True)
def no_token_from_the_environment(monkeypatch):
    monkeypatch.delenv("HISTGUARD_TOKEN", raising=False)


def role_token(secrets, role):
    return (secrets / f"{role}.token").read_text().strip()


@pytest.fixture
def connect(secured, secrets):
    """connect(role, **options): a client of the secured daemon with that role's token (role None:
    no token) over TLS with make-secrets' CA, unless options say otherwise; closed after the
    test."""
    clients = []

    def make(role, *, address=None, **options):
        if role is not None:
            options.setdefault("token", role_token(secrets, role))
        options.setdefault("tls_ca", str(secrets / "ca.pem"))
        options.setdefault("timeout", 30)
        c = histguard.Client(address or secured.address, **options)
        clients.append(c)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture(scope="module")
def sent(secured, secrets):
    """MONITOR with lumisections 1-3 of run 1, sent with the ingest token; {ls: contents}."""
    contents = {ls: spectrum() for ls in (1, 2, 3)}
    with histguard.Client(secured.address, token=role_token(secrets, "ingest"),
                          tls_ca=str(secrets / "ca.pem"), timeout=30) as c:
        for ls, h in contents.items():
            assert c.submit(MONITOR, 1, ls, h).quality == "LEARNING"
    return contents


def refused(call, code):
    """Asserts that call() raises PermissionDenied with the gRPC code `code`; returns it."""
    with pytest.raises(histguard.PermissionDenied) as e:
        call()
    assert e.value.code == code, str(e.value)
    return e.value


# ---- roles ----

def test_ingest_token_sends_over_tls_but_may_not_read_or_steer(connect):
    ingest = connect("ingest")
    v = ingest.submit("sec/ingest-only", 7, 1, spectrum())
    assert v.monitor == "sec/ingest-only" and v.run == 7 and v.quality == "LEARNING"
    streamed = list(ingest.stream([("sec/ingest-only", 7, 2, spectrum())]))
    assert [(v.lumisection, v.quality) for v in streamed] == [(2, "LEARNING")]

    error = refused(ingest.monitors, "PERMISSION_DENIED")
    assert "refused ListMonitors" in str(error)
    refused(lambda: ingest.monitor("sec/ingest-only"), "PERMISSION_DENIED")
    refused(lambda: ingest.inspect("sec/ingest-only", 7, 1), "PERMISSION_DENIED")
    refused(lambda: ingest.label("sec/ingest-only", 7, 1, "BAD"), "PERMISSION_DENIED")
    refused(lambda: ingest.forget("sec/ingest-only"), "PERMISSION_DENIED")
    # What it sent is there for a reader.
    assert connect("read").inspect("sec/ingest-only", 7, 2).verdict.quality == "LEARNING"


def test_read_token_lists_and_inspects_but_may_not_label_send_or_forget(connect, sent):
    read = connect("read")
    assert MONITOR in [m.monitor for m in read.monitors(prefix="sec/")]
    assert read.monitor(MONITOR).shape == (len(sent[1]),)
    ins = read.inspect(MONITOR, 1, 1)
    np.testing.assert_array_equal(ins.observed, sent[1])
    assert ins.in_training_window

    refused(lambda: read.label(MONITOR, 1, 1, "BAD", comment="not mine to say"),
            "PERMISSION_DENIED")
    refused(lambda: read.forget(MONITOR, comment="not mine either"), "PERMISSION_DENIED")
    refused(lambda: read.submit(MONITOR, 1, 99, spectrum()), "PERMISSION_DENIED")
    # None of the refused calls took effect.
    assert read.inspect(MONITOR, 1, 1).in_training_window
    assert read.monitor(MONITOR).shape == (len(sent[1]),)
    with pytest.raises(histguard.NotFound):
        read.inspect(MONITOR, 1, 99)


def test_operator_token_labels_and_reads_but_does_not_send(connect, sent):
    operator, read = connect("operator"), connect("read")
    assert read.inspect(MONITOR, 1, 2).in_training_window
    operator.label(MONITOR, 1, 2, "BAD", comment="HV trip", author="pytest")
    assert not read.inspect(MONITOR, 1, 2).in_training_window
    assert MONITOR in [m.monitor for m in operator.monitors()]
    assert not operator.inspect(MONITOR, 1, 2).in_training_window
    refused(lambda: operator.submit(MONITOR, 1, 99, spectrum()), "PERMISSION_DENIED")


def test_no_token_or_an_unknown_one_is_unauthenticated(connect, sent):
    anonymous = connect(None)
    error = refused(anonymous.monitors, "UNAUTHENTICATED")
    assert "no token given" in str(error) and "HISTGUARD_TOKEN" in str(error)
    refused(lambda: anonymous.submit(MONITOR, 1, 99, spectrum()), "UNAUTHENTICATED")
    refused(lambda: anonymous.label(MONITOR, 1, 1, "BAD"), "UNAUTHENTICATED")

    stranger = connect(None, token="0" * 64)
    error = refused(lambda: stranger.inspect(MONITOR, 1, 1), "UNAUTHENTICATED")
    assert "no token given" not in str(error)


def test_the_token_can_come_from_the_environment(connect, secrets, sent, monkeypatch):
    monkeypatch.setenv("HISTGUARD_TOKEN", role_token(secrets, "read"))
    assert MONITOR in [m.monitor for m in connect(None).monitors()]


# ---- forget ----

def test_operator_forgets_a_monitor_and_its_name_is_free_again(connect):
    ingest, operator = connect("ingest"), connect("operator")
    name = "sec/forget-me"
    for ls in (1, 2, 3):
        assert ingest.submit(name, 4, ls, spectrum()).quality == "LEARNING"
    assert operator.monitor(name).shape == (40,)

    result = operator.forget(name, comment="rebinned")
    assert result == histguard.ForgetResult(versions_deleted=0, histograms_deleted=3)
    with pytest.raises(histguard.UnknownMonitor, match=name):
        operator.monitor(name)
    with pytest.raises(histguard.UnknownMonitor):
        operator.inspect(name, 4, 1)
    assert name not in [m.monitor for m in operator.monitors(prefix="sec/")]
    with pytest.raises(histguard.UnknownMonitor):
        operator.forget(name)

    # A new binning under the same name is a new monitor, not a rejected histogram.
    assert ingest.submit(name, 4, 1, np.full(10, 50.0)).quality == "LEARNING"
    assert operator.monitor(name).shape == (10,)


# ---- TLS ----

def test_a_plain_connection_to_the_tls_daemon_is_unavailable(connect):
    plain = connect("operator", tls_ca=None, timeout=5)
    assert not plain.tls
    with pytest.raises(histguard.DaemonUnavailable, match="cannot reach the daemon"):
        plain.monitors()
    with pytest.raises(histguard.DaemonUnavailable):
        plain.submit(MONITOR, 1, 99, spectrum())


def test_tls_without_the_daemons_ca_is_unavailable(connect):
    untrusted = connect("read", tls_ca=None, tls=True, timeout=5)  # grpc's default roots only
    assert untrusted.tls
    with pytest.raises(histguard.DaemonUnavailable):
        untrusted.monitors()


def test_the_certificate_is_good_for_localhost(connect, secured, sent):
    port = secured.address.rsplit(":", 1)[1]
    by_name = connect("read", address=f"localhost:{port}")
    assert by_name.health() == "SERVING"
    assert by_name.inspect(MONITOR, 1, 3).lumisection == 3
