"""The generated annotation files are read by the real readers, say what the world says, and the real builders
turn them into valid manifests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from manifests.benchmarks import gyt, mining, yc_interactions, youcook2
from manifests.narrations import load_csv_dir
from manifests.schema import Manifest
from manifests.synth import BACKGROUND, WorldConfig, make_world
from manifests.synth.vocab import all_step_names
from manifests.synth.writers import seg_json_span, write_yc_interactions
from manifests.validate import main as validate_main, validate
from tests.synth.conftest import TINY

REPO = Path(__file__).resolve().parents[2]


def test_gyt_files_hold_every_boxed_second_and_segment(tiny):
    report, world = tiny
    d = report.paths.gyt
    boxes, segments = gyt.load_boxes(d / "box_anno.json"), gyt.load_segments(d / "ground_seg.json")
    kept = gyt.load_segments(d / "ground_seg_3to20.json")
    queries, sizes = gyt.load_vid2step(d / "vid2step.json"), gyt.load_sizes(d / "id2wh_new.json")
    plain, seg = gyt.load_boxes(d / "id2xy_box.json"), gyt.load_segments(d / "seg.json")
    test = world.split("test")
    assert set(boxes) == set(segments) == set(kept) == set(queries) == set(sizes) == {v.video_id for v in test}
    n_kept = 0
    for v in test:
        want = [(s, st.name, tuple(float(c) for c in box)) for st in v.steps for s, box in v.step_boxes(st)]
        assert [(b.second, b.step, b.box) for b in boxes[v.video_id]] == want
        assert [(b.second, b.box) for b in plain[v.video_id]] == [(s, box) for s, _, box in want]
        spans = [(st.start, st.end - 1, st.name) for st in v.steps]  # inclusive whole seconds: the boxed ones
        assert [(s.start, s.end, s.sentence) for s in segments[v.video_id]] == spans
        long_enough = [x for x in spans if 3 <= x[1] - x[0] <= 20]
        assert [(s.start, s.end, s.sentence) for s in kept[v.video_id]] == long_enough
        assert [s.id for s in kept[v.video_id]] == list(range(len(long_enough)))
        assert queries[v.video_id] == [x[2] for x in long_enough] + [BACKGROUND]
        assert sizes[v.video_id] == (v.width, v.height)
        assert [(s.start, s.end, s.sentence) for s in seg[v.video_id]] == \
               [(*seg_json_span(st.start, st.end), st.label) for st in v.steps]
        n_kept += len(long_enough)
    assert 0 < n_kept < sum(len(v.steps) for v in test)  # the tiny world exercises the 3..20 s filter both ways


def test_mining_files_hold_the_steps_with_underscore_labels(tiny):
    report, world = tiny
    d = report.paths.mining
    srt = mining.load_srt_dir(d / "annotations")
    names = mining.load_class_dict(d / "weakYouTube_dict.txt")
    lengths = mining.load_lengths(d / "weakYouTube_length.txt")
    assert (d / "annotations" / f"{world.split('test')[0].video_id}.srt").read_bytes().startswith(b"\xef\xbb\xbf")
    for v in world.split("test"):
        assert [(s.start, s.end, s.label) for s in srt[v.video_id]] == \
               [(float(st.start), float(st.end), st.label) for st in v.steps]
    assert names == sorted(n.replace(" ", "_") for n in all_step_names()) + [BACKGROUND]
    assert lengths == [150.0] * len(names)
    assert mining.load_video_ids(d / "videos_test.txt") == [v.video_id for v in world.split("test")]


def test_yc_interactions_files_hold_frame_ids_one_past_the_second(tiny):
    report, world = tiny
    d = report.paths.yc_interactions
    segments = yc_interactions.load_segments(d / "final_dataset_segments.pkl")
    boxes = yc_interactions.load_boxes(d / "final_dataset_annotations.pkl")
    database = youcook2.load_youcook2(d / "youcookii_annotations_trainval.json")
    test = world.split("test")
    assert segments == sorted((v.video_id, st.start, st.end) for v in test for st in v.steps)
    for v in test:
        want = {s + 1: tuple(float(c) for c in box) for st in v.steps for s, box in v.step_boxes(st)}
        assert boxes[v.video_id] == want  # frame_id = second + 1
        entry = database[v.video_id]
        assert entry.subset == "validation" and entry.duration == v.duration
        assert [(s.start, s.end, s.sentence) for s in entry.segments] == \
               [(st.start, st.end, st.sentence) for st in v.steps]
    assert {database[v.video_id].subset for v in world.split("train")} == {"training"}


def test_caption_csvs_round_trip_the_narrations(tiny):
    report, world = tiny
    for directory, split in ((report.paths.train_captions, "train"), (report.paths.test_captions, "test")):
        loaded = load_csv_dir(directory)
        for v in world.split(split):
            assert [(n.start, n.end, n.text) for n in loaded[v.video_id]] == \
                   [(n.start, n.end, n.text) for n in v.narrations]


def test_the_builders_made_valid_manifests(tiny, capsys):
    report, world = tiny
    p = report.paths
    for path in (p.train_manifest, p.gyt_manifest, p.mining_manifest, p.yc_interactions_manifest):
        assert validate(path) == [], path
        assert validate_main([str(path)]) == 0
    assert "clean: no problems" in capsys.readouterr().out
    train = Manifest.read(p.train_manifest)
    assert {s.fps for s in train.segment_rows()} == {5.0} and {s.purpose for s in train.segment_rows()} == {"train"}
    assert len(train.caption_rows()) == sum(len(v.narrations) for v in world.split("train"))
    test = Manifest.read(p.gyt_manifest)
    rows = {r.video_id: r for r in test.video_rows()}
    for v in world.split("test"):
        assert rows[v.video_id].ok and (rows[v.video_id].width, rows[v.video_id].height) == (v.width, v.height)
        assert abs(rows[v.video_id].duration - v.duration) < 0.2
    assert len(test.box_rows()) == sum(len(st.seconds) for v in world.split("test") for st in v.steps)
    assert {(s.start, s.end, s.fps) for s in test.segment_rows()} == {(0.0, None, 1.0)}


def test_seg_json_trimming_reproduces_the_released_file(benchmarks_dir):
    seg = gyt.load_segments(benchmarks_dir / "groundingyoutube" / "seg.json")
    srt = mining.load_srt_dir(benchmarks_dir / "miningyoutube" / "annotations")
    pairs = [(s, m) for vid, segs in seg.items() for s, m in zip(segs, srt[vid], strict=True)]
    assert len(pairs) == 5132
    assert all((s.start, s.end) == seg_json_span(m.start, m.end) for s, m in pairs)


def test_seg_json_trimming_by_hand():
    assert seg_json_span(12.0, 17.0) == (12, 17)  # 5 s: untouched
    assert seg_json_span(12.4, 20.9) == (13, 19)  # 8 s: one second off each side
    assert seg_json_span(0.0, 25.0) == (8, 17)


def test_pickled_set_does_not_depend_on_string_hashing(tmp_path):
    """Set order follows the per-process string hash seed; the writer pickles sets sorted."""
    code = ("import pickle, sys; from pathlib import Path; from manifests.synth import make_world; "
            "from manifests.synth.writers import write_yc_interactions; from tests.synth.conftest import TINY; "
            "w = make_world(TINY); out = Path(sys.argv[1]); write_yc_interactions(w.split('test'), out); "
            "plain = {(v.video_id, s.start, s.end) for v in w.split('test') for s in v.steps}; "
            "(out / 'plain.pkl').write_bytes(pickle.dumps(plain, protocol=3))")
    written, plain = set(), set()
    for hash_seed in ("1", "2", "3", "4"):
        out = tmp_path / hash_seed
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        subprocess.run([sys.executable, "-c", code, str(out)], cwd=REPO, env=env, check=True)
        written.add((out / "final_dataset_segments.pkl").read_bytes())
        plain.add((out / "plain.pkl").read_bytes())
    assert len(plain) > 1  # a plain pickle of the same set does change with the hash seed
    assert len(written) == 1


def test_yc_boxes_of_large_videos_are_in_the_640x360_annotation_frame(tmp_path):
    world = make_world(WorldConfig(**{**TINY.as_dict(), "width": 1280, "height": 720}))
    write_yc_interactions(world.split("test"), tmp_path)
    boxes = yc_interactions.load_boxes(tmp_path / "final_dataset_annotations.pkl")
    v = world.split("test")[0]
    second, box = v.step_boxes(v.steps[0])[0]
    assert boxes[v.video_id][second + 1] == tuple(round(c * 2 * 0.5) / 2 for c in box)  # 1280x720 -> 640x360
    assert all(x2 <= 640 and y2 <= 360 for b in boxes.values() for (_, _, x2, y2) in b.values())
