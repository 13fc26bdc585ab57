"""The shared spatial scorer on hand cases: each reference-protocol quirk, missing predictions, points, priors."""
import numpy as np
import pytest

from eval.metrics.heatmaps import MaskRule
from eval.predictions import PointPrediction, Predictions, PredictionsMeta, SpatialPrediction
from eval.scorers.common import MaskOptions, MissingPredictionsError, ScoreError
from eval.scorers.spatial import SpatialProtocol, SpatialQuery, ground_truth, score_spatial, summarise_spatial

SIZE = (64, 48)
PAPER = SpatialProtocol(MaskOptions(MaskRule(0.01, True), "inclusive"), False, False)
REFERENCE = SpatialProtocol(MaskOptions(MaskRule(1e-4, False), "reference"), True, True)


class Sizes:
    def of(self, vid):
        return SIZE


def one_hot(row, col, value=1.0):
    m = np.zeros((7, 7), np.float32)
    m[row, col] = value
    return m


def predictions(spatial=(), points=()):
    sp, pt = {}, {}
    for p in spatial:
        sp.setdefault(p.video_id, {})[p.segment_id] = p
    for p in points:
        pt.setdefault(p.video_id, {})[p.segment_id] = p
    return Predictions("mem.h5", PredictionsMeta("gyt-spatial", "test"), sp, pt, {})


def segment(start, end, box, query="q", vid="v", sid="0"):
    return SpatialQuery(vid, sid, start, end, query), [(s, box) for s in range(start, end + 1)]


# a box around the bottom-right cell; cell (6, 6) points inside it, cell (0, 0) points at (0, 0) outside
BOX = (40, 30, 63, 47)
INSIDE, OUTSIDE = one_hot(6, 6), one_hot(0, 0)


def test_paper_scores_every_second_on_its_own_heatmap():
    gt = ground_truth([segment(10, 12, BOX)], Sizes())
    preds = predictions([SpatialPrediction("v", "0", 10, 12, "q", np.stack([INSIDE] * 3))])
    np.testing.assert_array_equal(score_spatial(gt, preds, PAPER, "fail").hit, [1, 1, 1])


def test_reference_scores_the_last_second_on_the_padded_frame():
    gt = ground_truth([segment(10, 12, BOX)], Sizes())
    heatmaps = np.stack([INSIDE] * 3)
    zeros = predictions([SpatialPrediction("v", "0", 10, 12, "q", heatmaps)])
    np.testing.assert_array_equal(score_spatial(gt, zeros, REFERENCE, "fail").hit, [1, 1, 0])  # zeros: (0, 0)
    padded = predictions([SpatialPrediction("v", "0", 10, 12, "q", heatmaps, padding=INSIDE)])
    np.testing.assert_array_equal(score_spatial(gt, padded, REFERENCE, "fail").hit, [1, 1, 1])


def test_reference_reuses_the_previous_result_when_the_clip_is_full():
    gt = ground_truth([segment(0, 16, BOX)], Sizes())  # end - start = 16: the last key is past the clips
    heatmaps = np.stack([OUTSIDE] * 15 + [INSIDE, OUTSIDE])
    preds = predictions([SpatialPrediction("v", "0", 0, 16, "q", heatmaps)])
    assert score_spatial(gt, preds, PAPER, "fail").hit[-1] == 0
    reference = score_spatial(gt, preds, REFERENCE, "fail")
    assert reference.hit[-1] == 1 and reference.iou[-1] == reference.iou[-2]


def test_reference_ground_truth_mask_is_shifted_one_pixel():
    gt = ground_truth([segment(0, 0, (0, 0, 9, 9))], Sizes())
    preds = predictions(points=[PointPrediction("v", "0", 0, 0, "q", np.array([[5.0, 5.0]]),
                                                np.array([[0.0, 0.0, 9.0, 9.0]]))])
    assert score_spatial(gt, preds, PAPER, "fail").iou[0] == 1.0
    assert score_spatial(gt, preds, REFERENCE, "fail").iou[0] == pytest.approx(90 / 110)


def test_reference_empty_shifted_mask_is_a_miss():
    edge = (63, 0, 63, 47)  # the shifted mask starts at x = 64, outside the frame
    gt = ground_truth([segment(0, 0, edge)], Sizes())
    preds = predictions(points=[PointPrediction("v", "0", 0, 0, "q", np.array([[63.0, 20.0]]))])
    assert score_spatial(gt, preds, PAPER, "fail").hit[0] == 1
    scores = score_spatial(gt, preds, REFERENCE, "fail")
    assert scores.hit[0] == 0 and scores.gt_pixels[0] == 0
    assert summarise_spatial(scores, gt, split_skips_empty=True)["frames_small"] == 0


