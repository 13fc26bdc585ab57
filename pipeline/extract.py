"""`python -m pipeline.extract`: decode every manifest segment once, encode it with the frozen encoders,
and write the features into the store.

    python -m pipeline.extract --manifest MANIFEST --store STORE --encoders clip[,s3d] --preset tiny|vit-b-32
        [--clip-model HUB_ID_OR_DIR] [--s3d-weights s3d_howto100m.pth --s3d-dict s3d_dict.npy]
        [--s3d-fps 16 --s3d-window 32] [--backend sequential|ray] [--workers N] [--ray-address ADDR]

Exit 0 when the run finished, even with failure records; non-zero only when the run itself could
not proceed (bad manifest, encoder settings that differ from the store's, a store held by another run).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter

from tqdm import tqdm

from manifests.errors import ManifestError
from manifests.schema import Manifest
from pipeline.backends import BACKENDS, EncoderConfig, prepare_extraction_process, run_shards
from pipeline.decode import RESIZE_MODES
from pipeline.plan import plan_shards
from pipeline.store import StoreError, WriterLock, consolidate, init_store, layout
from pipeline.store.index import load_index
from pipeline.store.layout import StoreFS


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="manifest directory (python -m manifests.build ...)")
    p.add_argument("--store", required=True, help="store root: a directory or an fsspec URL")
    p.add_argument("--encoders", default="clip", help="comma-separated: clip, s3d (default: clip)")
    p.add_argument("--preset", default="tiny", choices=("tiny", "vit-b-32"),
                   help="tiny: small random encoders (tests, demo); vit-b-32: real weights (default: tiny)")
    p.add_argument("--clip-model", default=None, help="CLIP hub id or local directory (preset vit-b-32)")
    p.add_argument("--s3d-weights", default=None, help="s3d_howto100m.pth (preset vit-b-32 with s3d)")
    p.add_argument("--s3d-dict", default=None, help="s3d_dict.npy (preset vit-b-32 with s3d)")
    p.add_argument("--s3d-fps", type=float, default=16.0, help="frame rate of S3D windows (default 16)")
    p.add_argument("--s3d-window", type=int, default=32, help="frames per S3D window (default 32)")
    p.add_argument("--clip-normalize", default="clip", choices=("clip", "none"),
                   help="CLIP mean/std normalisation; 'none' is what the authors' code did (default clip)")
    p.add_argument("--resize", default="center-crop", choices=RESIZE_MODES,
                   help="short side + centre crop, or squash to 224x224 as the authors' evaluation (default center-crop)")
    p.add_argument("--backend", default="sequential", choices=BACKENDS)
    p.add_argument("--workers", type=int, default=1, help="Ray actors (ray backend; default 1)")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster instead of starting one")
    p.add_argument("--videos-per-shard", type=int, default=8)
    p.add_argument("--chunk-frames", type=int, default=32, help="frames per decode chunk / encoder batch")
    p.add_argument("--retries", type=int, default=1, help="retries of a failed segment before recording it")
    p.add_argument("--device", default=None, help="torch device for the encoders (default: cuda when present)")
    p.add_argument("--force-unlock", action="store_true", help="take over a store lock left by a dead run")
    return p.parse_args(argv)


def encoder_config(args: argparse.Namespace) -> EncoderConfig:
    names = tuple(n.strip() for n in args.encoders.split(",") if n.strip())
    return EncoderConfig(names, args.preset, args.clip_model, args.s3d_weights, args.s3d_dict, args.s3d_fps,
                         args.s3d_window, args.clip_normalize, args.resize, args.device)


def extract(args: argparse.Namespace) -> dict:
    """Run the extraction; returns the run summary (also printed)."""
    manifest = Manifest.read(args.manifest)
    config = encoder_config(args)
    sequential = args.backend == "sequential"
    # The driver needs the specs to bind the store; with Ray it builds a CPU copy just for that.
    encoders = config.build(device=None if sequential else "cpu")
    specs = {name: enc.spec for name, enc in encoders.items()}
    fs = StoreFS(args.store)
    t0 = time.perf_counter()
    with WriterLock(args.store, force=args.force_unlock):
        init_store(args.store, specs)
        for name in fs.list_shards()[1]:  # incomplete shards: debris of an interrupted run
            fs.remove_tree(layout.shard_path(name))
        plans = plan_shards(manifest.videos.to_pylist(), manifest.segments.to_pylist(),
                            manifest.captions.to_pylist(), load_index(fs), args.videos_per_shard,
                            1 if sequential else args.workers)
        total = sum(p.n_segments for p in plans)
        summaries = []
        with tqdm(total=total, unit="seg", desc="extract", disable=not total) as bar:
            for s in run_shards(plans, args.store, config, backend=args.backend, workers=args.workers,
                                ray_address=args.ray_address, chunk_frames=args.chunk_frames,
                                retries=args.retries, encoders=encoders if sequential else None,
                                on_segment=bar.update if sequential else None):
                summaries.append(s)
                if not sequential:
                    bar.update(s.segments)
                bar.set_postfix(failed=sum(x.failed_segments for x in summaries))
        index = consolidate(args.store)
    return _summary(manifest, summaries, index, time.perf_counter() - t0)


def _reason_class(failure: dict) -> str:
    """'stage: problem' without the file name, so failures group by cause."""
    first = failure["reason"].splitlines()[0]
    problem = first.split(": ", 1)[1] if ": " in first and ("/" in first.split(": ", 1)[0] or
                                                             "." in first.split(": ", 1)[0]) else first
    return f"{failure['stage']}: {problem[:80]}"


def _summary(manifest: Manifest, summaries: list, index, seconds: float) -> dict:
    frames = Counter()
    for s in summaries:
        frames.update(s.frames)
    failures = [f for s in summaries for f in s.failures]
    return {
        "manifest_segments": manifest.segments.num_rows,
        "shards_written": len(summaries),
        "videos": sum(s.videos for s in summaries),
        "segments": sum(s.segments for s in summaries),
        "failed_segments": sum(s.failed_segments for s in summaries),
        "truncated_segments": sum(s.truncated for s in summaries),
        "captions": sum(s.captions for s in summaries),
        "frames": dict(frames),
        "seconds": round(seconds, 2),
        "frames_per_second": {k: round(v / seconds, 2) for k, v in frames.items()} if seconds > 0 else {},
        "failures_by_reason": dict(Counter(_reason_class(f) for f in failures).most_common()),
        "store_segments": len(set(index.segments.column("segment_id").to_pylist())),
        "store_failures": index.failures.num_rows,
    }


def print_summary(summary: dict) -> None:
    if summary["segments"] == 0:
        print(f"nothing to do: all {summary['manifest_segments']} manifest segments are already in the store")
    else:
        print(f"\nextracted {summary['segments']} segments of {summary['videos']} videos in "
              f"{summary['seconds']:.1f} s ({summary['shards_written']} shards)")
        for name, n in summary["frames"].items():
            print(f"  {name}: {n} {'windows' if name == 's3d' else 'frames'} "
                  f"({summary['frames_per_second'][name]:.1f}/s)")
        print(f"  captions: {summary['captions']}   truncated segments: {summary['truncated_segments']}")
        print(f"  failed segments: {summary['failed_segments']}")
        for reason, n in summary["failures_by_reason"].items():
            print(f"    {n:5d} x {reason}")
    print(json.dumps(summary, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prepare_extraction_process()
    try:
        summary = extract(args)
    except (ManifestError, StoreError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
