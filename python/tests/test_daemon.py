"""The client against a real histguardd: verdicts, inspection, labels, models and errors."""

import socket
import time

import numpy as np
import pytest

import histguard
from conftest import MAP_SHAPE, SPECTRUM_BINS, occupancy, spectrum, uhi_map, uhi_spectrum


def take_ls(trained, name, n=1):
    first = trained[name]
    trained[name] += n
    return first if n == 1 else list(range(first, first + n))


def hot_spectrum(bin_index=30, extra=3000.0):
    h = spectrum()
    h[bin_index] += extra
    return h


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- errors without a daemon ----

def test_unreachable_daemon_is_reported_with_its_address():
    address = f"127.0.0.1:{free_port()}"
    with histguard.Client(address, timeout=5) as c:
        with pytest.raises(histguard.DaemonUnavailable, match=f"cannot reach the daemon at {address}"):
            c.submit("m/a", 1, 1, np.ones(10))
        with pytest.raises(histguard.DaemonUnavailable):
            c.monitors()
        with pytest.raises(histguard.DaemonUnavailable, match="within 0.5 s"):
            c.wait_ready(0.5)


# ---- verdicts ----

def test_a_new_monitor_is_learning(client):
    v = client.submit("py/learning", 1, 1, spectrum())
    assert v.quality == histguard.Quality.LEARNING
    assert (v.monitor, v.run, v.lumisection, v.model_version) == ("py/learning", 1, 1, 0)
    assert v.detail


def test_health_is_serving(client):
    assert client.health() == "SERVING"


def test_normal_spectra_are_good_and_a_hot_bin_is_bad_at_its_root_bin(client, trained):
    verdicts = [client.submit("py/spectrum", 1, take_ls(trained, "py/spectrum"), spectrum())
                for _ in range(10)]
    assert all(v.model_version >= 1 for v in verdicts)
    assert not [v for v in verdicts if v.quality == "BAD"]
    assert sum(v.quality == "GOOD" for v in verdicts) >= 7
    assert all(0 < v.p_value <= 1 for v in verdicts)

    # numpy index 30 is ROOT bin 31.
    v = client.submit("py/spectrum", 1, take_ls(trained, "py/spectrum"), hot_spectrum(30))
    assert v.quality == histguard.Quality.BAD
    assert v.p_value < 1e-5 and v.significance > 5
    assert v.top_bins[0].bin == 31 and v.top_bins[0].index == 30
    assert v.top_bins[0].pull > 10


def test_a_hot_cell_of_a_uhi_map_is_located_as_ix_iy(client, trained):
    values = occupancy()
    values[2, 4] += 3000  # ROOT bin (3, 5)
    v = client.submit("py/map", 1, take_ls(trained, "py/map"), uhi_map(values))
    assert v.quality == histguard.Quality.BAD
    assert v.top_bins[0].bin == (3, 5)
    assert v.top_bins[0].index == 2 * MAP_SHAPE[1] + 4


# ---- inspect ----

def test_inspect_gives_observed_expected_pulls_and_edges(client, trained):
    values = occupancy()
    ls = take_ls(trained, "py/map")
    sent = client.submit("py/map", 1, ls, uhi_map(values))
    ins = client.inspect("py/map", 1, ls)
    assert ins.observed.shape == MAP_SHAPE
    np.testing.assert_array_equal(ins.observed, values)
    assert ins.expected.shape == MAP_SHAPE and ins.pulls.shape == MAP_SHAPE
    assert ins.expected.sum() == pytest.approx(values.sum(), rel=1e-6)
    np.testing.assert_allclose(ins.x_edges, np.arange(MAP_SHAPE[0] + 1))
    np.testing.assert_allclose(ins.y_edges, np.arange(MAP_SHAPE[1] + 1) * 2.0)
    assert (ins.x_title, ins.y_title) == ("column", "row")
    assert ins.verdict.quality == sent.quality and ins.verdict.p_value == sent.p_value


def test_inspect_of_a_hot_bin_points_at_it(client, trained):
    ls = take_ls(trained, "py/spectrum")
    client.submit("py/spectrum", 1, ls, uhi_spectrum(hot_spectrum(12)))
    ins = client.inspect("py/spectrum", 1, ls)
    assert int(np.argmax(np.abs(ins.pulls))) == 12
    assert ins.worst_bins(1)[0][0] == 13  # ROOT numbering
    np.testing.assert_allclose(ins.x_edges, np.linspace(-20, 20, SPECTRUM_BINS + 1))
    assert ins.x_title == "t [ns]" and ins.y_edges is None


