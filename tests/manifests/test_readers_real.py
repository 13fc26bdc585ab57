"""Every benchmark reader on the real annotation files: the counts of ../shared/benchmarks/README.md."""
from __future__ import annotations

from collections import Counter

import pytest

from manifests.benchmarks import gyt, mining, yc_interactions, youcook2


@pytest.fixture(scope="module")
def gyt_dir(benchmarks_dir):
    return benchmarks_dir / "groundingyoutube"


@pytest.fixture(scope="module")
def yc_dir(benchmarks_dir):
    return benchmarks_dir / "youcook2_interactions"


@pytest.fixture(scope="module")
def myt_dir(benchmarks_dir):
    return benchmarks_dir / "miningyoutube"


@pytest.fixture(scope="module")
def box_anno(gyt_dir):
    return gyt.load_boxes(gyt_dir / "box_anno.json")


def test_gyt_box_anno_counts(box_anno):
    boxes = [b for items in box_anno.values() for b in items]
    assert len(box_anno) == 250
    assert len(boxes) == 17_316
    assert len({b.step for b in boxes}) == 660
    assert sum(b.box[2] < b.box[0] for b in boxes) == 18  # known defect, kept as written
    assert sum(b.box[2] == 480 for b in boxes) == 5_119  # x2 clipped at 480
    first = box_anno["-1okAudsnAc"][0]
    assert first == gyt.GytBox("-1okAudsnAc", 76, (186.0, 244.0, 388.0, 452.0), "crack eggs")
    assert all([b.second for b in items] == sorted({b.second for b in items}) for items in box_anno.values())


def test_gyt_three_box_forms(gyt_dir, box_anno):
    assert gyt.load_boxes(gyt_dir / "GoundingYouTubeBox.json") == box_anno
    id2xy = gyt.load_boxes(gyt_dir / "id2xy_box.json")
    assert sum(len(v) for v in id2xy.values()) == 17_506
    assert all(b.step is None for items in id2xy.values() for b in items)
    assert all([b.second for b in items] == sorted(b.second for b in items) for items in id2xy.values())


@pytest.mark.parametrize("name,count,zero_length", [
    ("seg.json", 5_132, 41), ("ground_seg.json", 5_018, 393), ("ground_seg_3to20.json", 2_869, 0)])
def test_gyt_segment_files(gyt_dir, name, count, zero_length):
    segments = gyt.load_segments(gyt_dir / name)
    flat = [s for items in segments.values() for s in items]
    assert len(segments) == 250 and len(flat) == count
    assert sum(s.end <= s.start for s in flat) == zero_length  # kept as written
    assert all(isinstance(s.start, int) and s.sentence for s in flat)


def test_gyt_3to20_lengths_and_vid2step(gyt_dir):
    segments = gyt.load_segments(gyt_dir / "ground_seg_3to20.json")
    assert all(3 <= s.end - s.start <= 20 for items in segments.values() for s in items)
    vid2step = gyt.load_vid2step(gyt_dir / "vid2step.json")
    assert set(vid2step) == set(segments)
    for vid, steps in vid2step.items():
        assert steps[-1] == "background"
        assert set(steps[:-1]) == {s.sentence for s in segments[vid]}


def test_gyt_sizes_and_scales(gyt_dir):
    original = gyt.load_sizes(gyt_dir / "id2wh.json")
    resized = gyt.load_sizes(gyt_dir / "id2wh_new.json")
    assert Counter(original.values())[(1920, 1080)] == 105
    assert Counter(resized.values()) == {(640, 480): 249, (480, 640): 1}
    scales = gyt.load_scales(gyt_dir / "id2wh_reso.json")
    vid = "X7NlnFZXsy8"
    assert original[vid] == (1920, 1080)
    assert scales[vid] == pytest.approx((640 / 1920, 480 / 1080))


def test_gyt_points(gyt_dir):
    points = gyt.load_points(gyt_dir / "pumpkin_youtube_FPS_21k_annotation_full_agg_p.json")
    flat = [p for items in points.values() for p in items]
    assert len(flat) == 21_868
    assert sum(p.x is None for p in flat) == 4_250
    assert all((p.x is None) == (p.y is None) == (p.mean_dist is None) for p in flat)
    first = points["-1okAudsnAc"][0]
    assert (first.second, first.step, first.x, first.y) == (76, "crack_eggs", 287.4, 346.8)
    xs = [p.x for p in flat if p.x is not None]
    assert 0 <= min(xs) and max(xs) <= 640


