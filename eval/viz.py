"""`python -m eval.viz`: pictures of predictions, drawn on the decoded frames with the scorer's own geometry.

    python -m eval.viz overlay  --predictions P --manifest M --out DIR [--video-id V] [--segment S] [--frames 8] [--mp4]
    python -m eval.viz timeline --predictions P --manifest M --out DIR [--video-id V ...]
    python -m eval.viz curves   --run RUN_DIR --out curves.png

- overlay: for one `/spatial` group (a video and a query), a PNG grid of the frames at its seconds (the frame
  on screen at t = s, decoded at the video's own size) with the heatmap upsampled exactly as the scorers do
  (eval.metrics.heatmaps), its argmax point (red) and the ground-truth box of that second from the manifest's
  boxes table (green); `--mp4` writes the same frames as a video.
- timeline: per video, ground-truth steps (the manifest's step captions) against the label predicted for each
  second by `/temporal` (first maximum; "background" drawn grey).
- curves: loss terms of a training run's metrics.jsonl against the step.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

from eval.metrics.heatmaps import first_argmax, upsample  # noqa: E402
from eval.predictions import BACKGROUND, Predictions, PredictionsError, read_predictions  # noqa: E402
from manifests.errors import ManifestError  # noqa: E402
from manifests.ffmpeg import probe, run  # noqa: E402
from manifests.schema import Manifest  # noqa: E402
from pipeline.decode import Stream, decode_all  # noqa: E402

GREEN, RED, WHITE = np.array([40, 220, 60]), np.array([255, 30, 30]), np.array([255, 255, 255])


class VizError(ValueError):
    """The inputs do not hold what the picture needs (the message says what)."""


# ---- drawing on numpy frames ------------------------------------------------------------------------------------
def blend_heatmap(frame: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """Frame [H, W, 3] with an upsampled heatmap [H, W] (stretched to its own min..max) as a jet overlay;
    a flat map shows as no preference (all blue)."""
    lo, hi = float(heat.min()), float(heat.max())
    norm = (heat - lo) / (hi - lo) if hi > lo else np.zeros_like(heat)
    colour = (plt.get_cmap("jet")(norm)[..., :3] * 255).astype(np.float32)
    return (frame.astype(np.float32) * (1 - alpha) + colour * alpha).astype(np.uint8)


def draw_box(img: np.ndarray, box, colour=GREEN, width: int = 2) -> None:
    h, w = img.shape[:2]
    x1, y1, x2, y2 = (int(round(v)) for v in box)
    x1, x2 = max(0, min(x1, w - 1)), max(0, min(x2, w - 1))
    y1, y2 = max(0, min(y1, h - 1)), max(0, min(y2, h - 1))
    if x2 < x1 or y2 < y1:
        return
    for d in range(width):
        img[max(0, y1 - d):y2 + d + 1, max(0, x1 - d)] = colour
        img[max(0, y1 - d):y2 + d + 1, min(w - 1, x2 + d)] = colour
        img[max(0, y1 - d), max(0, x1 - d):x2 + d + 1] = colour
        img[min(h - 1, y2 + d), max(0, x1 - d):x2 + d + 1] = colour


def draw_point(img: np.ndarray, x: int, y: int, radius: int = 5) -> None:
    h, w = img.shape[:2]
    yy, xx = np.ogrid[:h, :w]
    d2 = (xx - x) ** 2 + (yy - y) ** 2
    img[d2 <= (radius + 2) ** 2] = WHITE
    img[d2 <= radius ** 2] = RED


# ---- overlay --------------------------------------------------------------------------------------------------
def _boxes_by_second(manifest: Manifest, video_id: str) -> dict[int, tuple]:
    return {int(round(b.time)): (b.x1, b.y1, b.x2, b.y2) for b in manifest.box_rows() if b.video_id == video_id}


def overlay_frames(preds: Predictions, manifest: Manifest, video_id: str, segment: str | None,
                   max_frames: int) -> tuple[list[np.ndarray], list[int], str]:
    """Drawn frames, their seconds and the query of one spatial group (the first one when `segment` is None)."""
    groups = preds.spatial.get(video_id, {})
    if not groups:
        raise VizError(f"{preds.path}: no /spatial groups for video {video_id!r}")
    sid = segment or next(iter(groups))
    if sid not in groups:
        raise VizError(f"{preds.path}: no /spatial/{video_id}/{sid} (it has {sorted(groups)})")
    pred = groups[sid]
    info = probe(manifest.video(video_id).path)
    seconds = list(range(pred.start, pred.end + 1))
    if len(seconds) > max_frames:  # evenly spread, always with the first and last second
        seconds = [seconds[i] for i in np.linspace(0, len(seconds) - 1, max_frames).round().astype(int)]
    frames = decode_all(info, [Stream("v", 1.0, None)], start=float(pred.start), end=pred.end + 1.0)[0]["v"]
    boxes = _boxes_by_second(manifest, video_id)
    drawn = []
    for s in seconds:
        if s - pred.start >= len(frames):  # past the end of the video
            continue
        heat = upsample(pred.heatmaps[s - pred.start][None], (info.width, info.height))
        x, y = first_argmax(heat)[0]
        img = blend_heatmap(frames[s - pred.start], heat[0])
        if s in boxes:
            draw_box(img, boxes[s])
        draw_point(img, int(x), int(y))
        drawn.append(img)
    return drawn, seconds[:len(drawn)], pred.query


def write_overlay(out: Path, video_id: str, frames: list[np.ndarray], seconds: list[int], query: str,
                  mp4: bool) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    stem = f"overlay-{_safe(video_id)}-{_safe(query)}"
    cols = min(4, len(frames))
    rows = -(-len(frames) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.6 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, s in zip(axes.flat, frames, seconds):
        ax.imshow(img)
        ax.set_title(f"t = {s} s", fontsize=9)
    fig.suptitle(f"{video_id}: \"{query}\"  (green: ground truth, red: argmax)", fontsize=10)
    fig.tight_layout()
    written = [out / f"{stem}.png"]
    fig.savefig(written[0], dpi=90)
    plt.close(fig)
    if mp4:
        written.append(out / f"{stem}.mp4")
        stack = np.stack(frames)
        h, w = stack.shape[1] // 2 * 2, stack.shape[2] // 2 * 2  # yuv420p needs even sizes
        run(["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{stack.shape[2]}x{stack.shape[1]}",
             "-framerate", "1", "-i", "pipe:0", "-vf", f"crop={w}:{h}:0:0,fps=10", "-c:v", "libx264",
             "-pix_fmt", "yuv420p", str(written[1])], what=f"writing {written[1]}", stdin=stack.tobytes())
    return written


def _safe(text: str) -> str:
    clean = "".join(c if c.isalnum() or c in "-_" else "_" for c in text)[:40]
    return clean if clean == text else f"{clean}-{hashlib.sha1(text.encode()).hexdigest()[:6]}"


# ---- timeline --------------------------------------------------------------------------------------------------
def label_colours(labels) -> dict:
    """A distinct colour per label of one picture (tab10, then tab20), background grey."""
    names = sorted(set(labels) - {BACKGROUND})
    palette = [plt.get_cmap("tab10")(i) for i in range(10)] + [plt.get_cmap("tab20")(i) for i in range(1, 20, 2)]
    colours = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    colours[BACKGROUND] = (0.85, 0.85, 0.85)
    return colours


def write_timeline(out: Path, preds: Predictions, manifest: Manifest, video_id: str) -> Path:
    if video_id not in preds.temporal:
        raise VizError(f"{preds.path}: no /temporal group for video {video_id!r}")
    temporal = preds.temporal[video_id]
    labels = [temporal.labels[i] for i in temporal.predicted()]
    # GroundingYouTube step segments name whole seconds, end included; other sources give times.
    last = 1.0 if manifest.builder == "gyt" else 0.0
    steps = [(c.start, c.end + last, c.text) for c in manifest.caption_rows()
             if c.video_id == video_id and c.kind == "step" and c.start is not None]
    colour = label_colours([t for _, _, t in steps] + labels)
    right = max([len(labels)] + [e for _, e, _ in steps])
    fig, ax = plt.subplots(figsize=(10, 2.4))
    ax.broken_barh([(0, right)], (1, 0.8), color=colour[BACKGROUND])  # seconds outside every step
    for start, end, text in steps:
        ax.broken_barh([(start, end - start)], (1, 0.8), color=colour[text])
    for s, label in enumerate(labels):
        ax.broken_barh([(s, 1)], (0, 0.8), color=colour[label])
    shown = [name for name in colour if name != BACKGROUND]
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour[name]) for name in shown]
    ax.legend(handles, shown, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_yticks([0.4, 1.4], ["predicted", "ground truth"])
    ax.set_xlabel("seconds")
    ax.set_xlim(0, right)
    ax.set_title(f"{video_id}: steps per second (grey: background)", fontsize=10)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"timeline-{_safe(video_id)}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# ---- training curves -------------------------------------------------------------------------------------------
def moving_average(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing mean over up to `window` values (the first ones average what there is)."""
    sums = np.cumsum(np.concatenate([[0.0], values]))
    lo = np.maximum(np.arange(1, len(values) + 1) - window, 0)
    return (sums[1:] - sums[lo]) / (np.arange(1, len(values) + 1) - lo)


