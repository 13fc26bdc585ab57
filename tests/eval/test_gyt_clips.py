"""gyt-clips (STG paper Sec. 9.2, Table 7): the clip builder on the real GroundingYouTube files and on hand-made
ones, the scorer on hand cases and against a slow reference written here (end to end:
test_gyt_clips_end_to_end.py)."""
from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from eval import score
from eval.metrics.heatmaps import upsample
from eval.predictions import PredictionsMeta, PredictionsWriter, read_predictions
from eval.scorers.gyt_clips import GytClipsConfig, clip_plan, foreground_runs
from manifests.benchmarks import gyt_clips as builder
from manifests.benchmarks.gyt import GytSegment
from tests.eval.helpers import run_score

THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5)


# ------------------------------------------------------------------------------------------------ the builder
def _naive_clips(segments_json: dict) -> tuple[list[tuple], list[tuple]]:
    """(kept (vid, id, start, end), dropped) straight from the raw JSON: [s - L, e + L], L = e - s in 3..20,
    dropped when s - L < 0."""
    kept, dropped = [], []
    for vid, entries in segments_json.items():
        for entry in entries:
            s, e = entry["segment"]
            length = e - s
            if not 3 <= length <= 20:
                continue
            (kept if s - length >= 0 else dropped).append((vid, str(entry["id"]), s - length, e + length))
    return kept, dropped


def test_builder_on_the_real_files(benchmarks_dir, tmp_path, capsys):
    folder = benchmarks_dir / "groundingyoutube"
    raw = json.loads((folder / "ground_seg_3to20.json").read_text())
    kept, dropped = _naive_clips(raw)
    out = tmp_path / "clips.json"
    assert builder.main(["--benchmark-dir", str(benchmarks_dir), "--out", str(out)]) == 0
    assert f"({len(kept)} clips)" in capsys.readouterr().out
    written = json.loads(out.read_text())
    report, clips = written["report"], written["clips"]
    assert [(c["video_id"], c["clip_id"], c["start"], c["end"]) for c in clips] == kept
    assert len(clips) == report["clips"] == 2865  # the figure eval/README.md documents (paper: 2,895)
    assert report["segments"] == sum(map(len, raw.values())) == 2869
    assert sorted(report["dropped_items"]["before_start"]) == sorted(f"{v}/{i}" for v, i, *_ in dropped)
    lengths = [c["end"] - c["start"] for c in clips]
    assert min(lengths) == 9 and max(lengths) == 60  # the paper's 9-60 s
    assert all(c["end"] - c["start"] == 3 * (c["step"][1] - c["step"][0]) for c in clips)
    assert report["foreground_share_of_duration"] == pytest.approx(1 / 3)  # the paper's 33 %
    frames = [(c["step"][1] - c["step"][0] + 1) / (c["end"] - c["start"] + 1) for c in clips]
    assert report["foreground_share_of_frames"] == pytest.approx(np.mean(frames))
    # which clips have boxes of their step inside it, counted from the raw box file
    boxes = json.loads((folder / "box_anno.json").read_text())
    by_key = {(c["video_id"], c["clip_id"]): c for c in clips}
    with_boxes = sum(any(b["step_name"] == by_key[k]["query"] and
                         by_key[k]["step"][0] <= b["second"] <= by_key[k]["step"][1] for b in boxes.get(k[0], []))
                     for k in by_key)
    assert report["with_boxes"] == with_boxes < len(clips)
    # clamping keeps every step: the clamped clips start at 0, their step is more than a third of them, and
    # some are shorter than 9 s (outside the paper's range)
    assert builder.main(["--benchmark-dir", str(folder), "--out", str(out), "--edges", "clamp"]) == 0
    clamped = json.loads(out.read_text())["clips"]
    assert len(clamped) == len(kept) + len(dropped)
    cut = [c for c in clamped if (c["video_id"], c["clip_id"]) in {(v, i) for v, i, *_ in dropped}]
    assert len(cut) == len(dropped) and all(c["start"] == 0 for c in cut)
    assert all(c["end"] - c["start"] < 3 * (c["step"][1] - c["step"][0]) for c in cut)
    assert {c["video_id"] for c in clamped if c["end"] - c["start"] < 9} <= {c["video_id"] for c in cut}
    assert any(c["end"] - c["start"] < 9 for c in cut)
    # the scorer's plan is the builder's list
    plan, info = clip_plan(GytClipsConfig(str(benchmarks_dir)))
    assert [(t.clip.video_id, t.clip.clip_id, t.clip.start, t.clip.end) for t in plan] == kept
    assert info["dropped"]["before_start"] == len(dropped)


