"""Helpers of the inference tests: stores with hand-made features, GYT annotation files for them, a hand-made
head saved as a training run, and the inference command lines in-process."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from eval import baselines, infer, run
from pipeline.store import ShardWriter, consolidate, init_store
from trainer.checkpoint import checkpoint_path, save_checkpoint
from pipeline.config import to_dict
from trainer.methods import build_head, load_train_config


def unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def write_store(root: str, spec: dict, videos: dict[str, tuple[np.ndarray, np.ndarray]], fps: float = 1.0) -> None:
    """A store bound to `spec` holding, per video, frames at t = 0, 1/fps, ...: (global [N, D], grid [N, 7, 7, D])."""
    init_store(root, {"clip": spec})
    writer = ShardWriter(root, "sh-inference-test", {"clip": spec})
    for vid, (global_, grid) in videos.items():
        meta = {"segment_id": f"{vid}:0.000-end@{fps:g}", "video_id": vid, "start": 0.0, "end": None, "fps": fps}
        with writer.segment(meta) as seg:
            writer.append_frames("clip", times=np.arange(len(global_)) / fps, grid=grid, **{"global": global_})
            seg.info.update(truncated=False, end_actual=len(global_) / fps)
    writer.commit()
    consolidate(root)


def cell_box(row: int, col: int, size: tuple[int, int]) -> list[int]:
    """Inclusive pixel box of grid cell (row, col) of a 7x7 grid on a (W, H) frame."""
    w, h = size
    return [int(np.ceil(col * w / 7)), int(np.ceil(row * h / 7)), int((col + 1) * w / 7) - 1,
            int((row + 1) * h / 7) - 1]


def write_gyt_files(folder: Path, videos: dict[str, dict]) -> Path:
    """GroundingYouTube files for `videos` {vid: {"size": (W, H), "steps": [(label, start, end, box)]}} (seconds
    inclusive): box_anno.json (a box every second of a step), id2xy_box.json, ground_seg_3to20.json, seg.json,
    vid2step.json, id2wh_new.json. Returns the benchmarks root."""
    gyt = folder / "groundingyoutube"
    gyt.mkdir(parents=True, exist_ok=True)
    box_anno, id2xy, segs, seg_json, pools, sizes = {}, {}, {}, {}, {}, {}
    for vid, v in videos.items():
        steps = v["steps"]
        box_anno[vid] = [{"second": s, "box": box, "step_name": label}
                         for label, a, b, box in steps for s in range(a, b + 1)]
        id2xy[vid] = {str(s): box for label, a, b, box in steps for s in range(a, b + 1)}
        segs[vid] = [{"segment": [a, b], "id": i, "sentence": label} for i, (label, a, b, _) in enumerate(steps)]
        seg_json[vid] = [{"segment": [a, b], "id": i, "sentence": label.replace(" ", "_")}
                         for i, (label, a, b, _) in enumerate(steps)]
        pools[vid] = list(dict.fromkeys(label for label, *_ in steps)) + ["background"]
        sizes[vid] = list(v["size"])
    for name, data in (("box_anno", box_anno), ("id2xy_box", id2xy), ("ground_seg_3to20", segs),
                       ("seg", seg_json), ("vid2step", pools), ("id2wh_new", sizes)):
        (gyt / f"{name}.json").write_text(json.dumps(data))
    return folder


def identity_head(dim: int):
    """An stg head of width `dim` whose projections are the identity (features pass unchanged)."""
    head = build_head(load_train_config(overrides=[f"stg.head.dim={dim}"]),
                      {"global": dim, "grid": dim, "sentence": dim, "words": dim})
    with torch.no_grad():
        for layer in (head.vis_proj, head.lang_proj, head.vis_proj_g, head.lang_proj_g):
            layer.weight.copy_(torch.eye(dim))
            layer.bias.zero_()
    return head.eval()


def save_run(run_dir: Path, head, encoder_spec: dict, step: int = 1) -> Path:
    """A run directory whose checkpoint holds `head` (what trainer.checkpoint.load_trained reads)."""
    dim = head.cfg.dim
    config = load_train_config()
    config = dataclasses.replace(config, stg=dataclasses.replace(config.stg, head=head.cfg))
    save_checkpoint(checkpoint_path(run_dir, step), {
        "step": step, "epoch": 0, "batch": 0, "model": head.state_dict(), "config": to_dict(config),
        "encoder_spec": encoder_spec, "dims": {k: dim for k in ("global", "grid", "sentence", "words")}})
    return run_dir


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def run_infer(capsys, *args) -> dict:
    assert infer.main([str(a) for a in args]) == 0
    return _last_json(capsys)


def run_eval(capsys, *args) -> dict:
    assert run.main([str(a) for a in args]) == 0
    return _last_json(capsys)


def run_global_sim(capsys, *args) -> None:
    assert baselines.main(["global-sim", *map(str, args)]) == 0
    capsys.readouterr()


def srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    return f"00:{ms // 60000:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"


def write_benchmarks(root, truth) -> None:
    """YouCook2- and MiningYouTube-style files of the events: query id = the caption's number."""
    db, srt = {}, {}
    for cid, (vid, start, end, *_, concept) in sorted(truth.events.items()):
        db.setdefault(vid, {"duration": 40.0, "subset": "validation", "recipe_type": "x", "video_url": "",
                            "annotations": []})
        db[vid]["annotations"].append({"segment": [start, end], "id": int(cid.split(":")[1]),
                                       "sentence": f"concept {concept}"})
        srt.setdefault(vid, []).append(f"{len(srt.get(vid, [])) + 1}\n{srt_time(start)} --> {srt_time(end)}\n"
                                       f"concept {concept}\n")
    (root / "youcook2_interactions").mkdir(parents=True)
    (root / "youcook2_interactions" / "youcookii_annotations_trainval.json").write_text(json.dumps({"database": db}))
    (root / "miningyoutube" / "annotations").mkdir(parents=True)
    for vid, blocks in srt.items():
        (root / "miningyoutube" / "annotations" / f"{vid}.srt").write_text("\n".join(blocks))
    labels = sorted({f"concept {c}" for *_, c in truth.events.values()}) + ["background"]
    (root / "miningyoutube" / "weakYouTube_dict.txt").write_text("\n".join(labels) + "\n")
    (root / "miningyoutube" / "weakYouTube_length.txt").write_text("\n".join(["90"] * len(labels)) + "\n")
