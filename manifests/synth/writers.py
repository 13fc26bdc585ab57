"""Annotation files of a synthetic world in the real benchmarks' formats (see the package docstring for the
choices), the HowTo100M-style caption CSVs, and world.json. All writers are deterministic: fixed key order,
fixed number formatting, and the one pickled set written in sorted order."""
from __future__ import annotations

import csv
import io
import json
import math
import os
import pickle
from pathlib import Path
from typing import Iterable, Sequence

from manifests.benchmarks.yc_interactions import box_frame_size
from manifests.synth.config import WorldConfig
from manifests.synth.vocab import OBJECTS, TASKS, VERBS, all_step_names, step_name
from manifests.synth.world import BACKGROUND, VideoSpec, World, video_from_dict, video_to_dict

WORLD_FORMAT = "groundcache-synth-world"
WORLD_VERSION = 1
RELEASED_LENGTH = 150  # every class's mean length in the released weakYouTube_length.txt (frames at 30 fps)


def _write_json(path: Path, data, indent: int | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + ("\n" if indent else ""), encoding="utf-8")


def write_captions(videos: Iterable[VideoSpec], directory: Path) -> None:
    """HowTo100M narration CSVs: <video_id>.csv with the header start,end,text (times with 2 decimals)."""
    directory.mkdir(parents=True, exist_ok=True)
    for video in videos:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["start", "end", "text"])
        writer.writerows([f"{n.start:.2f}", f"{n.end:.2f}", n.text] for n in video.narrations)
        (directory / f"{video.video_id}.csv").write_text(buf.getvalue(), encoding="utf-8")


def seg_json_span(start: float, end: float) -> tuple[int, int]:
    """GYT seg.json's symmetric trimming of an action segment: L = floor(end) - floor(start) whole seconds,
    trimmed by k on both sides: k = 0 for L <= 5, 1 for 6-10, 3 for 11-15, 5 for 16-20, 8 for 21-30, 10 for
    31-40, 15 for 41-60, 25 for 61-80; longer segments keep their central 30 s or so. Fitted to the released
    files: it gives seg.json's span for every one of the 5,132 MiningYouTube segments."""
    a, b = math.floor(start), math.floor(end)
    length = b - a
    for limit, k in ((5, 0), (10, 1), (15, 3), (20, 5), (30, 8), (40, 10), (60, 15), (80, 25)):
        if length <= limit:
            return a + k, b - k
    k = max(25, math.ceil((length - 30) / 2))
    return a + k, b - k


def write_gyt(videos: Sequence[VideoSpec], directory: Path) -> None:
    """GroundingYouTube files: box_anno.json, id2xy_box.json, ground_seg.json, ground_seg_3to20.json, seg.json,
    vid2step.json, id2wh.json, id2wh_new.json."""
    box_anno, id2xy, ground, ground_3to20, seg, vid2step, sizes = {}, {}, {}, {}, {}, {}, {}
    for v in videos:
        boxes = [(s, step.name, box) for step in v.steps for s, box in v.step_boxes(step) if box is not None]
        box_anno[v.video_id] = [{"second": s, "box": list(box), "step_name": name} for s, name, box in boxes]
        id2xy[v.video_id] = {str(s): list(box) for s, _, box in boxes}
        ground[v.video_id] = [{"segment": [st.start, st.end - 1], "id": st.index, "sentence": st.name}
                              for st in v.steps]
        kept = [g for g in ground[v.video_id] if 3 <= g["segment"][1] - g["segment"][0] <= 20]
        ground_3to20[v.video_id] = [{**g, "id": i} for i, g in enumerate(kept)]
        seg[v.video_id] = [{"segment": list(seg_json_span(st.start, st.end)), "id": st.index, "sentence": st.label}
                           for st in v.steps]
        vid2step[v.video_id] = list(dict.fromkeys(g["sentence"] for g in kept)) + [BACKGROUND]
        sizes[v.video_id] = [v.width, v.height]
    _write_json(directory / "box_anno.json", box_anno)
    _write_json(directory / "id2xy_box.json", id2xy)
    _write_json(directory / "ground_seg.json", ground, indent=4)
    _write_json(directory / "ground_seg_3to20.json", ground_3to20, indent=4)
    _write_json(directory / "seg.json", seg)
    _write_json(directory / "vid2step.json", vid2step)
    _write_json(directory / "id2wh.json", sizes, indent=4)
    _write_json(directory / "id2wh_new.json", sizes, indent=4)


def _srt_time(seconds: float) -> str:
    ms = int(round(seconds * 1000))
    return f"{ms // 3_600_000:02d}:{ms // 60_000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_mining(videos: Sequence[VideoSpec], directory: Path) -> None:
    """MiningYouTube files: annotations/<vid>.srt (UTF-8 BOM, CRLF, as released), weakYouTube_dict.txt (all step
    labels of the grammar sorted, then background), weakYouTube_length.txt (150 frames for every class, as
    released: the length prior tells nothing about the classes), videos_test.txt."""
    ann = directory / "annotations"
    ann.mkdir(parents=True, exist_ok=True)
    for v in videos:
        blocks = [f"{i + 1}\r\n{_srt_time(st.start)} --> {_srt_time(st.end)}\r\n{st.label}\r\n"
                  for i, st in enumerate(v.steps)]
        (ann / f"{v.video_id}.srt").write_bytes(("\ufeff" + "\r\n".join(blocks)).encode("utf-8"))
    names = sorted(n.replace(" ", "_") for n in all_step_names()) + [BACKGROUND]
    (directory / "weakYouTube_dict.txt").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    (directory / "weakYouTube_length.txt").write_text(f"{RELEASED_LENGTH}\n" * len(names), encoding="utf-8")
    (directory / "videos_test.txt").write_text("".join(f"{v.video_id}\n" for v in videos), encoding="utf-8")


