"""A bad --s3d-weights / --s3d-dict / --clip-model path ends extraction with one `error:` line naming the
path and the problem (exit 2), before anything is written; the loaders raise a typed ValueError for it."""
from __future__ import annotations

import numpy as np
import pytest

from manifests.build import main as build_manifest
from pipeline.encoders import ClipLoadError, DictionaryError, EncoderLoadError, S3DLoadError, build_encoders
from pipeline.encoders.weights import one_line, path_problem
from pipeline.extract import main as extract_main
from tests.media import colour_video


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("world")
    (root / "videos").mkdir()
    colour_video(root / "videos" / "v.mp4", seconds=1, width=32, height=32)
    assert build_manifest(["folder", str(root / "videos"), "--out", str(root / "manifest")]) == 0
    return root / "manifest"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    root = tmp_path_factory.mktemp("weights")
    np.save(root / "s3d_dict.npy", np.array(["cut", "the"]))
    (root / "a_file.bin").write_bytes(b"x")
    (root / "a_dir").mkdir()
    return root


def _cases(root):
    missing, folder, file, dictionary = root / "missing.pth", root / "a_dir", root / "a_file.bin", root / "s3d_dict.npy"
    return {
        "s3d weights missing": (["--encoders", "s3d", "--s3d-weights", str(missing), "--s3d-dict", str(dictionary)],
                                [f"S3D weights {missing} not found", "--s3d-weights"]),
        "s3d weights a directory": (["--encoders", "s3d", "--s3d-weights", str(folder), "--s3d-dict", str(dictionary)],
                                    [f"S3D weights {folder} is a directory, not a file"]),
        "both s3d paths missing": (["--encoders", "s3d", "--s3d-weights", str(missing), "--s3d-dict",
                                    str(root / "nodict.npy")],
                                   [f"{missing} not found", f"{root / 'nodict.npy'} not found"]),
        "clip directory missing": (["--encoders", "clip", "--clip-model", str(root / "clip")],
                                   [f"CLIP model directory {root / 'clip'} not found", "--clip-model"]),
        "clip model a file": (["--encoders", "clip", "--clip-model", str(file)],
                              [f"CLIP model directory {file} is a file, not a directory"]),
    }


@pytest.mark.parametrize("case", ["s3d weights missing", "s3d weights a directory", "both s3d paths missing",
                                  "clip directory missing", "clip model a file"])
def test_bad_weights_path_is_one_error_line_and_exit_2(manifest, paths, tmp_path, capsys, case):
    args, expected = _cases(paths)[case]
    store = tmp_path / "store"
    capsys.readouterr()
    code = extract_main(["--manifest", str(manifest), "--store", str(store), "--preset", "vit-b-32", *args])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert all(text in lines[0] for text in expected), lines[0]
    assert "Traceback" not in err and not store.exists()


def test_loader_errors_are_typed_value_errors(paths):
    assert issubclass(EncoderLoadError, ValueError)
    assert all(issubclass(e, EncoderLoadError) for e in (ClipLoadError, S3DLoadError, DictionaryError))
    dictionary = str(paths / "s3d_dict.npy")
    with pytest.raises(S3DLoadError, match="missing.pth not found"):
        build_encoders(["s3d"], "vit-b-32", s3d_weights=str(paths / "missing.pth"), s3d_dict=dictionary)
    empty = paths / "empty.pth"
    empty.write_bytes(b"")
    with pytest.raises(S3DLoadError, match="empty.pth is empty"):
        build_encoders(["s3d"], "vit-b-32", s3d_weights=str(empty), s3d_dict=dictionary)


def test_path_problem_names_each_case(paths):
    assert path_problem(paths / "s3d_dict.npy") is None and path_problem(paths / "a_dir", directory=True) is None
    assert path_problem(paths / "nope") == "not found"
    assert path_problem(paths / "a_dir") == "is a directory, not a file"
    assert path_problem(paths / "a_file.bin", directory=True) == "is a file, not a directory"
    link = paths / "dangling"
    link.symlink_to(paths / "nowhere")
    assert path_problem(link) == "is a broken symbolic link"


def test_library_errors_are_folded_onto_one_line():
    error = OSError("We couldn't connect.\nCheck your connection.")
    assert one_line(error) == "We couldn't connect. Check your connection."
    assert len(one_line("x" * 1000)) == 400
