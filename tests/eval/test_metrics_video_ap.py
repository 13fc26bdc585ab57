"""Tube IoU and video AP against dense brute force and hand cases."""
import numpy as np
import pytest

from eval.metrics.video_ap import Detection, GtTube, ap_from_matches, class_ap, tube_iou_act, tube_iou_voxel, video_map

SIZE = (12, 9)  # (W, H) of the toy frames


def box_mask(box):
    m = np.zeros(SIZE[::-1], bool)
    x0, y0, x1, y1 = box
    m[y0:y1 + 1, x0:x1 + 1] = True
    return m


def random_case(rng, n_sec=14):
    """Dense 3D masks of a detection and a ground-truth tube (with gaps), plus their count summaries."""
    det_start, det_end = sorted(rng.integers(0, n_sec, 2))
    gt_start, gt_end = sorted(rng.integers(0, n_sec, 2))
    annotated = [t for t in range(gt_start, gt_end + 1) if rng.random() < 0.7] or [gt_start]
    boxes = {}
    for t in annotated:
        (x0, x1), (y0, y1) = sorted(rng.integers(0, 12, 2)), sorted(rng.integers(0, 9, 2))
        boxes[t] = box_mask((x0, y0, x1, y1)) if rng.random() < 0.9 else np.zeros(SIZE[::-1], bool)
    det_masks = {t: rng.random(SIZE[::-1]) < 0.4 for t in range(det_start, det_end + 1)}
    areas = np.array([boxes[t].sum() for t in annotated])
    gt = GtTube("v", "a", int(gt_start), int(gt_end), np.array(annotated), areas)
    det = Detection("v", "a", 0.5, int(det_start), int(det_end),
                    np.array([det_masks[t].sum() for t in range(det_start, det_end + 1)]),
                    np.array([(det_masks[t] & boxes[t]).sum() if t in boxes else 0
                              for t in range(det_start, det_end + 1)]))
    return det, gt, det_masks, boxes


def slow_voxel_iou(det_masks, boxes, gt_start, gt_end):
    """Voxels of the known seconds: annotated seconds of the tube, and detection seconds outside its span."""
    inter = union = 0
    for t in sorted(set(det_masks) | set(boxes)):
        if gt_start <= t <= gt_end and t not in boxes:
            continue  # unknown second
        p = det_masks.get(t, np.zeros(SIZE[::-1], bool))
        g = boxes.get(t, np.zeros(SIZE[::-1], bool))
        inter += (p & g).sum()
        union += (p | g).sum()
    return inter / union if union else 0.0


def slow_act_iou(det, gt, det_masks, boxes):
    lo, hi = max(det.start, gt.start), min(det.end, gt.end)
    if hi < lo:
        return 0.0
    temporal = (hi - lo + 1) / (max(det.end, gt.end) - min(det.start, gt.start) + 1)
    ious = []
    for t in range(lo, hi + 1):
        if t in boxes:
            u = (det_masks[t] | boxes[t]).sum()
            ious.append((det_masks[t] & boxes[t]).sum() / u if u else 0.0)
    return temporal * float(np.mean(ious)) if ious else 0.0


def test_tube_ious_match_dense_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(200):
        det, gt, det_masks, boxes = random_case(rng)
        assert tube_iou_voxel(det, gt) == pytest.approx(slow_voxel_iou(det_masks, boxes, gt.start, gt.end))
        assert tube_iou_act(det, gt) == pytest.approx(slow_act_iou(det, gt, det_masks, boxes))


def perfect(gt: GtTube, score=1.0, label=None):
    n = gt.end - gt.start + 1
    inter = np.zeros(n, np.int64)
    inter[gt.seconds - gt.start] = gt.box_area
    return Detection(gt.video_id, label or gt.label, score, gt.start, gt.end, inter.copy(), inter)


def test_full_and_zero_overlap():
    gt = GtTube("v", "a", 3, 6, np.array([3, 5, 6]), np.array([10, 12, 14]))
    assert tube_iou_voxel(perfect(gt), gt) == 1.0 and tube_iou_act(perfect(gt), gt) == 1.0
    far = Detection("v", "a", 1.0, 10, 11, np.array([5, 5]), np.array([0, 0]))
    assert tube_iou_voxel(far, gt) == 0.0 and tube_iou_act(far, gt) == 0.0
    empty = Detection("v", "a", 1.0, 3, 6, np.zeros(4, np.int64), np.zeros(4, np.int64))  # empty masks
    assert tube_iou_voxel(empty, gt) == 0.0 and tube_iou_act(empty, gt) == 0.0