def test_inspect_of_a_learning_histogram_has_no_expectation(client):
    client.submit("py/inspect-learning", 3, 1, np.array([500.0, 600.0, 700.0]))
    ins = client.inspect("py/inspect-learning", 3, 1)
    assert ins.verdict.quality == "LEARNING"
    assert not ins.has_expectation and ins.expected is None and ins.pulls is None
    np.testing.assert_array_equal(ins.observed, [500, 600, 700])
    np.testing.assert_array_equal(ins.x_edges, [0, 1, 2, 3])  # no axis range sent: bin numbers


def test_inspect_of_a_histogram_never_sent_is_not_found(client, trained):
    with pytest.raises(histguard.NotFound, match="no stored histogram") as e:
        client.inspect("py/spectrum", 1, 10**9)
    assert not isinstance(e.value, histguard.UnknownMonitor)


# ---- rejected histograms and unknown monitors ----

def test_a_negative_bin_is_rejected_with_the_daemons_reason(client):
    bad = spectrum()
    bad[3] = -2
    with pytest.raises(histguard.RejectedHistogram, match="negative") as e:
        client.submit("py/rejected", 1, 1, bad)
    assert e.value.verdict.quality == histguard.Quality.REJECTED
    assert "contents[3] (ROOT bin 4)" in e.value.reason
    v = client.submit("py/rejected", 1, 1, bad, raise_on_reject=False)
    assert v.rejected and "negative" in v.detail


def test_a_bad_monitor_name_and_a_changed_binning_are_rejected(client, trained):
    with pytest.raises(histguard.RejectedHistogram, match="character not in"):
        client.submit("py/with space", 1, 1, spectrum())
    with pytest.raises(histguard.RejectedHistogram, match="binning"):
        client.submit("py/spectrum", 1, take_ls(trained, "py/spectrum"), np.ones(41) * 100)


@pytest.mark.parametrize("call", [
    lambda c: c.monitor("py/no-such-monitor"),
    lambda c: c.inspect("py/no-such-monitor", 1, 1),
    lambda c: c.label("py/no-such-monitor", 1, 1, "GOOD"),
    lambda c: c.retrain("py/no-such-monitor"),
    lambda c: c.rollback("py/no-such-monitor", 1),
])
def test_unknown_monitor_is_its_own_error(client, call):
    with pytest.raises(histguard.UnknownMonitor, match="py/no-such-monitor"):
        call(client)


# ---- bulk sends ----

def test_submit_many_keeps_the_order_and_reports_rejections_in_place(client, trained, capsys):
    lss = take_ls(trained, "py/spectrum", 6)
    items = [("py/spectrum", 1, ls, spectrum()) for ls in lss]
    negative = spectrum()
    negative[0] = -1
    items[3] = ("py/spectrum", 1, lss[3], negative)
    verdicts = client.submit_many(items, batch=4, progress=True)
    assert [v.lumisection for v in verdicts] == lss
    assert [v.rejected for v in verdicts] == [False, False, False, True, False, False]
    assert "sent 6/6" in capsys.readouterr().err
    with pytest.raises(histguard.RejectedHistogram):
        client.submit_many(items, raise_on_reject=True)


def test_stream_answers_every_histogram_in_order(client, trained, capsys):
    lss = take_ls(trained, "py/map", 30)
    items = [("py/map", 1, ls, uhi_map(occupancy())) for ls in lss]
    verdicts = list(client.stream(items, progress=True))
    assert [v.lumisection for v in verdicts] == lss
    assert all(v.monitor == "py/map" and v.model_version >= 1 for v in verdicts)
    assert "sent 30/30" in capsys.readouterr().err


def test_stream_stops_at_an_unreadable_item_and_says_why(client, trained):
    lss = take_ls(trained, "py/map", 3)
    items = [("py/map", 1, lss[0], uhi_map(occupancy())),
             ("py/map", 1, lss[1], np.zeros((2, 2, 2))),
             ("py/map", 1, lss[2], uhi_map(occupancy()))]
    got = []
    with pytest.raises(histguard.InvalidHistogram, match="3 dimensions"):
        for v in client.stream(items):
            got.append(v)
    assert [v.lumisection for v in got] == lss[:1]


def test_plain_json_items_name_their_own_monitor(client):
    doc = {"monitor": "py/plain", "run": 4, "lumisection": 9, "shape": [3],
           "contents": [100, 200, 300]}
    (v,) = client.submit_many([doc])
    assert (v.monitor, v.run, v.lumisection) == ("py/plain", 4, 9)


# ---- operators ----

