"""Upsampling, first-maximum pointing and mask/box statistics against slow references."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eval.metrics.boxes import pixel_ranges
from eval.metrics.heatmaps import MaskRule, first_argmax, heatmap_stats, masks, upsample


def reference_upsample(heatmaps, size):
    """The published scripts' call: trilinear over (T, 7, 7) -> (T, H, W), time unchanged."""
    width, height = size
    t = torch.from_numpy(np.asarray(heatmaps, np.float32))[None, None]
    out = F.interpolate(t, size=(len(heatmaps), height, width), mode="trilinear")
    return out[0, 0].numpy()


def slow_first_argmax(frame):
    best, where = -np.inf, None
    for y in range(frame.shape[0]):
        for x in range(frame.shape[1]):
            if frame[y, x] > best:
                best, where = frame[y, x], (x, y)
    return where


def test_upsample_equals_the_reference_trilinear_call_bit_for_bit():
    rng = np.random.default_rng(0)
    maps = rng.random((20, 7, 7)).astype(np.float32) / 784
    maps[3] = 0.0
    maps[4, 3, 3] = 1.0
    for size in [(640, 480), (640, 360), (480, 640), (33, 17)]:
        np.testing.assert_array_equal(upsample(maps, size), reference_upsample(maps, size))
        # a frame's result does not depend on the frames upsampled with it
        np.testing.assert_array_equal(upsample(maps[7:8], size)[0], reference_upsample(maps, size)[7])


def test_bilinear_call_agrees_at_benchmark_sizes_only():
    rng = np.random.default_rng(3)
    maps = torch.from_numpy(rng.random((20, 7, 7)).astype(np.float32) / 784)[:, None]
    for size in [(640, 480), (640, 360), (480, 640)]:
        bilinear = F.interpolate(maps, size=size[::-1], mode="bilinear", align_corners=False)[:, 0].numpy()
        np.testing.assert_array_equal(upsample(maps[:, 0].numpy(), size), bilinear)
    bilinear = F.interpolate(maps, size=(17, 33), mode="bilinear", align_corners=False)[:, 0].numpy()
    assert not np.array_equal(upsample(maps[:, 0].numpy(), (33, 17)), bilinear)


def test_first_argmax_is_row_major_first_maximum():
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 3, size=(30, 5, 6)).astype(np.float32)  # many ties
    frames[0] = 0.0  # all tied: (0, 0)
    frames[1] = 0.0
    frames[1, 2, 4] = frames[1, 3, 1] = 1.0  # (4, 2) comes first in row-major order
    got = first_argmax(frames)
    for frame, point in zip(frames, got):
        assert tuple(point) == slow_first_argmax(frame)
    assert tuple(got[0]) == (0, 0) and tuple(got[1]) == (4, 2)


def test_masks_raw_and_max_normalised():
    frame = np.array([[[0.0, 0.005, 0.02], [0.5, 1.0, -1.0]]], np.float32)
    np.testing.assert_array_equal(masks(frame, MaskRule(0.01, False))[0], [[0, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(masks(frame * 0.1, MaskRule(0.01, True))[0], [[0, 0, 1], [1, 1, 0]])
    np.testing.assert_array_equal(masks(-np.abs(frame), MaskRule(0.01, True))[0], np.zeros((2, 3)))


def slow_stats(heatmaps, size, boxes, rule, convention):
    out = []
    for heatmap, box in zip(heatmaps, boxes):
        frame = reference_upsample(heatmap[None], size)[0]
        region = masks(frame[None], rule)[0]
        x0, x1, y0, y1 = pixel_ranges([box], size, convention)[0]
        box_mask = np.zeros_like(region)
        if x1 >= x0 and y1 >= y0:
            box_mask[y0:y1 + 1, x0:x1 + 1] = True
        out.append((slow_first_argmax(frame), int(region.sum()), int((region & box_mask).sum())))
    return out


@pytest.mark.parametrize("rule,convention", [(MaskRule(0.01, True), "inclusive"), (MaskRule(1e-4, False), "reference")])
def test_heatmap_stats_match_per_frame_reference(rule, convention):
    rng = np.random.default_rng(2)
    size = (40, 30)
    base = rng.random((5, 7, 7)).astype(np.float32) ** 4 / 50
    heatmaps = base[rng.integers(0, 5, 70)]  # duplicates exercise the de-duplication
    heatmaps = np.concatenate([heatmaps, np.zeros((1, 7, 7), np.float32), rng.random((3, 7, 7)).astype(np.float32)])
    boxes = rng.uniform(-5, 45, (len(heatmaps), 4))
    boxes[-1] = [30, 20, 10, 5]  # empty box
    stats = heatmap_stats(heatmaps, size, pixel_ranges(boxes, size, convention), rule)
    for i, (point, area, inter) in enumerate(slow_stats(heatmaps, size, boxes, rule, convention)):
        assert tuple(stats.points[i]) == point
        assert stats.mask_area[i] == area and stats.inter[i] == inter


def test_heatmap_stats_one_frame_and_no_frame():
    one = np.zeros((1, 7, 7), np.float32)
    one[0, 6, 6] = 2.0
    stats = heatmap_stats(one, (640, 480), pixel_ranges([[600, 440, 639, 479]], (640, 480)), MaskRule(0.5, True))
    frame = reference_upsample(one, (640, 480))[0]
    assert tuple(stats.points[0]) == slow_first_argmax(frame)
    region = frame >= 0.5 * frame.max()
    assert stats.mask_area[0] == region.sum() and stats.inter[0] == region[440:, 600:].sum() > 0
    empty = heatmap_stats(np.zeros((0, 7, 7), np.float32), (640, 480), np.zeros((0, 4), np.int64), MaskRule(0.5, True))
    assert empty.points.shape == (0, 2) and empty.mask_area.shape == (0,)
