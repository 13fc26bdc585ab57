"""The predictions file: round trip and validation errors that name the file, the group and the problem."""
import h5py
import numpy as np
import pytest

from eval.predictions import PredictionsError, PredictionsMeta, PredictionsWriter, read_predictions

META = PredictionsMeta("gyt", "ours", "paper", {"git": "abc", "config": {"fps": 1}})


def write_example(path):
    with PredictionsWriter(path, META) as w:
        w.add_spatial("vid-1", 3, 10, 12, "crack eggs", np.arange(3 * 49, dtype=np.float32).reshape(3, 7, 7),
                      padding=np.ones((7, 7), np.float32))
        w.add_points("vid-1", 3, 10, 12, "crack eggs", points=np.array([[1, 2], [3, 4], [5, 6]]),
                     boxes=np.zeros((3, 4)))
        w.add_points("vid_2", "0", 0, 4, "whisk", uniform=True)
        w.add_temporal("vid-1", ["crack eggs", "background"], np.array([[0.2, 0.5], [0.9, 0.1]]))


def test_round_trip(tmp_path):
    path = tmp_path / "p.h5"
    write_example(path)
    p = read_predictions(path)
    assert p.meta == META
    sp = p.spatial["vid-1"]["3"]
    assert (sp.start, sp.end, sp.query, sp.heatmaps.dtype) == (10, 12, "crack eggs", np.float32)
    np.testing.assert_array_equal(sp.heatmaps[2], np.arange(98, 147).reshape(7, 7))
    np.testing.assert_array_equal(sp.padding, np.ones((7, 7)))
    pt = p.points["vid-1"]["3"]
    np.testing.assert_array_equal(pt.points, [[1, 2], [3, 4], [5, 6]])
    assert pt.boxes.shape == (3, 4) and not pt.uniform
    uni = p.points["vid_2"]["0"]
    assert uni.uniform and uni.points is None and (uni.start, uni.end) == (0, 4)
    t = p.temporal["vid-1"]
    assert t.labels == ("crack eggs", "background")
    np.testing.assert_array_equal(t.predicted(), [1, 0])
    assert p.video_ids() == {"vid-1", "vid_2"}


@pytest.mark.parametrize("add,message", [
    (lambda w: w.add_spatial("v", 0, 0, 1, "q", np.zeros((2, 7))), "expected rank 3"),
    (lambda w: w.add_spatial("v", 0, 0, 1, "q", np.full((2, 7, 7), np.nan)), "NaN or infinite"),
    (lambda w: w.add_spatial("v", 0, 0, 2, "q", np.zeros((2, 7, 7))), "2 rows for seconds 0..2"),
    (lambda w: w.add_spatial("v", 0, 3, 1, "q", np.zeros((2, 7, 7))), "0 <= start <= end"),
    (lambda w: w.add_spatial("v", 0, 0, 1, "q", np.zeros((2, 7, 7)), padding=np.zeros((6, 7))), "trailing shape"),
    (lambda w: w.add_spatial("a/b", 0, 0, 1, "q", np.zeros((2, 7, 7))), "invalid HDF5 group name"),
    (lambda w: w.add_temporal("v", ["a", "b"], np.zeros((4, 3))), "2 labels for 3 score columns"),
    (lambda w: w.add_temporal("v", ["a", "b"], np.zeros((4, 2))), "must include 'background'"),
    (lambda w: w.add_temporal("v", ["a", "a", "background"], np.zeros((4, 3))), "duplicate labels"),
    (lambda w: w.add_temporal("v", ["background"], np.zeros(4)), "expected rank 2"),
    (lambda w: w.add_points("v", 0, 0, 1, "q", points=np.zeros((2, 3))), "trailing shape"),
    (lambda w: w.add_points("v", 0, 0, 1, "q"), "either points"),
    (lambda w: w.add_points("v", 0, 0, 1, "q", points=np.zeros((2, 2)), boxes=np.zeros((1, 4))), "1 boxes for 2"),
])
def test_writer_rejects_bad_items_and_leaves_no_file(tmp_path, add, message):
    path = tmp_path / "p.h5"
    with pytest.raises(PredictionsError, match=message) as err:
        with PredictionsWriter(path, META) as w:
            add(w)
    assert str(path) in str(err.value)
    assert not path.exists() and not list(tmp_path.iterdir())


def test_writer_rejects_duplicates_and_bad_meta(tmp_path):
    with pytest.raises(PredictionsError, match="written twice"):
        with PredictionsWriter(tmp_path / "a.h5", META) as w:
            w.add_temporal("v", ["background"], np.zeros((2, 1)))
            w.add_temporal("v", ["background"], np.zeros((2, 1)))
    with pytest.raises(PredictionsError, match="unknown task"):
        PredictionsWriter(tmp_path / "b.h5", PredictionsMeta("nope", "m"))


def corrupt(path, edit):
    write_example(path)
    with h5py.File(path, "r+") as f:
        edit(f)


@pytest.mark.parametrize("edit,where,message", [
    (lambda f: f.attrs.__setitem__("format", "other"), "/ attr 'format'", "not a groundcache-predictions file"),
    (lambda f: f.attrs.__setitem__("version", 9), "/ attr 'version'", "version 9"),
    (lambda f: f.attrs.__setitem__("metadata", "{oops"), "/ attr 'metadata'", "not JSON"),
    (lambda f: f["spatial/vid-1/3"].attrs.__delitem__("query"), "/spatial/vid-1/3", "missing attribute 'query'"),
    (lambda f: f["spatial/vid-1/3"].attrs.__setitem__("end", 20), "/spatial/vid-1/3", "3 rows for seconds 10..20"),
    (lambda f: (f["spatial/vid-1/3"].__delitem__("heatmaps"),
                f["spatial/vid-1/3"].create_dataset("heatmaps", data=np.full((3, 7, 7), np.inf))),
     "/spatial/vid-1/3/heatmaps", "NaN or infinite"),
    (lambda f: f["spatial/vid-1/3"].create_dataset("extra", data=1), "/spatial/vid-1/3", "unknown entries"),
    (lambda f: f["temporal/vid-1/scores"].attrs.__setitem__("labels", ["a", "background", "c"]),
     "/temporal/vid-1/scores attr 'labels'", "3 labels for 2 score columns"),
    (lambda f: f["points/vid_2/0"].attrs.__setitem__("distribution", "gaussian"), "/points/vid_2/0", "only 'uniform'"),
    (lambda f: f.create_group("extras"), "/", "unknown top-level entries"),
    (lambda f: f["spatial"].create_dataset("x", data=1), "/spatial/x", "expected a group"),
])
def test_reader_errors_name_file_group_and_problem(tmp_path, edit, where, message):
    path = tmp_path / "p.h5"
    corrupt(path, edit)
    with pytest.raises(PredictionsError, match=message) as err:
        read_predictions(path)
    assert err.value.path == str(path) and err.value.where == where


def test_reader_rejects_non_hdf5(tmp_path):
    path = tmp_path / "p.h5"
    path.write_text("not hdf5")
    with pytest.raises(PredictionsError, match="cannot open as HDF5"):
        read_predictions(path)