def test_monitors_and_monitor_describe_the_models(client, trained):
    names = [m.monitor for m in client.monitors()]
    assert names == sorted(names) and {"py/spectrum", "py/map"} <= set(names)
    (only,) = client.monitors(prefix="py/ma")
    assert only.monitor == "py/map" and only.model_version >= 1 and only.window_size > 0
    info = client.monitor("py/map")
    assert info.shape == MAP_SHAPE and info.active_version >= 1
    assert info.versions[0].active and info.versions[0].sample_count > 0
    assert info.versions[0].created is not None
    assert info.thresholds.bad_p == pytest.approx(1e-5)
    assert info.last_verdict is not None and info.last_verdict.monitor == "py/map"


def test_labels_move_histograms_in_and_out_of_the_training_window(client, trained):
    ls = take_ls(trained, "py/spectrum")
    assert client.submit("py/spectrum", 1, ls, hot_spectrum()).quality == "BAD"
    assert not client.inspect("py/spectrum", 1, ls).in_training_window
    client.label("py/spectrum", 1, ls, "GOOD", comment="beam test", author="pytest")
    assert client.inspect("py/spectrum", 1, ls).in_training_window

    ls = take_ls(trained, "py/spectrum")
    assert client.submit("py/spectrum", 1, ls, spectrum()).quality != "BAD"
    assert client.inspect("py/spectrum", 1, ls).in_training_window
    client.label("py/spectrum", 1, range(ls, ls + 1), histguard.Quality.BAD)
    assert not client.inspect("py/spectrum", 1, ls).in_training_window

    with pytest.raises(ValueError, match="GOOD or BAD"):
        client.label("py/spectrum", 1, ls, "WARNING")
    with pytest.raises(histguard.NotFound):
        client.label("py/spectrum", 1, 10**9, "GOOD")


def test_retrain_then_rollback(client, trained):
    before = client.monitor("py/map").active_version
    result = client.retrain("py/map")
    after = client.monitor("py/map").active_version
    if result.accepted:
        assert result.version == after and after > before
    else:
        assert result.reason and after == before
    assert client.rollback("py/map", 1) == 1
    info = client.monitor("py/map")
    assert info.active_version == 1
    # The version an operator rolled back to is the anchor that trainings never drop.
    assert info.anchor_version == 1
    assert [v.version for v in info.versions if v.anchor] == [1]
    with pytest.raises(histguard.NotFound, match="keeps no version 99"):
        client.rollback("py/map", 99)


def test_approve_reject_and_accept_reach_the_daemon(client, trained):
    # Nothing is held on a steady monitor: approve and reject say so.
    for call in (client.approve, client.reject):
        with pytest.raises(histguard.HistguardError, match="holds no candidate") as e:
            call("py/map", comment="checked")
        assert e.value.code == "FAILED_PRECONDITION"
    with pytest.raises(histguard.UnknownMonitor):
        client.reject("py/no-such-monitor")
    assert client.accept("py/map", 7, 1, comment="new normal") > 0
    assert client.monitor("py/map").accepting == (7, 1)


def test_forget_deletes_a_monitors_models_and_frees_its_name(client):
    name = "py/forget"
    verdicts = client.submit_many([(name, 2, ls, spectrum()) for ls in range(1, 41)])
    assert len(verdicts) == 40
    ls, deadline = 41, time.monotonic() + 120
    while client.submit(name, 2, ls, spectrum()).model_version == 0:
        assert time.monotonic() < deadline, "no model trained in time"
        ls += 1
        time.sleep(0.2)
    assert client.monitor(name).active_version >= 1

    result = client.forget(name, comment="rebinned")
    assert result.versions_deleted >= 1 and result.histograms_deleted >= 41
    with pytest.raises(histguard.UnknownMonitor, match="py/forget"):
        client.monitor(name)
    with pytest.raises(histguard.UnknownMonitor):
        client.inspect(name, 2, 1)
    assert name not in [m.monitor for m in client.monitors(prefix="py/")]
    with pytest.raises(histguard.UnknownMonitor, match="py/forget"):
        client.forget(name)

    # The old model is gone with it: the name starts learning again, with a new binning.
    v = client.submit(name, 2, 1, np.full(SPECTRUM_BINS + 1, 50.0))
    assert v.quality == "LEARNING" and v.model_version == 0
    assert client.monitor(name).shape == (SPECTRUM_BINS + 1,)


def test_run_control_opens_and_ends_runs(client):
    assert client.start_run(41) == (41, True)
    assert client.end_run(41) == (41, False)
    # A late histogram of the ended run does not reopen it; one of the next run does.
    client.submit("py/run-control", 41, 1, spectrum())
    assert client.end_run(41) == (41, False)
    client.submit("py/run-control", 42, 1, spectrum())
    assert client.end_run(41) == (42, True), "run 42's histogram opened it; ending 41 leaves it"
    with pytest.raises(histguard.HistguardError, match="run numbers start at 1"):
        client.end_run(0)
