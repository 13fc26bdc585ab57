"""Fixtures of the eval tests (the real annotation files come from the top-level `benchmarks_dir` fixture)."""
import json

import pytest
import torch

from eval.predictions import BACKGROUND

from tests.eval.helpers import CellPoints


@pytest.fixture(scope="session")
def cell_points():
    return CellPoints()


SIZE = (64, 48)  # the frame size of the small gyt files


@pytest.fixture()
def gyt_dir(tmp_path):
    """One video: "cut" over seconds 2..5 (boxes at 2, 3, 5; 4 unknown), "mix" over 8..9 (one inverted box)."""
    root = tmp_path / "groundingyoutube"
    root.mkdir()
    boxes = [{"second": s, "box": [30, 20, 50, 40], "step_name": "cut"} for s in (2, 3, 5)]
    boxes += [{"second": 8, "box": [10, 10, 5, 20], "step_name": "mix"}]
    (root / "box_anno.json").write_text(json.dumps({"v": boxes}))
    segments = [{"segment": [2, 5], "id": 0, "sentence": "cut"}, {"segment": [8, 9], "id": 1, "sentence": "mix"}]
    (root / "ground_seg_3to20.json").write_text(json.dumps({"v": segments}))
    (root / "id2wh_new.json").write_text(json.dumps({"v": list(SIZE)}))
    (root / "vid2step.json").write_text(json.dumps({"v": ["cut", "mix", BACKGROUND]}))
    return tmp_path


@pytest.fixture()
def mining_dir(tmp_path):
    root = tmp_path / "miningyoutube"
    (root / "annotations").mkdir(parents=True)
    srt = "1\n00:00:02,000 --> 00:00:05,000\ncrack_egg\n\n2\n00:00:05,000 --> 00:00:07,400\nstir\n\n" \
          "3\n00:00:09,100 --> 00:00:09,300\nsalt\n"
    (root / "annotations" / "a.srt").write_text(srt)
    (root / "annotations" / "b.srt").write_text("1\n00:00:00,000 --> 00:00:03,000\nstir\n")
    (root / "weakYouTube_dict.txt").write_text("crack_egg \nstir \nbackground \n")
    (root / "weakYouTube_length.txt").write_text("90\n60\n150\n")
    return tmp_path


@pytest.fixture()
def one_thread():
    """torch on one thread for the test (the sums of tiny models then do not depend on the machine's cores)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