def _segments(*rows) -> dict[str, list[GytSegment]]:
    out: dict[str, list[GytSegment]] = {}
    for vid, sid, s, e in rows:
        out.setdefault(vid, []).append(GytSegment(vid, sid, s, e, f"step {sid}"))
    return out


def test_builder_rules_on_hand_made_segments():
    segs = _segments(("a", 0, 5, 5), ("a", 1, 6, 4), ("a", 2, 10, 12), ("a", 3, 2, 5), ("a", 4, 3, 6),
                     ("a", 5, 40, 61), ("a", 6, 30, 50), ("b", 0, 10, 14))
    got = builder.build_clips(segs)
    assert [(c.video_id, c.clip_id, c.start, c.end, c.step_start, c.step_end) for c in got.clips] == [
        ("a", "4", 0, 9, 3, 6), ("a", "6", 10, 70, 30, 50), ("b", "0", 6, 18, 10, 14)]
    assert got.dropped == {"step_length": ["a/0", "a/1", "a/2", "a/5"], "before_start": ["a/3"], "past_end": []}
    clamped = builder.build_clips(segs, "clamp")
    assert [(c.clip_id, c.start, c.end) for c in clamped.clips if c.video_id == "a"] == [
        ("3", 0, 8), ("4", 0, 9), ("6", 10, 70)]
    # durations: a frame at t exists for t < duration; b's clip ends at 18 and needs 18.x s
    assert builder.last_second(18.0) == 17 and builder.last_second(18.5) == 18
    dur = builder.build_clips(segs, durations={"a": 100.0, "b": 18.0})
    assert dur.dropped["past_end"] == ["b/0"] and [c.clip_id for c in dur.clips] == ["4", "6"]
    assert [(c.clip_id, c.end) for c in builder.build_clips(segs, "clamp", {"b": 18.0}).clips
            if c.video_id == "b"] == [("0", 17)]
    assert [c.clip_id for c in builder.build_clips(segs, steps=(1, 3)).clips] == ["2", "4"]
    report = builder.clip_report(got)
    assert report["clips"] == 3 and report["foreground_share_of_duration"] == pytest.approx(1 / 3)
    assert report["foreground_share_of_frames"] == pytest.approx(np.mean([4 / 10, 21 / 61, 5 / 13]))
    with pytest.raises(ValueError, match="edge rule"):
        builder.build_clips(segs, "wrap")