def write_curves(run_dir: Path, out: Path) -> Path:
    """Every loss term of metrics.jsonl (thin: as logged; thick: mean of the last 10 logged steps) and the lr."""
    from trainer.rundir import read_metrics

    rows = read_metrics(run_dir)
    if not rows:
        raise VizError(f"{run_dir}: metrics.jsonl holds no step")
    keys = sorted({k for r in rows for k in r if k == "loss" or k.startswith("loss_")})
    fig, axes = plt.subplots(1, 2, figsize=(10, 3))
    for i, k in enumerate(keys):
        steps, values = zip(*[(r["step"], r[k]) for r in rows if k in r])
        line, = axes[0].plot(steps, values, lw=0.6, alpha=0.35, color=f"C{i}")
        axes[0].plot(steps, moving_average(np.asarray(values, float), 10), lw=1.6, color=line.get_color(), label=k)
    axes[0].set_xlabel("step")
    axes[0].set_title("loss terms")
    axes[0].legend(fontsize=8)
    lr = [(r["step"], r["lr"]) for r in rows if "lr" in r]
    if lr:
        axes[1].plot(*zip(*lr))
    axes[1].set_xlabel("step")
    axes[1].set_title("learning rate")
    fig.suptitle(str(run_dir), fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)
    plt.close(fig)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.viz", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="what", required=True)
    o = sub.add_parser("overlay", help="heatmap overlays of one video and query (PNG grid, optional MP4)")
    t = sub.add_parser("timeline", help="ground-truth steps vs predicted labels per second")
    for q in (o, t):
        q.add_argument("--predictions", required=True)
        q.add_argument("--manifest", required=True, type=Path, help="evaluation manifest (video paths, boxes, steps)")
        q.add_argument("--out", required=True, type=Path)
        q.add_argument("--video-id", action="append", help="video(s) to draw (default: the first predicted one)")
    o.add_argument("--segment", help="spatial group id (default: the video's first)")
    o.add_argument("--frames", type=int, default=8)
    o.add_argument("--mp4", action="store_true")
    c = sub.add_parser("curves", help="training curves of a run")
    c.add_argument("--run", required=True, type=Path)
    c.add_argument("--out", required=True, type=Path)
    args = p.parse_args(argv)
    try:
        for path in _dispatch(args):
            print(path)
    except (VizError, ManifestError, PredictionsError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _dispatch(args) -> list[Path]:
    if args.what == "curves":
        return [write_curves(args.run, args.out)]
    manifest = Manifest.read(args.manifest)
    preds = read_predictions(args.predictions)
    pool = preds.spatial if args.what == "overlay" else preds.temporal
    videos = args.video_id or sorted(pool)[:1]
    if not videos:
        raise VizError(f"{args.predictions}: nothing to draw for {args.what}")
    written: list[Path] = []
    for vid in videos:
        if args.what == "timeline":
            written.append(write_timeline(args.out, preds, manifest, vid))
        else:
            frames, seconds, query = overlay_frames(preds, manifest, vid, args.segment, args.frames)
            written += write_overlay(args.out, vid, frames, seconds, query, args.mp4)
    return written


if __name__ == "__main__":
    sys.exit(main())