def test_one_frame_tube():
    gt = GtTube("v", "a", 4, 4, np.array([4]), np.array([20]))
    half = Detection("v", "a", 1.0, 4, 4, np.array([20]), np.array([10]))
    assert tube_iou_voxel(half, gt) == pytest.approx(10 / 30)
    assert tube_iou_act(half, gt) == pytest.approx(10 / 30)


def slow_ap(dets, gts, th, variant):
    """ACT's videoAP loop, written out: rank by score, match the best remaining tube of the video."""
    fn = tube_iou_voxel if variant == "voxel" else tube_iou_act
    remaining = {id(g): g for g in gts}
    order = sorted(range(len(dets)), key=lambda i: -dets[i].score)
    pr = [(1.0, 0.0)]
    tp = fp = 0
    for i in order:
        d = dets[i]
        cands = [g for g in remaining.values() if g.video_id == d.video_id]
        ious = [fn(d, g) for g in cands]
        if ious and max(ious) >= th:
            del remaining[id(cands[int(np.argmax(ious))])]
            tp += 1
        else:
            fp += 1
        pr.append((tp / (tp + fp), tp / len(gts)))
    return sum((r1 - r0) * (p1 + p0) / 2 for (p0, r0), (p1, r1) in zip(pr, pr[1:]))


@pytest.mark.parametrize("variant", ["voxel", "act"])
def test_class_ap_matches_slow_act_loop(variant):
    rng = np.random.default_rng(1)
    for _ in range(30):
        gts, dets = [], []
        for v in range(3):
            for _ in range(rng.integers(1, 3)):
                det, gt, _, _ = random_case(rng)
                gts.append(GtTube(f"v{v}", "a", gt.start, gt.end, gt.seconds, gt.box_area))
                dets.append(Detection(f"v{v}", "a", float(rng.integers(0, 4)), det.start, det.end, det.mask_area,
                                      det.inter))  # integer scores: ties
            dets.append(perfect(gts[-1], float(rng.integers(0, 4))))
        got = class_ap(dets, gts, (0.1, 0.3, 0.5), variant)
        for th in (0.1, 0.3, 0.5):
            assert got[th] == pytest.approx(slow_ap(dets, gts, th, variant))


def test_ap_hand_cases():
    assert ap_from_matches(np.array([True, True]), 2) == 1.0
    # TP, FP, TP with 2 GT: PR points (1,0) (1,.5) (.5,.5) (2/3,1) -> .5 * 1 + .5 * (.5 + 2/3) / 2
    assert ap_from_matches(np.array([True, False, True]), 2) == pytest.approx(0.5 + 0.5 * (0.5 + 2 / 3) / 2)
    assert ap_from_matches(np.array([], bool), 3) == 0.0  # no detection
    assert ap_from_matches(np.array([False, False]), 1) == 0.0
    with pytest.raises(ValueError):
        ap_from_matches(np.array([True]), 0)


def test_video_map_oracle_is_one_and_classes_without_gt_are_ignored():
    gts = [GtTube("v1", "a", 0, 4, np.array([0, 2, 4]), np.array([9, 9, 9])),
           GtTube("v1", "b", 6, 8, np.array([7]), np.array([4])),
           GtTube("v2", "a", 1, 1, np.array([1]), np.array([5]))]
    dets = [perfect(g) for g in gts] + [Detection("v1", "zzz", 9.0, 0, 1, np.ones(2, np.int64), np.zeros(2, np.int64))]
    means, per_class = video_map(dets, gts, (0.1, 0.5), "voxel")
    assert means == {0.1: 1.0, 0.5: 1.0} and set(per_class) == {"a", "b"}
    means, per_class = video_map(dets[:1], gts, (0.5,), "act")  # class b undetected, a half found
    assert per_class["b"][0.5] == 0.0 and per_class["a"][0.5] == 0.5 and means[0.5] == 0.25


def test_ties_keep_input_order():
    gt = GtTube("v", "a", 0, 0, np.array([0]), np.array([4]))
    good, bad = perfect(gt, 1.0), Detection("v", "a", 1.0, 5, 5, np.array([3]), np.array([0]))
    assert class_ap([good, bad], [gt], (0.5,))[0.5] == 1.0
    # FP first: PR points (1, 0), (0, 0), (.5, 1) -> trapezoid 1 * (0 + .5) / 2
    assert class_ap([bad, good], [gt], (0.5,))[0.5] == pytest.approx(0.25)
