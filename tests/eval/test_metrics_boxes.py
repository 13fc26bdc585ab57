"""Box pixel sets, pointing, IoU and uniform expectations against per-pixel brute force."""
import numpy as np
import pytest

from eval.metrics.boxes import (
    iou_from_counts, pixel_ranges, points_in_boxes, range_area, range_intersection, uniform_expected_hit,
)


def slow_box_mask(box, size, convention):
    """Per-pixel loops, written from the definitions (reference: the published script's loop)."""
    width, height = size
    x1, y1, x2, y2 = box
    mask = np.zeros((height, width), bool)
    for y in range(height):
        for x in range(width):
            if convention == "inclusive":
                mask[y, x] = x1 <= x <= x2 and y1 <= y <= y2
            else:  # `for i in range(width): if i > xtl and i <= xbr + 1: box_arr[i][ytl:ybr+1] = 1`
                mask[y, x] = int(x1) < x <= int(x2) + 1 and int(y1) <= y <= int(y2)
    return mask


def mask_of_range(r, size):
    width, height = size
    mask = np.zeros((height, width), bool)
    x0, x1, y0, y1 = r
    if x1 >= x0 and y1 >= y0:
        mask[y0:y1 + 1, x0:x1 + 1] = True
    return mask


@pytest.mark.parametrize("convention", ["inclusive", "reference"])
def test_pixel_ranges_match_per_pixel_masks(convention):
    rng = np.random.default_rng(0)
    size = (13, 9)
    boxes = rng.uniform(-3, 16, size=(300, 4))
    boxes[:100] = np.round(boxes[:100])  # whole pixels
    boxes[100:150] = np.round(boxes[100:150] * 2) / 2  # .5 coordinates (YouCook2-Interactions)
    ranges = pixel_ranges(boxes, size, convention)
    for box, r, area in zip(boxes, ranges, range_area(ranges)):
        expected = slow_box_mask(box, size, convention)
        if convention == "reference" and (box[0] < 0 or box[1] < 0):
            continue  # negative starts are clipped (documented); the script's slicing would wrap
        np.testing.assert_array_equal(mask_of_range(r, size), expected)
        assert area == expected.sum()


def test_reference_mask_is_shifted_one_pixel_right():
    size = (10, 6)
    inclusive = mask_of_range(pixel_ranges([[2, 1, 5, 3]], size, "inclusive")[0], size)
    reference = mask_of_range(pixel_ranges([[2, 1, 5, 3]], size, "reference")[0], size)
    np.testing.assert_array_equal(reference[:, 1:], inclusive[:, :-1])
    assert not reference[:, 2].any() and reference[:, 6].any()


def test_range_intersection_matches_masks():
    rng = np.random.default_rng(1)
    size = (11, 7)
    a = pixel_ranges(rng.uniform(-2, 12, (200, 4)), size)
    b = pixel_ranges(rng.uniform(-2, 12, (200, 4)), size)
    for ra, rb, inter in zip(a, b, range_intersection(a, b)):
        assert inter == (mask_of_range(ra, size) & mask_of_range(rb, size)).sum()


def test_pointing_is_inclusive_on_the_raw_box():
    boxes = np.array([[10, 20, 30, 40]] * 5 + [[5, 5, 2, 9]])
    points = np.array([[10, 20], [30, 40], [9, 20], [30, 41], [20, 30], [3, 6]])
    np.testing.assert_array_equal(points_in_boxes(points, boxes), [True, True, False, False, True, False])
    # a box beyond the frame still contains points on the frame; .5 coordinates are not rounded
    assert points_in_boxes([[639, 479]], [[600, 400, 700, 629]])[0]
    assert not points_in_boxes([[10, 10]], [[10.5, 0, 20, 20]])[0]


def test_iou_from_counts_hand_cases():
    np.testing.assert_allclose(iou_from_counts([0, 4, 4, 0], [4, 4, 8, 0], [4, 4, 4, 0]), [0, 1, 0.5, 0])


def test_uniform_expected_hit_is_the_share_of_pixels_that_pass_the_test():
    rng = np.random.default_rng(2)
    size = (12, 8)
    boxes = np.concatenate([rng.uniform(-4, 15, (100, 4)), [[0, 0, 11, 7], [3, 3, 2, 5]]])
    grid = np.stack(np.meshgrid(np.arange(size[0]), np.arange(size[1])), -1).reshape(-1, 2)
    for box, expected in zip(boxes, uniform_expected_hit(boxes, size)):
        assert expected == pytest.approx(points_in_boxes(grid, np.tile(box, (len(grid), 1))).mean())
    assert uniform_expected_hit([[0, 0, 11, 7]], size)[0] == 1.0
    assert uniform_expected_hit([[3, 3, 2, 5]], size)[0] == 0.0