def test_youcook2(yc_dir):
    videos = youcook2.load_youcook2(yc_dir / "youcookii_annotations_trainval.json")
    assert len(videos) == 1_790
    assert Counter(v.subset for v in videos.values()) == {"training": 1_333, "validation": 457}
    assert sum(len(v.segments) for v in videos.values()) == 13_829
    v = videos["GLd3aX16zBg"]
    assert (v.duration, v.recipe_type, v.url) == (241.62, "113", "https://www.youtube.com/watch?v=GLd3aX16zBg")
    assert v.segments[0] == youcook2.YouCook2Segment(0, 90.0, 102.0, "spread margarine on two slices of white bread")


def test_yc_interactions(yc_dir):
    segments = yc_interactions.load_segments(yc_dir / "final_dataset_segments.pkl")
    boxes = yc_interactions.load_boxes(yc_dir / "final_dataset_annotations.pkl")
    assert len(segments) == 254 and segments == sorted(segments)
    assert len({s[0] for s in segments}) == 91
    assert sum(len(v) for v in boxes.values()) == 2_570
    assert boxes["iqcnbNqVc7U"][22] == (334.0, 247.0, 415.0, 298.0)
    assert boxes["WqfselLH4MQ"] == {}
    # the reference evaluation scores frame ids start..end inclusive: 2,496 frames
    assert sum(1 for v, s, e in segments for k in boxes.get(v, {}) if s <= k <= e) == 2_496
    youcook = youcook2.load_youcook2(yc_dir / "youcookii_annotations_trainval.json")
    assert all(any((x.start, x.end) == (s, e) for x in youcook[v].segments) for v, s, e in segments)


def test_yc_frame_time_and_frame_size_rule():
    assert yc_interactions.frame_time(1) == 0.0 and yc_interactions.frame_time(22) == 21.0
    assert yc_interactions.box_frame_size("any", 1920, 1080) == (640, 360)
    assert yc_interactions.box_frame_size("any", 640, 480) == (640, 480)  # not larger in both dimensions
    assert yc_interactions.box_frame_size("any", 480, 360) == (480, 360)
    assert yc_interactions.box_frame_size("WYAFPvlDB_A", 1920, 1080) == (1920, 1080)
    assert len(yc_interactions.ORIGINAL_RESOLUTION_VIDEOS) == 7


def test_mining_srt(myt_dir, gyt_dir):
    srt = mining.load_srt_dir(myt_dir / "annotations")
    assert len(srt) == 250
    assert sum(len(v) for v in srt.values()) == 5_132
    assert srt["-1okAudsnAc"][0] == mining.MiningSegment(75.277, 83.517, "crack_eggs")
    flat = [s for items in srt.values() for s in items]
    assert all(s.end >= s.start for s in flat)
    assert sum(s.end == s.start for s in flat) == 3  # zero-length segments in the release, kept as written
    # the 5,132 srt segments are seg.json's 1:1 (whole seconds, symmetrically trimmed)
    seg = gyt.load_segments(gyt_dir / "seg.json")
    for vid, items in srt.items():
        assert [s.label for s in items] == [g.sentence for g in seg[vid]]
        assert all(int(s.start) <= g.start and g.end <= int(s.end) for s, g in zip(items, seg[vid]))


def test_mining_text_files(myt_dir):
    classes = mining.load_class_dict(myt_dir / "weakYouTube_dict.txt")
    assert len(classes) == 513 and classes[-1] == "background" and classes[0] == "add_apple"
    assert all(c == c.strip() for c in classes)
    mapping = mining.load_mapping(myt_dir / "mapping_without_meta.txt")
    assert sorted(mapping) == sorted(classes) and mapping != classes and mapping[512] == "background"
    assert mining.load_lengths(myt_dir / "weakYouTube_length.txt") == [150.0] * 513
    grammar = mining.load_grammar(myt_dir / "-1okAudsnAc.grammar")
    assert grammar[:3] == ["background", "crack_egg", "background"]
    labels = mining.load_frame_labels(myt_dir / "-1okAudsnAc.gt")
    assert len(labels) == 3_374 and labels[0] == "background"
    assert labels[2255] == "crack_egg" and labels[2254] == "background"  # starts at 75.28 s x 29.97 fps
    assert set(labels) <= set(grammar)
    assert len(mining.load_video_ids(myt_dir / "videos_test.txt")) == 249
