"""What the client makes of the objects a user gives it, checked without a daemon: ROOT JSON read
as the CLI reads it, numpy arrays and UHI objects, and how they go on the wire."""

import base64
import json
import os
import struct

import numpy as np
import pytest

import histguard
from histguard.types import root_bin
from conftest import FIXTURES, UhiAxis, UhiHistogram, uhi_map

EXPECTED = json.load(open(os.path.join(FIXTURES, "expected.json")))


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("form", ["path", "dict", "text"])
def test_root_json_fixtures_give_the_api_contents(name, form):
    path = os.path.join(FIXTURES, name)
    source = {"path": path, "dict": json.load(open(path)), "text": open(path).read()}[form]
    expected = EXPECTED[name]
    proto = histguard.to_histogram(source).to_proto("m", 1, 2)
    assert list(proto.shape) == expected["shape"]
    assert list(proto.contents) == pytest.approx(expected["contents"])
    if "underflow" in expected:
        assert proto.underflow == expected["underflow"]
        assert proto.overflow == expected["overflow"]
    if "edges" in expected:
        h = histguard.to_histogram(source)
        assert h.x_axis.edges.tolist() == expected["edges"]
        assert (proto.x_axis.low, proto.x_axis.high) == (expected["edges"][0],
                                                         expected["edges"][-1])


def test_root_axis_titles_and_ranges_travel():
    h = histguard.read_json(os.path.join(FIXTURES, "th2f_occupancy_compact.json"))
    proto = h.to_proto("pixel/occupancy", 1, 1)
    assert (proto.x_axis.low, proto.x_axis.high, proto.x_axis.title) == (0, 8, "column")
    assert (proto.y_axis.low, proto.y_axis.high, proto.y_axis.title) == (0, 6, "row")
    assert h.name == "pixel_occupancy" and h.title == "pixel occupancy"
    assert proto.entries == 4084
    # ROOT's bin (ix=2, iy=1) is fArray[2 + 10 * 1] = 82, at contents[ix-1, iy-1].
    assert h.contents[1, 0] == 82
    assert proto.contents[1 * 6 + 0] == 82


def th1f(array, nbins=4):
    return {"_typename": "TH1F", "fName": "h", "fTitle": "h;x title", "fNcells": nbins + 2,
            "fXaxis": {"fNbins": nbins, "fXmin": 0, "fXmax": 4, "fXbins": []},
            "fEntries": 99, "fArray": array}


def test_compressed_arrays_are_read():
    runs = {"$arr": "Float32", "len": 6, "p": 1, "v": [5, 6], "v1": 7, "n1": 2}
    h = histguard.to_histogram(th1f(runs))
    assert h.contents.tolist() == [5, 6, 7, 7] and h.overflow == 0
    raw = struct.pack("<4d", 1.5, 2.5, 3.5, 4.5)
    packed = {"$arr": "Float64", "len": 6, "o": 8, "b": base64.b64encode(raw).decode()}
    h = histguard.to_histogram(th1f(packed))
    assert h.contents.tolist() == [1.5, 2.5, 3.5, 4.5]
    assert h.x_axis.title == "x title"


@pytest.mark.parametrize("doc, message", [
    (dict(th1f([0] * 5)), "fArray has 5 values, expected fNcells=6"),
    (dict(th1f([0] * 6), _typename="TProfile"), "is a profile"),
    (dict(th1f([0] * 6), _typename="TH3F"), "3D histogram"),
    (dict(th1f([0, 1, None, 3, 4, 0])), "fArray[2] is null"),
    ({"shape": [2, 2], "contents": [1, 2, 3]}, "contents has 3 values, but shape [2, 2] needs 4"),
    ({"title": "x"}, "not a histogram"),
])
def test_malformed_json_is_refused_with_the_cli_message(doc, message):
    with pytest.raises(histguard.InvalidHistogram, match=message.replace("[", r"\[")
                       .replace("]", r"\]")):
        histguard.to_histogram(doc)


def test_nan_in_json_text_is_refused():
    with pytest.raises(histguard.InvalidHistogram, match="NaN and Infinity"):
        histguard.to_histogram('{"shape": [2], "contents": [1, NaN]}')


def test_missing_file_is_named(tmp_path):
    missing = tmp_path / "nope.json"
    with pytest.raises(histguard.InvalidHistogram, match="nope.json: no such file"):
        histguard.to_histogram(missing)


def test_plain_form_names_its_monitor_run_and_lumisection():
    h = histguard.to_histogram({"monitor": "a/b", "run": 7, "lumisection": 3, "shape": [3],
                                "contents": [1, 2, 3], "underflow": 1})
    assert (h.monitor, h.run, h.lumisection, h.entries) == ("a/b", 7, 3, 7)