class _SortedSet:
    """Pickles as the set of its items, written in sorted order. Set iteration order follows string hashing,
    which changes from one Python process to the next, and picklers may not consult `reducer_override` for
    sets; a set is pickled as set(list) (GLOBAL builtins.set, REDUCE) in protocol 3, and so is this."""

    def __init__(self, items: set):
        self.items = sorted(items)

    def __reduce__(self):
        return set, (self.items,)


def _pickle(path: Path, data) -> None:
    payload = _SortedSet(data) if isinstance(data, set) else data
    path.write_bytes(pickle.dumps(payload, protocol=3))  # protocol 3, as the released files


def _yc_box(box: tuple[int, int, int, int], scale: tuple[float, float]) -> tuple:
    x1, y1, x2, y2 = box
    sx, sy = scale
    if scale == (1.0, 1.0):
        return (x1, y1, x2, y2)
    # like the released boxes: whole or half pixels of the 640x360 annotation frame
    return tuple(round(c * 2) / 2 for c in (x1 * sx, y1 * sy, x2 * sx, y2 * sy))


def write_yc_interactions(videos: Sequence[VideoSpec], directory: Path, train: Sequence[VideoSpec] = ()) -> None:
    """YouCook2-Interactions files: final_dataset_segments.pkl {(vid, start, end)}, final_dataset_annotations.pkl
    {vid: {frame_id: box}} (frame_id = second + 1) and youcookii_annotations_trainval.json (the test videos as
    "validation", `train` videos as "training")."""
    directory.mkdir(parents=True, exist_ok=True)
    segments, annotations, database = set(), {}, {}
    for v in videos:
        w, h = box_frame_size(v.video_id, v.width, v.height)
        scale = (w / v.width, h / v.height)
        frames = {}
        for st in v.steps:
            segments.add((v.video_id, st.start, st.end))
            frames.update({s + 1: _yc_box(box, scale) for s, box in v.step_boxes(st) if box is not None})
        annotations[v.video_id] = frames
    for v, subset in [(v, "validation") for v in videos] + [(v, "training") for v in train]:
        database[v.video_id] = {
            "duration": float(v.duration), "subset": subset, "recipe_type": str(v.task),
            "annotations": [{"segment": [st.start, st.end], "id": st.index, "sentence": st.sentence}
                            for st in v.steps],
            "video_url": f"synthetic:{v.video_id}"}
    _pickle(directory / "final_dataset_segments.pkl", segments)
    _pickle(directory / "final_dataset_annotations.pkl", annotations)
    _write_json(directory / "youcookii_annotations_trainval.json", {"database": database})


def video_annotations(v: VideoSpec) -> dict:
    """Derived ground truth stored with each video in world.json (recomputable from the spec)."""
    steps = []
    for st in v.steps:
        frames = range(st.start * v.fps, st.end * v.fps)
        steps.append({"index": st.index, "name": st.name, "label": st.label, "sentence": st.sentence,
                      "seconds": [[s, *box] for s, box in v.step_boxes(st) if box is not None],
                      "frame_boxes": [[i, *box] for i in frames if (box := v.object_box(st.obj, i / v.fps))]})
    objects = {o.name: [list(v.object_box(k, float(s)) or ()) for s in range(v.duration)]
               for k, o in enumerate(v.objects)}
    hands = [list(v.hand_box(float(s)) or ()) for s in range(v.duration)]
    return {"labels": [v.label_at_second(s) for s in range(v.duration)], "steps": steps,
            "object_boxes": objects, "hand_boxes": hands}


def world_dict(world: World) -> dict:
    return {
        "format": WORLD_FORMAT, "version": WORLD_VERSION, "config": world.config.as_dict(),
        "vocabulary": {"steps": all_step_names(), "labels": [n.replace(" ", "_") for n in all_step_names()],
                       "background": BACKGROUND, "objects": [o.name for o in OBJECTS], "verbs": list(VERBS),
                       "tasks": [{"name": name, "steps": [step_name(v, o) for v, o in steps]}
                                 for name, steps in TASKS]},
        "videos": [{**video_to_dict(v), "annotations": video_annotations(v)} for v in world.videos],
    }


def write_world(world: World, path: str | os.PathLike) -> None:
    _write_json(Path(path), world_dict(world), indent=1)


def read_world(path: str | os.PathLike) -> World:
    """The world of a world.json written by `write_world` (the derived annotations are not read back)."""
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != WORLD_FORMAT or data.get("version") != WORLD_VERSION:
        raise ValueError(f"{path}: not a {WORLD_FORMAT} file of version {WORLD_VERSION}")
    return World(WorldConfig.from_dict(data["config"]), tuple(video_from_dict(v) for v in data["videos"]))
