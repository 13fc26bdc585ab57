"""`python -m manifests.sample --out DIR`: a small generated sample to try extraction on a fresh machine.

Writes DIR/videos/*.mp4 (ffmpeg's synthetic sources at several sizes, one portrait, one with
audio), DIR/captions/<video>.csv narrations in the HowTo100M CSV format
(start,end,text), and DIR/manifest built from them with the HowTo100M builder (16-s caption windows
at 5 fps). Real data: build a manifest from your own videos with `python -m manifests.build`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from manifests.build import main as build_main
from manifests.ffmpeg import run

# (video id, lavfi source, size, seconds, extra output args)
SAMPLES = (
    ("sample-testsrc", "testsrc2", "640x360", 24, ()),
    ("sample-mandelbrot", "mandelbrot", "320x240", 20, ()),
    ("sample-portrait", "testsrc2", "360x640", 18, ()),
    ("sample-life", "life=mold=10:ratio=0.2:death_color=#c83232:life_color=#00ff00", "400x300", 16, ()),
)
NARRATIONS = (
    (1.0, 4.5, "first we get the pan ready"),
    (6.0, 9.0, "now crack the eggs into the bowl"),
    (11.5, 14.0, "stir everything until it is smooth"),
)


def write_video(path: Path, source: str, size: str, seconds: float, audio: bool = False) -> None:
    name, _, opts = source.partition("=")
    spec = f"{name}=size={size}:rate=25" + (f":{opts}" if opts else "")
    args = ["-y", "-loglevel", "error", "-f", "lavfi", "-i", spec]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=330:duration={seconds}"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", "yuv420p", "-g", "50"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    run([*args, str(path)], what=f"generating sample video {path}")


def make_sample(out: Path) -> Path:
    videos, captions = out / "videos", out / "captions"
    videos.mkdir(parents=True, exist_ok=True)
    captions.mkdir(parents=True, exist_ok=True)
    for i, (vid, source, size, seconds, _) in enumerate(SAMPLES):
        path = videos / f"{vid}.mp4"
        if not path.exists():
            write_video(path, source, size, seconds, audio=i == 0)
        rows = [(s, e, t) for s, e, t in NARRATIONS if e <= seconds]
        (captions / f"{vid}.csv").write_text("start,end,text\n" + "".join(f"{s},{e},{t}\n" for s, e, t in rows))
    manifest = out / "manifest"
    code = build_main(["howto100m", str(captions), "--video-dir", str(videos), "--out", str(manifest),
                       "--overwrite", "--no-progress"])
    if code != 0:
        raise SystemExit(code)
    return manifest


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m manifests.sample", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, required=True)
    manifest = make_sample(p.parse_args(argv).out)
    print(f"sample manifest: {manifest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