def test_builder_command_line_errors(tmp_path, capsys):
    folder = tmp_path / "groundingyoutube"
    folder.mkdir()
    (folder / "ground_seg_3to20.json").write_text(json.dumps({"v": [{"segment": [5, 9], "id": 0, "sentence": "x"}]}))
    (folder / "box_anno.json").write_text(json.dumps({"v": [{"second": 6, "box": [1, 1, 5, 5], "step_name": "x"}]}))
    out = tmp_path / "c.json"
    assert builder.main(["--benchmark-dir", str(tmp_path), "--out", str(out)]) == 0
    assert json.loads(out.read_text())["report"]["with_boxes"] == 1
    (folder / "bad.json").write_text(json.dumps({"v": [{"segment": [5], "id": 0, "sentence": "x"}]}))
    (folder / "dur.json").write_text(json.dumps({"v": -3}))
    for extra, message in ((["--segments", "bad.json"], "bad.json"), (["--durations", "dur.json"], "positive"),
                           (["--boxes", "absent.json"], "not found")):
        capsys.readouterr()
        assert builder.main(["--benchmark-dir", str(tmp_path), "--out", str(out), *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1


# ------------------------------------------------------------------------------------------------- the scorer
SIZE = (64, 48)
BOX = [30, 20, 50, 40]


@pytest.fixture()
def clips_dir(tmp_path):
    """Video "v": cut [4, 7] (boxes 4, 5, 7; 6 unknown; a "cut" box at 10, in the context: unknown) -> clip
    [1, 10]; mix [12, 15] (boxes every second) -> [9, 18]; pour [1, 4] would start at -2: dropped; stir
    [20, 23] without boxes -> [17, 26]."""
    root = tmp_path / "groundingyoutube"
    root.mkdir()
    boxes = [{"second": s, "box": BOX, "step_name": "cut"} for s in (4, 5, 7, 10)]
    boxes += [{"second": s, "box": BOX, "step_name": "mix"} for s in range(12, 16)]
    (root / "box_anno.json").write_text(json.dumps({"v": boxes}))
    segments = [{"segment": [4, 7], "id": 0, "sentence": "cut"}, {"segment": [12, 15], "id": 1, "sentence": "mix"},
                {"segment": [1, 4], "id": 2, "sentence": "pour"}, {"segment": [20, 23], "id": 3, "sentence": "stir"}]
    (root / "ground_seg_3to20.json").write_text(json.dumps({"v": segments}))
    (root / "id2wh_new.json").write_text(json.dumps({"v": list(SIZE)}))
    return tmp_path


def _write(path, groups, threshold=0.5):
    """groups: {clip id: (start, end, query, heatmaps, foreground)}."""
    with PredictionsWriter(path, PredictionsMeta("gyt-clips", "test")) as w:
        for cid, (a, b, query, heat, fg) in groups.items():
            w.add_spatial("v", cid, a, b, query, heat, foreground=fg, threshold=threshold)
    return path


def _clips(bench, cell_points, foreground, heat=None):
    """A group per clip of the plan: `foreground(clip) -> [n]` scores, heatmaps pointing into BOX (or `heat`)."""
    plan, _ = clip_plan(GytClipsConfig(str(bench)))
    inside = cell_points.heatmap_inside(BOX, SIZE)
    out = {}
    for t in plan:
        c = t.clip
        n = c.end - c.start + 1
        maps = np.repeat((inside if heat is None else heat)[None], n, 0)
        out[c.clip_id] = (c.start, c.end, c.query, maps, foreground(c).astype(np.float32))
    return out


def _on_step(c):
    return ((np.arange(c.start, c.end + 1) >= c.step_start) & (np.arange(c.start, c.end + 1) <= c.step_end)) * 1.0


def test_hand_cases(clips_dir, tmp_path, capsys, cell_points):
    base = ["gyt-clips", "--benchmark-dir", clips_dir, "--predictions"]
    exact = _write(tmp_path / "exact.h5", _clips(clips_dir, cell_points, _on_step))
    m = run_score(capsys, *base, exact)
    assert (m["clips"], m["frames"], m["gt_tubes"], m["clips_without_boxes"]) == (3, 7, 2, 1)
    assert m["dropped"]["before_start"] == 1 and m["same_step_context_seconds"] == 1
    assert m["iou_pointing"] == 100.0 and m["temporal_accuracy"] == 100.0 and m["pointing_accuracy"] == 100.0
    assert (m["foreground_precision"], m["foreground_recall"], m["mean_tiou"]) == (1.0, 1.0, 1.0)
    assert m["detections"] == 3 and m["map@0.1"] == 1.0  # stir's detection has no class with a tube: ignored
    # everything foreground: the known seconds of each clip join the union. cut [1, 10]: 8 known (6 unknown,
    # 10 the same step again); mix [9, 18]: 10; stir [17, 26]: the 6 context seconds. 7 annotated seconds hit.
    m = run_score(capsys, *base, _write(tmp_path / "all.h5", _clips(clips_dir, cell_points, lambda c: _on_step(c) + 1)))
    assert m["iou_pointing"] == pytest.approx(100 * 7 / (8 + 10 + 6)) and m["iou_pointing_accuracy"] == 100.0
    assert m["foreground_recall"] == 1.0 and m["predicted_foreground_share"] == 1.0
    assert m["foreground_precision"] == pytest.approx((4 + 4 + 4) / (9 + 10 + 10))  # cut's context 10 is unknown
    # the threshold of the file, or the one given: 0.5 in the file keeps the exact ones, 1.5 keeps none
    m = run_score(capsys, *base, exact, "threshold=1.5")
    assert m["iou_pointing"] == 0.0 and m["detections"] == 0 and m["map@0.1"] == 0.0
    assert m["pointing_accuracy"] == 100.0  # pointing whatever the foreground
    # a flat heatmap: the whole frame is the mask, so a perfect extent has voxel IoU = box / frame pixels
    flat = _write(tmp_path / "flat.h5", _clips(clips_dir, cell_points, _on_step, np.ones((7, 7), np.float32)))
    m = run_score(capsys, *base, flat)
    iou = (21 * 21) / (SIZE[0] * SIZE[1])
    assert m["mean_iou"] == pytest.approx(iou)
    assert [m[f"map@{t}"] for t in THRESHOLDS] == [1.0 if t <= iou else 0.0 for t in THRESHOLDS]
    assert m["map_mean"] == pytest.approx(np.mean([1.0 if t <= iou else 0.0 for t in THRESHOLDS]))
    assert m["map_pooled@0.1"] == 1.0 and m["map_act@0.1"] == 1.0


def test_missing_and_bad_groups(clips_dir, tmp_path, capsys, cell_points):
    groups = _clips(clips_dir, cell_points, _on_step)
    del groups["1"]
    path = _write(tmp_path / "part.h5", groups)
    args = ["gyt-clips", "--predictions", str(path), "--benchmark-dir", str(clips_dir)]
    assert score.main(args) == 2
    assert "v/1" in capsys.readouterr().err
    m = run_score(capsys, *args, "--missing", "miss")
    assert m["missing_clips"] == ["v/1"] and m["frames"] == 7 and m["iou_pointing"] == pytest.approx(100 * 3 / 7)
    assert m["map@0.1"] == 0.5  # cut found, mix missed
    wrong = _clips(clips_dir, cell_points, _on_step)
    a, b, q, heat, fg = wrong["0"]
    wrong["0"] = (a + 1, b, q, heat[1:], fg[1:])
    for name, data, message in (("span.h5", wrong, "the clip is 1..10"),):
        capsys.readouterr()
        assert score.main(["gyt-clips", "--predictions", str(_write(tmp_path / name, data)), "--benchmark-dir",
                           str(clips_dir)]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and len(err.splitlines()) == 1
    no_fg = tmp_path / "nofg.h5"
    with PredictionsWriter(no_fg, PredictionsMeta("gyt-clips", "test")) as w:
        for cid, (a, b, q, heat, _) in _clips(clips_dir, cell_points, _on_step).items():
            w.add_spatial("v", cid, a, b, q, heat)
    assert score.main(["gyt-clips", "--predictions", str(no_fg), "--benchmark-dir", str(clips_dir)]) == 2
    assert "no 'foreground' dataset" in capsys.readouterr().err


def test_foreground_in_the_file_is_checked(tmp_path):
    from eval.predictions import PredictionsError
    with pytest.raises(PredictionsError, match="2 scores for 3 heatmaps"):
        with PredictionsWriter(tmp_path / "a.h5", PredictionsMeta("gyt-clips", "t")) as w:
            w.add_spatial("v", "0", 0, 2, "q", np.zeros((3, 7, 7)), foreground=np.zeros(2))
    with pytest.raises(PredictionsError, match="without a 'foreground'"):
        with PredictionsWriter(tmp_path / "b.h5", PredictionsMeta("gyt-clips", "t")) as w:
            w.add_spatial("v", "0", 0, 2, "q", np.zeros((3, 7, 7)), threshold=0.5)
    path = tmp_path / "c.h5"
    with PredictionsWriter(path, PredictionsMeta("gyt-clips", "t")) as w:
        w.add_spatial("v", "0", 0, 2, "q", np.zeros((3, 7, 7)), foreground=[0.1, 0.9, 0.2], threshold=0.5)
    sp = read_predictions(path).spatial["v"]["0"]
    assert sp.threshold == 0.5 and sp.foreground.tolist() == pytest.approx([0.1, 0.9, 0.2])
    with h5py.File(path, "r+") as f:
        f["spatial/v/0"].attrs["threshold"] = np.nan
    with pytest.raises(PredictionsError, match="finite number"):
        read_predictions(path)


def test_foreground_runs():
    assert foreground_runs(np.array([0, 1, 1, 0, 1, 0, 0, 1], bool)) == [(1, 2), (4, 4), (7, 7)]
    assert foreground_runs(np.zeros(3, bool)) == []


# ---------------------------------------------------------------------------------------- the slow reference
def _reference(bench: str, preds, size, thr_mask=0.01) -> dict:
    """Every figure from scratch: per clip and second, explicit pixel masks, then greedy AP by class."""
    plan, _ = clip_plan(GytClipsConfig(bench))
    ys, xs = np.mgrid[0:size[1], 0:size[0]]
    correct = union = gt_total = hits_fg = 0
    dets, gts = [], []
    for t in plan:
        c = t.clip
        sp = preds.spatial["v"][c.clip_id]
        maps = upsample(sp.heatmaps, size)
        boxes = {int(s): b for s, b in zip(t.frame_seconds, t.frame_boxes)}
        fg = sp.foreground >= sp.threshold
        pix, area = {}, {}
        for j, s in enumerate(range(c.start, c.end + 1)):
            flat = int(np.argmax(maps[j]))
            px, py = flat % size[0], flat // size[0]
            mask = maps[j] >= thr_mask * maps[j].max()
            area[s] = int(mask.sum())
            gt = s in boxes
            if gt:
                x1, y1, x2, y2 = boxes[s]
                box = (xs >= x1) & (xs <= x2) & (ys >= y1) & (ys <= y2)
                pix[s] = (mask, box)
                hit = x1 <= px <= x2 and y1 <= py <= y2
                gt_total += 1
                correct += int(fg[j] and hit)
                hits_fg += int(fg[j])
            in_step = c.step_start <= s <= c.step_end
            same = (not in_step) and (t.same_step[j])
            known = gt or (not in_step and not same)
            union += int(gt or (fg[j] and known))
            pix.setdefault(("m", s), mask)
        located = [int(s) for s in t.located]
        if located:
            gts.append((c.clip_id, c.query, c.step_start, c.step_end, located, pix))
        j = 0
        while j < len(fg):
            if fg[j]:
                k = j
                while k + 1 < len(fg) and fg[k + 1]:
                    k += 1
                dets.append((c.clip_id, c.query, float(sp.foreground[j:k + 1].mean()), c.start + j, c.start + k,
                             pix))
                j = k + 1
            else:
                j += 1

    def voxel(d, g):
        _, _, _, ds, de, dpix = d
        _, _, gs, ge, located, gpix = g
        inter = uni = 0
        for s in located:
            mask, box = gpix[s]
            pred = mask if ds <= s <= de else np.zeros_like(mask)
            inter += int((pred & box).sum())
            uni += int((pred | box).sum())
        for s in range(ds, de + 1):
            if s < gs or s > ge:
                uni += int(dpix[("m", s)].sum())
        return inter / uni if uni else 0.0

    def act(d, g):
        _, _, _, ds, de, _ = d
        _, _, gs, ge, located, gpix = g
        overlap = min(de, ge) - max(ds, gs) + 1
        inside = [s for s in located if ds <= s <= de]
        if overlap <= 0 or not inside:
            return 0.0
        ious = []
        for s in inside:
            mask, box = gpix[s]
            u = int((mask | box).sum())
            ious.append(int((mask & box).sum()) / u if u else 0.0)
        return overlap / (max(de, ge) - min(ds, gs) + 1) * float(np.mean(ious))

    def mean_ap(fn, th, pooled=False):
        classes = sorted({g[1] for g in gts}) if not pooled else [None]
        aps = []
        for label in classes:
            cg = [g for g in gts if pooled or g[1] == label]
            cd = sorted([d for d in dets if pooled or d[1] == label], key=lambda d: -d[2])
            free, tp = [True] * len(cg), []
            for d in cd:
                best, bi = -1.0, -1
                for i, g in enumerate(cg):
                    if free[i] and g[0] == d[0]:
                        v = fn(d, g)
                        if v > best:
                            best, bi = v, i
                ok = bi >= 0 and best >= th
                if ok:
                    free[bi] = False
                tp.append(ok)
            prec, rec, ap, n_tp = 1.0, 0.0, 0.0, 0
            for i, ok in enumerate(tp):
                n_tp += ok
                p, r = n_tp / (i + 1), n_tp / len(cg)
                ap += (r - rec) * (p + prec) / 2
                prec, rec = p, r
            aps.append(ap)
        return float(np.mean(aps))

    out = {"iou_pointing": 100 * correct / union, "temporal_accuracy": 100 * hits_fg / gt_total}
    for th in THRESHOLDS:
        out[f"map_voxel@{th}"] = mean_ap(voxel, th)
        out[f"map_act@{th}"] = mean_ap(act, th)
        out[f"map_pooled@{th}"] = mean_ap(voxel, th, pooled=True)
    return out


def test_scores_match_a_slow_reference(tmp_path, capsys):
    rng = np.random.default_rng(7)
    size = (32, 24)
    root = tmp_path / "groundingyoutube"
    root.mkdir()
    segments, boxes, at = [], {}, 0
    for i in range(8):
        length = int(rng.integers(3, 6))
        start = at + length + int(rng.integers(0, 3))
        step = ["cut", "mix", "pour"][i % 3]
        segments.append({"segment": [start, start + length], "id": i, "sentence": step})
        # most seconds of the step boxed; sometimes the step boxed again just before it (context, unknown)
        for s in [*range(start, start + length + 1), start - 1]:
            if s not in boxes and rng.random() < (0.8 if s >= start else 0.5):
                x1, y1 = int(rng.integers(0, 12)), int(rng.integers(0, 9))
                boxes[s] = {"second": s, "box": [x1, y1, x1 + int(rng.integers(8, 20)),
                                                 y1 + int(rng.integers(6, 15))], "step_name": step}
        at = start + length - int(rng.integers(0, 3))  # overlapping clips, shared context
    (root / "box_anno.json").write_text(json.dumps({"v": [boxes[s] for s in sorted(boxes)]}))
    (root / "ground_seg_3to20.json").write_text(json.dumps({"v": segments}))
    (root / "id2wh_new.json").write_text(json.dumps({"v": list(size)}))
    plan, _ = clip_plan(GytClipsConfig(str(tmp_path)))
    assert len(plan) == 8 and any(t.same_step.any() for t in plan)
    groups = {}
    for t in plan:
        c = t.clip
        n = c.end - c.start + 1
        fg = rng.random(n).astype(np.float32) * 0.6 + 0.7 * _on_step(c).astype(np.float32) * (rng.random(n) < 0.8)
        groups[c.clip_id] = (c.start, c.end, c.query, rng.random((n, 7, 7)).astype(np.float32) ** 4, fg)
    path = _write(tmp_path / "r.h5", groups)
    m = run_score(capsys, "gyt-clips", "--predictions", path, "--benchmark-dir", tmp_path)
    want = _reference(str(tmp_path), read_predictions(path), size)
    assert m["detections"] > len(plan)  # several runs per clip
    assert 0 < want["iou_pointing"] < 100 and any(0 < want[f"map_voxel@{t}"] < 1 for t in THRESHOLDS)
    for key, value in want.items():
        assert m[key] == pytest.approx(value, abs=1e-9), key
    assert m["map@0.3"] == m["map_voxel@0.3"] and m["map_mean"] == pytest.approx(
        np.mean([want[f"map_voxel@{t}"] for t in THRESHOLDS]))