def test_numpy_2d_goes_row_major_over_ix_iy():
    a = np.arange(12.0).reshape(3, 4)  # [ix, iy]
    proto = histguard.to_histogram(a).to_proto("m", 1, 1)
    assert list(proto.shape) == [3, 4]
    assert list(proto.contents) == a.ravel().tolist()
    assert proto.contents[2 * 4 + 1] == a[2, 1]


@pytest.mark.parametrize("bad, message", [
    (np.zeros((2, 2, 2)), "3 dimensions"),
    (np.zeros(0), "empty"),
    (np.array(["a", "b"]), "expected numbers"),
    (object(), "cannot read a object"),
])
def test_numpy_that_is_no_histogram_is_refused(bad, message):
    with pytest.raises(histguard.InvalidHistogram, match=message):
        histguard.to_histogram(bad)


def test_weighted_and_fractional_contents_are_sent_as_written():
    """As the CLI: the sums of weights go as contents; the daemon judges them."""
    values = np.array([0.5, 2.25, 1e-3])
    h = UhiHistogram(values, [UhiAxis([0, 1, 2, 3])], variances=values * 0.3)
    assert list(histguard.to_histogram(h).to_proto("m", 1, 1).contents) == values.tolist()


def test_uhi_axes_edges_titles_and_flow():
    values = np.arange(48.0).reshape(8, 6)
    flow = np.zeros((10, 8))
    flow[1:9, 1:7] = values
    flow[0, :] = 1      # x underflow row: 8 cells
    flow[1:, 0] = 2     # y underflow of the rest: 9 cells
    flow[9, 1:] = 4     # x overflow: 7 cells
    flow[1:9, 7] = 8    # y overflow: 8 cells
    h = uhi_map(values)
    h._flow = flow
    proto = histguard.to_histogram(h).to_proto("m", 1, 1)
    assert list(proto.shape) == [8, 6]
    assert list(proto.contents) == values.ravel().tolist()
    assert (proto.x_axis.low, proto.x_axis.high, proto.x_axis.title) == (0, 8, "column")
    assert (proto.y_axis.low, proto.y_axis.high, proto.y_axis.title) == (0, 12, "row")
    assert proto.underflow == 8 * 1 + 9 * 2
    assert proto.overflow == 7 * 4 + 8 * 8


def test_uhi_variable_edges_are_kept_on_the_client():
    edges = [0, 1, 2, 4, 8]
    h = histguard.to_histogram(UhiHistogram([1, 2, 3, 4], [UhiAxis(edges, "pT")]))
    assert h.x_axis.edges.tolist() == edges
    assert (h.x_axis.low, h.x_axis.high) == (0, 8)


def test_uhi_profiles_are_refused():
    with pytest.raises(histguard.InvalidHistogram, match="profile"):
        histguard.to_histogram(UhiHistogram([1, 2], [UhiAxis([0, 1, 2])], kind="MEAN"))


def test_top_bins_use_root_numbering():
    assert root_bin(0, (40,)) == 1
    assert root_bin(16, (8, 6)) == (3, 5)
    assert root_bin(47, (8, 6)) == (8, 6)
    assert root_bin(5, None) is None


def test_verdict_reads_top_bins_and_tolerates_missing_nuisances():
    from histguard import _stubs

    pb = _stubs.pb
    v = pb.Verdict(monitor="m", run=1, lumisection=2, quality=pb.QUALITY_BAD, score=12.5,
                   p_value=1e-9, model_version=3,
                   top_bins=[pb.BinPull(bin=16, pull=9.5), pb.BinPull(bin=0, pull=-4)])
    verdict = histguard.Verdict.from_proto(v, (8, 6))
    assert verdict.quality is histguard.Quality.BAD and verdict.quality == "BAD"
    assert [(b.bin, b.index, b.pull) for b in verdict.top_bins] == [((3, 5), 16, 9.5),
                                                                     ((1, 1), 0, -4)]
    assert verdict.significance == pytest.approx(9)
    assert verdict.nuisances == {}  # a map's verdict has none
    assert str(verdict) == "m run 1 ls 2: BAD score 12.5 p 1e-09 model v3 bins 3,5(+9.5) 1,1(-4.0)"


def test_verdict_reports_the_fitted_nuisances():
    from histguard import _stubs

    pb = _stubs.pb
    v = pb.Verdict(monitor="m", run=1, lumisection=2, quality=pb.QUALITY_GOOD, p_value=0.5,
                   score=1.0, model_version=2,
                   nuisances=[pb.Nuisance(name="gain", value=1.02, error=0.004),
                              pb.Nuisance(name="shift", value=-0.3, error=0.07)])
    verdict = histguard.Verdict.from_proto(v, (40,))
    assert verdict.nuisances == {"gain": 1.02, "shift": -0.3}
    assert "nuisances gain=1.02 shift=-0.3" in str(verdict)
