"""The ranked groups of the predictions file (/retrieval, /moments): round trip, version 2 only when they are
present, validation errors that name the group, and version-1 files read as before."""
import h5py
import numpy as np
import pytest

from eval.predictions import PredictionsError, PredictionsMeta, PredictionsWriter, read_predictions


def test_round_trip_and_version(tmp_path):
    path = tmp_path / "p.h5"
    with PredictionsWriter(path, PredictionsMeta("retrieval", "coot")) as w:
        w.add_retrieval("clip", ["v1/0", "v1/1", "v2/0"], ["v2/0", "v1/0", "v1/1"], np.arange(9.0).reshape(3, 3))
        w.add_retrieval("video", ["v1", "v2"], ["v1", "v2"], np.eye(2))
        w.add_moments("v1", 0, "crack eggs", np.array([[1.0, 4.0, 0.9], [0.0, 2.0, 0.9], [3.0, 9.0, 0.2]]))
        w.add_moments("v1", "1", "whisk", np.zeros((0, 3)))
    p = read_predictions(path)
    clip = p.retrieval["clip"]
    assert clip.text_ids == ("v1/0", "v1/1", "v2/0") and clip.video_ids == ("v2/0", "v1/0", "v1/1")
    np.testing.assert_array_equal(clip.scores, np.arange(9.0).reshape(3, 3))
    m = p.moments["v1"]["0"]
    assert m.query == "crack eggs" and m.proposals.dtype == np.float32 and m.proposals.shape == (3, 3)
    assert p.moments["v1"]["1"].proposals.shape == (0, 3) and p.video_ids() == {"v1"}
    with h5py.File(path) as f:
        assert f.attrs["version"] == 2
    old = tmp_path / "old.h5"
    with PredictionsWriter(old, PredictionsMeta("mining", "x")) as w:
        w.add_temporal("v", ["a", "background"], np.zeros((3, 2)))
    with h5py.File(old) as f:
        assert f.attrs["version"] == 1                                    # files without ranked groups unchanged
    assert read_predictions(old).retrieval == {} and read_predictions(old).moments == {}


@pytest.mark.parametrize("add,message", [
    (lambda w: w.add_retrieval("shot", ["a"], ["a"], np.eye(1)), "unknown level 'shot'"),
    (lambda w: w.add_retrieval("clip", ["a", "a"], ["a", "b"], np.eye(2)), "duplicate ids"),
    (lambda w: w.add_retrieval("clip", ["a", ""], ["a", "b"], np.eye(2)), "empty id"),
    (lambda w: w.add_retrieval("clip", ["a", "b"], ["a", "b"], np.eye(3)), r"shape \(3, 3\) for 2 text ids"),
    (lambda w: w.add_retrieval("clip", ["a"], ["a"], np.full((1, 1), np.inf)), "NaN or infinite"),
    (lambda w: w.add_moments("v", 0, "q", np.array([[0, 1, 0.1], [0, 2, 0.5]])), "must be ranked"),
    (lambda w: w.add_moments("v", 0, "q", np.array([[2, 1, 0.1]])), "0 <= start < end"),
    (lambda w: w.add_moments("v", 0, "q", np.array([[-1, 1, 0.1]])), "0 <= start < end"),
    (lambda w: w.add_moments("v", 0, "q", np.zeros((2, 2))), "trailing shape"),
    (lambda w: w.add_moments("a/b", 0, "q", np.zeros((0, 3))), "invalid HDF5 group name"),
])
def test_writer_rejects_bad_ranked_items(tmp_path, add, message):
    path = tmp_path / "p.h5"
    with pytest.raises(PredictionsError, match=message):
        with PredictionsWriter(path, PredictionsMeta("moments", "x")) as w:
            add(w)
    assert not path.exists()


def test_reader_refuses_ranked_groups_in_a_version_1_file_and_bad_layouts(tmp_path):
    path = tmp_path / "p.h5"
    with PredictionsWriter(path, PredictionsMeta("moments", "x")) as w:
        w.add_moments("v", 0, "q", np.array([[0, 1, 0.1]]))
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 1
    with pytest.raises(PredictionsError, match=r"groups \['moments'\] need version 2"):
        read_predictions(path)
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 2
        f["moments/v/0"].create_dataset("extra", data=np.zeros(2))
    with pytest.raises(PredictionsError, match="/moments/v/0: expected exactly the datasets"):
        read_predictions(path)
    with h5py.File(path, "a") as f:
        f.attrs["version"] = 3
    with pytest.raises(PredictionsError, match="version 3; this reader knows"):
        read_predictions(path)
