"""`python -m pipeline.bench_disk`: what a store costs on disk, per second of video and projected to HowTo100M.

One generated 60-s video (640x360, noisy testsrc2) is extracted through the real pipeline with full-size
encoders of random weights (CLIP ViT-B/32: 512-d CLS and 7x7x512 grid; S3D-G: 1024-d, 4x7x7x1024 mixed_5c per
32-frame window at 16 fps), the CLIP grid at 1 fps and at 5 fps, in float16 and with `--grid-dtype int8`;
bytes on disk per array group come from the store's chunk sizes (`pipeline.verify.store_sizes`). Random weights
give features of real shape and dtype; how well real features compress may differ by some percent.
HowTo100M: 134,472 hours of video (Miech et al. 2019). The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HOWTO100M_HOURS = 134_472


def _store_bytes(encoder, video: Path, fps: float, root: str, grid_dtype: str) -> dict[str, int]:
    from pipeline.backends import EncoderConfig, run_shards
    from pipeline.plan import plan_shards
    from pipeline.store import consolidate, init_store, open_store
    from pipeline.verify import store_sizes

    from pipeline.worker import store_specs

    init_store(root, store_specs({encoder.name: encoder}, grid_dtype))
    videos = [{"video_id": "v", "path": str(video), "probe_error": None}]
    segs = [{"segment_id": "v:all", "video_id": "v", "start": 0.0, "end": None, "fps": fps}]
    plan = plan_shards(videos, segs, [], None)
    summary = next(run_shards(plan.shards, root, EncoderConfig((encoder.name,), "tiny", grid_dtype=grid_dtype),
                              encoders={encoder.name: encoder}, chunk_frames=32))
    assert summary.failed_segments == 0, summary.failures
    consolidate(root)
    return store_sizes(open_store(root))


def build_s3d():
    import torch

    from pipeline.encoders import build_encoders
    from pipeline.encoders.s3d import S3dEncoder
    from pipeline.encoders.s3d_model import S3DConfig, S3DG
    from pipeline.encoders.weights import state_dict_sha256

    torch.manual_seed(0)
    tiny = build_encoders(["s3d"], "tiny")["s3d"]
    model = S3DG(S3DConfig(num_embeddings=tiny.tokenizer.vocab_rows))
    for m in model.modules():  # torch's default init fades to ~1e-10 over S3D's depth (all-zero float16, which
        if isinstance(m, torch.nn.Conv3d):  # compresses to nothing); He init keeps post-ReLU features alive
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    return S3dEncoder(model, tiny.tokenizer, model_name="s3dg-random", weights_sha256=state_dict_sha256(
        model.state_dict()), weights_hashed="state_dict", source="random-init", fps=16.0, window=32,
        resize="center-crop", sentence_pool="max", device="cpu")


def measure(seconds: int, workdir: Path) -> dict:
    from pipeline.bench import build_clip, make_video

    video = make_video(workdir / "video.mp4", seconds)
    clip, rows = build_clip("vit-b-32"), {}
    for fps in (1.0, 5.0):
        for dtype in ("float16", "int8"):
            t0 = time.perf_counter()
            sizes = _store_bytes(clip, video, fps, str(workdir / f"clip-{fps:g}-{dtype}.zarr"), dtype)
            rows[f"clip {fps:g} fps {dtype}"] = {"bytes_per_s": sizes["clip"] / seconds,
                                                 "seconds": time.perf_counter() - t0}
    for dtype in ("float16", "int8"):
        sizes = _store_bytes(build_s3d(), video, 1.0, str(workdir / f"s3d-{dtype}.zarr"), dtype)
        rows[f"s3d 16 fps, 32-frame windows {dtype}"] = {"bytes_per_s": sizes["s3d"] / seconds}
    for row in rows.values():
        row["howto100m_tb"] = row["bytes_per_s"] * HOWTO100M_HOURS * 3600 / 1e12
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench_disk", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=60)
    p.add_argument("--out", default=None, help="folder for the video and stores (default: a temporary one)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(args.out or tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        rows = measure(args.seconds, workdir)
    print("| group | bytes per video-second | HowTo100M (134,472 h) |\n|---|---:|---:|")
    for name, row in rows.items():
        print(f"| {name} | {row['bytes_per_s'] / 1e3:,.1f} kB | {row['howto100m_tb']:,.1f} TB |")
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
