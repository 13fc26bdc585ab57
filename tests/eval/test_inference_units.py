"""Inference pieces without a store: config presets, the temporal mapping and runs, where seconds lie among
stored rows (CLIP frames, S3D windows), chunking and the reference padding, and heatmaps of a hand-made head."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from eval.inference.config import load_infer_config, query_text
from eval.inference.session import check_trained_space
from eval.inference.encoder import TextFeatures
from eval.inference.errors import InferenceError
from eval.inference.features import MissingFeatures, VideoFeatures
from eval.inference.spatial import SpanRequest, span_heatmaps
from eval.inference.temporal import label_runs, log_probabilities, map_similarity, pool_scores, smooth
from eval.metrics.alignment import log_softmax
from eval.metrics.heatmaps import first_argmax, upsample
from tests.eval.inference_helpers import cell_box, identity_head
from pipeline.config import ConfigError
from trainer.checkpoint import TrainedHead
from trainer.methods import build_head, load_train_config
from trainer.methods.stg.inference import EVAL_ATTENTION, HeadGrounder

CPU = torch.device("cpu")


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ------------------------------------------------------------------------------------------------ config
def test_presets_and_overrides():
    paper, reference = load_infer_config("paper"), load_infer_config("reference")
    assert (paper.spatial.attention, paper.spatial.padding, paper.spatial.chunk) == ("checkpoint", "mask", 16)
    assert (reference.spatial.attention, reference.spatial.padding) == ("reference", "black")
    assert reference.temporal == paper.temporal and paper.temporal.threshold == 0.5
    cfg = load_infer_config("paper", overrides=["temporal.threshold=0.7", "spatial.chunk=8"])
    assert cfg.temporal.threshold == 0.7 and cfg.spatial.chunk == 8
    with pytest.raises(ConfigError, match="temporal.thresh"):
        load_infer_config("paper", overrides=["temporal.thresh=1"])
    with pytest.raises(ConfigError, match="odd"):
        load_infer_config("paper", overrides=["temporal.smooth=2"])
    assert query_text("beat_egg", paper.text) == "beat egg"
    assert query_text("beat_egg", load_infer_config(overrides=["text.underscores=false",
                                                              "text.template=a video of {}"]).text) == \
        "a video of beat_egg"


# ---------------------------------------------------------------------------------------------- temporal
def test_mappings():
    sim = np.array([[0.2, -0.4], [0.6, 0.0]])
    cfg = load_infer_config().temporal
    for mapping, want in (("raw", sim), ("affine", (sim + 1) / 2), ("minmax", (sim + 0.4) / 1.0)):
        got = map_similarity(sim, load_infer_config(overrides=[f"temporal.mapping={mapping}"]).temporal, "cosine")
        np.testing.assert_allclose(got, want, atol=1e-12)
    soft = map_similarity(sim, load_infer_config(overrides=["temporal.mapping=softmax"]).temporal, "cosine")
    np.testing.assert_allclose(soft.sum(1), 1.0)
    assert soft[0, 0] > soft[0, 1] and soft[1, 0] > soft[1, 1]
    assert not map_similarity(np.full((3, 2), 0.3), cfg, "cosine").any()  # constant: nothing above background
    with pytest.raises(InferenceError, match="affine"):
        map_similarity(sim, load_infer_config(overrides=["temporal.mapping=affine"]).temporal, "dot")


def test_smooth_is_a_centred_moving_average():
    x = np.random.default_rng(0).random((9, 3))
    got = smooth(x, 5)
    padded = np.concatenate([x[:1], x[:1], x, x[-1:], x[-1:]])
    want = np.stack([padded[i:i + 5].mean(0) for i in range(9)])
    np.testing.assert_allclose(got, want)
    assert smooth(x, 1) is x


def test_background_column_and_runs():
    pool = ["b", "a", "background"]
    actions = np.array([[0.9, 0.1], [0.2, 0.4], [0.6, 0.55], [0.1, 0.7], [0.1, 0.8], [0.3, 0.2]])
    scores = pool_scores(actions, pool, 0.5)
    assert scores.dtype == np.float32 and (scores[:, 2] == 0.5).all()
    labels = np.array(pool)[np.argmax(scores, axis=1)].tolist()
    assert labels == ["b", "background", "b", "a", "a", "background"]
    assert label_runs(scores, pool) == [("b", 0, 0), ("b", 2, 2), ("a", 3, 4)]


def test_runs_match_a_naive_scan():
    rng = np.random.default_rng(1)
    pool = ["x", "background", "y"]
    for _ in range(50):
        scores = rng.random((int(rng.integers(0, 12)), 3)).astype(np.float32)
        names = [pool[i] for i in np.argmax(scores, axis=1)]
        want = []
        for t, name in enumerate(names):
            if name == "background":
                continue
            if want and want[-1][0] == name and want[-1][2] == t - 1:
                want[-1] = (name, want[-1][1], t)
            else:
                want.append((name, t, t))
        assert label_runs(scores, pool) == want


def test_log_probabilities_are_what_the_mining_scorer_reads():
    scores = np.random.default_rng(2).random((7, 4))
    logp = log_probabilities(scores, 0.1)
    np.testing.assert_allclose(np.log(np.exp(logp.astype(np.float64)).sum(1)), 0.0, atol=1e-6)
    np.testing.assert_allclose(log_softmax(logp), logp, atol=1e-5)
    np.testing.assert_array_equal(np.argmax(logp, 1), np.argmax(scores, 1))


# ---------------------------------------------------------------------------------------------- features
def _clip_video(times, n_dim: int = 2) -> VideoFeatures:
    times = np.asarray(times, np.float64)
    grid = np.zeros((len(times), 7, 7, n_dim), np.float16)
    grid[..., 0] = (np.arange(len(times)) + 1)[:, None, None]
    return VideoFeatures("v", times, times + 1, 1.0, 1, np.zeros((len(times), n_dim), np.float16), grid)


def test_clip_rows_are_the_frames_at_each_second():
    video = _clip_video([0, 1, 2, 3, 5])
    rows, cells = video.locate(np.array([0, 3, 5]))
    assert rows.tolist() == [0, 3, 4] and cells.tolist() == [0, 0, 0]
    assert video.covered_seconds() == 4
    with pytest.raises(MissingFeatures, match="second 4"):
        video.locate(np.array([3, 4]))


def test_s3d_seconds_fall_in_window_cells():
    # windows of 32 frames at 16 fps (2 s, T' = 4 cells of 0.5 s); the last window has 16 real frames
    times = np.array([0.0, 2.0, 4.0])
    video = VideoFeatures("v", times, times + np.array([2.0, 2.0, 1.0]), 2.0, 4,
                          np.zeros((3, 2), np.float16), np.zeros((3, 4, 7, 7, 2), np.float16))
    rows, cells = video.locate(np.array([0, 1, 2, 3, 4]))
    assert rows.tolist() == [0, 0, 1, 1, 2] and cells.tolist() == [0, 2, 0, 2, 0]
    assert video.covered_seconds() == 5


# ----------------------------------------------------------------------------------------------- spatial
class RowGrounder:
    """maps = the row id stored in feature 0 (black rows: -1) + 1000 x the chunk's valid rows: shows which
    row each map came from and the chunk it was computed in."""
    method, similarity_kind = "rows", "cosine"

    def maps(self, grid, frame_mask, texts):
        valid = frame_mask.sum(1).float().reshape(-1, *[1] * (grid.dim() - 2))
        return grid[..., 0] + 1000.0 * valid


def _texts(n: int = 1) -> TextFeatures:
    return TextFeatures(tuple(f"t{i}" for i in range(n)), np.zeros((n, 2), np.float32),
                        np.zeros((n, 3, 2), np.float32), np.ones((n, 3), bool))


def _values(heat: np.ndarray) -> list[float]:
    assert (heat == heat[:, :1, :1]).all()
    return heat[:, 0, 0].tolist()


def test_mask_padding_chunks_from_the_first_second():
    video, cfg = _clip_video(range(30)), load_infer_config(overrides=["spatial.chunk=4"]).spatial
    (heat, padding), = span_heatmaps(RowGrounder(), video, [SpanRequest(3, 12, 0, True)], _texts(), cfg, None, CPU)
    # seconds 3..12 = rows 3..12 (ids 4..13) in chunks [3-6], [7-10], [11-12] (2 valid rows, 2 masked)
    assert _values(heat) == [r + 1 + 1000 * (2 if r >= 11 else 4) for r in range(3, 13)] and padding is None


@pytest.mark.parametrize("end, padded", [(12, True), (11, False)])
def test_black_padding_reproduces_the_published_chunks(end, padded):
    video = _clip_video(range(30))
    cfg = load_infer_config("reference", overrides=["spatial.chunk=4"]).spatial
    black = {"grid": np.full((7, 7, 2), -1.0, np.float16)}
    (heat, padding), = span_heatmaps(RowGrounder(), video, [SpanRequest(3, end, 0, True)], _texts(), cfg, black,
                                     CPU)
    # the loaders decode seconds 3..end-1, every chunk is full (black rows are inputs): 1000 x 4
    assert _values(heat)[:-1] == [r + 1 + 4000 for r in range(3, end)]
    assert _values(heat)[-1] == end + 1 + 4000  # the last second in its own chunk
    if padded:   # 9 rows: the third chunk holds row 11 and three black rows; padding = the first black row
        assert padding is not None and (padding == -1 + 4000).all()
    else:        # 8 rows fill two chunks: no padded frame
        assert padding is None
    # without the reference flag (gyt tubes) black rows only fill the last chunk
    (plain, _), = span_heatmaps(RowGrounder(), video, [SpanRequest(3, end, 0, False)], _texts(), cfg, black, CPU)
    assert _values(plain) == [r + 1 + 4000 for r in range(3, end + 1)]


def test_s3d_seconds_read_their_window_cell():
    # 2-s windows of 4 cells; window w's cell j holds 10 w + j: second s is window s // 2, cell 2 (s % 2)
    times = np.arange(6) * 2.0
    grid = np.zeros((6, 4, 7, 7, 2), np.float16)
    grid[..., 0] = (10 * np.arange(6)[:, None] + np.arange(4)[None])[:, :, None, None]
    video = VideoFeatures("v", times, times + 2.0, 2.0, 4, np.zeros((6, 2), np.float16), grid)
    cfg = load_infer_config(overrides=["spatial.chunk=2"]).spatial
    (heat, _), = span_heatmaps(RowGrounder(), video, [SpanRequest(1, 8, 0, True)], _texts(), cfg, None, CPU)
    # seconds 1..8 -> windows 0..4 in chunks [0, 1], [2, 3], [4] (one valid row)
    want = [10 * (s // 2) + 2 * (s % 2) + 1000 * (1 if s // 2 == 4 else 2) for s in range(1, 9)]
    assert _values(heat) == want


def _peaked_case(dim: int = 16, cell: tuple[int, int] = (1, 5), frames: int = 5):
    """Words e0, e1 (x3) and frames whose cell (row, col) holds 3(e0 + e1); other cells small noise elsewhere."""
    rng = np.random.default_rng(3)
    words = np.zeros((1, 20, dim), np.float32)
    words[0, 0, 0] = words[0, 1, 1] = 3.0
    mask = np.zeros((1, 20), bool)
    mask[0, :2] = True
    texts = TextFeatures(("q",), np.zeros((1, dim), np.float32), words, mask)
    grid = np.zeros((frames, 7, 7, dim), np.float32)
    grid[..., 2:] = 0.3 * rng.standard_normal((frames, 7, 7, dim - 2))
    grid[:, cell[0], cell[1]] = 0
    grid[:, cell[0], cell[1], :2] = 3.0
    times = np.arange(frames, dtype=np.float64)
    video = VideoFeatures("v", times, times + 1, 1.0, 1, np.zeros((frames, dim), np.float16), grid.astype(np.float16))
    return video, texts


@pytest.mark.parametrize("attention", ["checkpoint", "paper", "reference"])
def test_rollout_of_a_hand_made_head_peaks_in_the_matching_cell(attention):
    video, texts = _peaked_case()
    cfg = load_infer_config(overrides=[f"spatial.attention={attention}", "device=cpu"])
    grounder = HeadGrounder(TrainedHead(identity_head(16), load_train_config(), {}, 1, "hand-made"), CPU,
                            attention=attention)
    if attention != "checkpoint":
        assert grounder.head.stack.modes["eval"] == EVAL_ATTENTION[attention]
    (heat, _), = span_heatmaps(grounder, video, [SpanRequest(0, 4, 0, True)], texts, cfg.spatial, None, CPU)
    assert heat.shape == (5, 7, 7)
    assert heat.sum() == pytest.approx(1.0, abs=1e-5)  # one chunk of 5 valid frames: one distribution
    for size in ((320, 240), (640, 360)):
        x1, y1, x2, y2 = cell_box(1, 5, size)
        points = first_argmax(upsample(heat, size))
        assert ((points[:, 0] >= x1) & (points[:, 0] <= x2) & (points[:, 1] >= y1) & (points[:, 1] <= y2)).all()


def test_masked_padding_leaves_the_maps_unchanged():
    video, texts = _peaked_case(frames=5)
    cfg = load_infer_config(overrides=["device=cpu"])
    head = identity_head(16)
    grounder = HeadGrounder(TrainedHead(head, load_train_config(), {}, 1, "hand-made"), CPU)
    (heat, _), = span_heatmaps(grounder, video, [SpanRequest(0, 4, 0, True)], texts, cfg.spatial, None, CPU)
    direct = head.rollout(torch.from_numpy(video.grid.astype(np.float32))[None],
                          torch.from_numpy(texts.words[0]), torch.from_numpy(texts.mask[0]))[0]
    np.testing.assert_allclose(heat, direct.numpy(), atol=1e-6)


def test_trained_space_must_match():
    spec = {"encoder": "clip", "model": "m", "weights_sha256": "a", "dims": {"grid": 4}, "grid": [7, 7],
            "preprocessing": {"normalize": "clip", "resize": "center-crop", "size": 224, "value_range": [0, 1]}}
    squash = {**spec, "preprocessing": {**spec["preprocessing"], "resize": "squash"}}
    assert check_trained_space(spec, squash, "s") \
        == ["preprocessing.resize: store has 'squash', wanted 'center-crop'"]
    with pytest.raises(InferenceError, match="weights_sha256"):
        check_trained_space(spec, {**spec, "weights_sha256": "b"}, "s")


def test_heads_without_a_global_branch_use_the_local_score():
    video, texts = _peaked_case()
    config = load_train_config(overrides=["method=comma", "comma.head.dim=16"])
    head = build_head(config, {k: 16 for k in ("global", "grid", "sentence", "words")})
    grounder = HeadGrounder(TrainedHead(head.eval(), config, {}, 1, "comma"), CPU)
    assert grounder.source == "local" and grounder.similarity_kind == "dot"
    sim = grounder.similarity(video, texts)
    grid = torch.from_numpy(video.grid.astype(np.float32))[:, None]
    want = head.local_scores(grid, torch.from_numpy(texts.words[0]), torch.from_numpy(texts.mask[0]))
    np.testing.assert_allclose(sim[:, 0], want.numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="no global branch"):
        HeadGrounder(TrainedHead(head, config, {}, 1, "comma"), CPU, source="global")