def test_raw_threshold_versus_max_normalised():
    gt = ground_truth([segment(0, 0, BOX)], Sizes())
    tiny = predictions([SpatialPrediction("v", "0", 0, 0, "q", (INSIDE / 784)[None])])
    raw = SpatialProtocol(MaskOptions(MaskRule(0.01, False), "inclusive"), False, False)
    assert score_spatial(gt, tiny, raw, "fail").iou[0] == 0.0  # 1/784 < 0.01 everywhere: empty mask
    assert score_spatial(gt, tiny, PAPER, "fail").iou[0] > 0.2


def test_points_point_and_heatmaps_give_regions():
    gt = ground_truth([segment(0, 1, BOX)], Sizes())
    preds = predictions([SpatialPrediction("v", "0", 0, 1, "q", np.stack([INSIDE, INSIDE]))],
                        [PointPrediction("v", "0", 0, 1, "q", np.array([[0.0, 0.0], [50.0, 40.0]]))])
    scores = score_spatial(gt, preds, PAPER, "fail")
    heat_only = score_spatial(gt, predictions([preds.spatial["v"]["0"]]), PAPER, "fail")
    np.testing.assert_array_equal(scores.hit, [0, 1])
    np.testing.assert_array_equal(scores.iou, heat_only.iou)
    only_points = score_spatial(gt, predictions(points=[preds.points["v"]["0"]]), PAPER, "fail")
    assert np.isnan(only_points.iou).all()
    assert summarise_spatial(only_points, gt, False)["mean_iou"] is None


def test_uniform_prior_is_scored_by_expectation():
    gt = ground_truth([segment(0, 0, (0, 0, 15, 11)), segment(0, 0, (10, 10, 5, 20), sid="1")], Sizes())
    preds = predictions(points=[PointPrediction("v", s, 0, 0, "q", None, uniform=True) for s in "01"])
    scores = score_spatial(gt, preds, PAPER, "fail")
    np.testing.assert_allclose(scores.hit, [16 * 12 / (64 * 48), 0.0])
    np.testing.assert_allclose(scores.iou, [16 * 12 / (64 * 48), 0.0])  # the region is the whole frame


def test_missing_segments_fail_or_count_as_misses():
    gt = ground_truth([segment(0, 1, BOX), segment(5, 5, BOX, vid="w")], Sizes())
    preds = predictions([SpatialPrediction("v", "0", 0, 1, "q", np.stack([INSIDE] * 2))])
    with pytest.raises(MissingPredictionsError, match="w/0"):
        score_spatial(gt, preds, PAPER, "fail")
    scores = score_spatial(gt, preds, PAPER, "miss")
    summary = summarise_spatial(scores, gt, False)
    assert summary["frames"] == 3 and summary["pointing_accuracy"] == pytest.approx(200 / 3)
    assert summary["missing_videos"] == ["w"] and summary["missing_segments"] == ["w/0"]


def test_predictions_for_other_segments_are_rejected():
    gt = ground_truth([segment(0, 1, BOX)], Sizes())
    for bad in (SpatialPrediction("v", "0", 0, 1, "other query", np.stack([INSIDE] * 2)),
                SpatialPrediction("v", "0", 1, 2, "q", np.stack([INSIDE] * 2))):
        with pytest.raises(ScoreError, match="same annotation files"):
            score_spatial(gt, predictions([bad]), PAPER, "fail")


def test_empty_ground_truth_and_per_class():
    gt = ground_truth([segment(0, 0, BOX, query="a"), segment(1, 2, BOX, query="b", sid="1")], Sizes())
    preds = predictions([SpatialPrediction("v", "0", 0, 0, "a", INSIDE[None]),
                         SpatialPrediction("v", "1", 1, 2, "b", np.stack([INSIDE, OUTSIDE]))])
    summary = summarise_spatial(score_spatial(gt, preds, PAPER, "fail"), gt, False)
    assert summary["per_class"]["a"]["pointing_accuracy"] == 100 and summary["per_class"]["b"]["frames"] == 2
    assert summary["pointing_accuracy_class_mean"] == 75.0
    none = summarise_spatial(score_spatial(ground_truth([], Sizes()), preds, PAPER, "fail"),
                             ground_truth([], Sizes()), False)
    assert none["frames"] == 0 and none["pointing_accuracy"] is None
