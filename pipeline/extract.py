"""`python -m pipeline.extract`: decode every manifest segment once, encode it with the frozen encoders,
and write the features into the store.

    python -m pipeline.extract --manifest MANIFEST --store STORE --encoders clip[,s3d] --preset tiny|vit-b-32
        [--clip-model HUB_ID_OR_DIR] [--s3d-weights s3d_howto100m.pth --s3d-dict s3d_dict.npy]
        [--s3d-fps 16 --s3d-window 32] [--grid-dtype float16|int8] [--backend sequential|ray] [--workers N]
        [--ray-address ADDR] [--on-change reextract|keep|refuse] [--retry-failed] [--repair [--deep]]

Exit 0 when the run finished, even with failure records; 2 when it could not proceed (bad manifest or option,
encoder settings that differ from the store's, a store held by another run, a root that is not a store);
130 when interrupted (Ctrl-C): what was committed stays, and rerunning resumes.
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
from pipeline.plan import ON_CHANGE, PlanError, PlanOptions, plan_shards
from pipeline.store import StoreError, WriterLock, consolidate, init_store, layout
from pipeline.store.fs import StoreFS
from pipeline.store.index import JOURNAL_LIMIT
from pipeline.store.root import claim_root
from pipeline.store.writer import clear_inflight
from pipeline.verify import damaged_shards, videos_of_shards
from pipeline.worker import store_specs

# (option, low, high): a chunk of 4096 frames is ~600 MB of decoded 224x224 RGB; more retries than 10 only
# repeat a deterministic failure; an S3D window is a multiple of 8 frames (mixed_5c has T/8 steps).
BOUNDS = (("chunk_frames", 1, 4096), ("retries", 0, 10), ("workers", 1, 1024), ("videos_per_shard", 1, 100_000),
          ("s3d_fps", 1e-3, 60.0), ("s3d_window", 8, 512))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.extract", description=__doc__.split("\n\n")[0])
    p.add_argument("--manifest", required=True, help="manifest directory (python -m manifests.build ...)")
    p.add_argument("--store", required=True, help="store root: a directory or an fsspec URL (s3://, gs://, ...)")
    p.add_argument("--encoders", default="clip", help="comma-separated: clip, s3d (default: clip)")
    p.add_argument("--preset", default="tiny", choices=("tiny", "vit-b-32"),
                   help="tiny: small random encoders (tests, demo); vit-b-32: real weights (default: tiny)")
    p.add_argument("--clip-model", default=None, help="CLIP hub id or local directory (preset vit-b-32)")
    p.add_argument("--s3d-weights", default=None, help="s3d_howto100m.pth (preset vit-b-32 with s3d)")
    p.add_argument("--s3d-dict", default=None, help="s3d_dict.npy (preset vit-b-32 with s3d)")
    p.add_argument("--s3d-fps", type=float, default=16.0, help="frame rate of S3D windows (default 16)")
    p.add_argument("--s3d-window", type=int, default=32, help="frames per S3D window, a multiple of 8 (default 32)")
    p.add_argument("--clip-normalize", default="clip", choices=("clip", "none"),
                   help="CLIP mean/std normalisation; 'none' is what the authors' code did (default clip)")
    p.add_argument("--resize", default="center-crop", choices=RESIZE_MODES,
                   help="short side + centre crop, or squash to 224x224 as the authors' evaluation (default center-crop)")
    p.add_argument("--grid-dtype", default="float16", choices=layout.GRID_DTYPES,
                   help="grid tokens on disk: float16, or int8 with a float16 scale per token (~2x smaller; "
                        "readers return float16 either way). A store keeps one (default float16)")
    p.add_argument("--backend", default="sequential", choices=BACKENDS)
    p.add_argument("--workers", type=int, default=1, help="Ray actors (ray backend; default 1)")
    p.add_argument("--ray-address", default=None, help="join an existing Ray cluster instead of starting one")
    p.add_argument("--videos-per-shard", type=int, default=8)
    p.add_argument("--chunk-frames", type=int, default=32, help="frames per decode chunk / encoder batch")
    p.add_argument("--retries", type=int, default=1, help="retries of a failed segment before recording it")
    p.add_argument("--device", default=None, help="torch device for the encoders (default: cuda when present)")
    p.add_argument("--on-change", default="reextract", choices=ON_CHANGE,
                   help="a source video replaced since it was extracted: re-extract it (default), keep its old "
                        "features, or refuse to run")
    p.add_argument("--retry-failed", action="store_true", help="extract again the videos with failure records")
    p.add_argument("--repair", action="store_true",
                   help="re-extract the videos of shards that verification finds damaged (missing chunks; with "
                        "--deep, also chunks whose checksum differs)")
    p.add_argument("--deep", action="store_true", help="with --repair: read and check every chunk")
    p.add_argument("--force-unlock", action="store_true", help="clear a lock left by a dead run, then take it")
    args = p.parse_args(argv)
    check_args(args)
    return args


def check_args(args: argparse.Namespace) -> None:
    for name, lo, hi in BOUNDS:
        value = getattr(args, name)
        if not lo <= value <= hi:
            raise ValueError(f"--{name.replace('_', '-')} must be in [{lo:g}, {hi:g}], got {value:g}")
    if args.s3d_window % 8:
        raise ValueError(f"--s3d-window must be a multiple of 8 (mixed_5c has T/8 steps), got {args.s3d_window}")


def encoder_config(args: argparse.Namespace) -> EncoderConfig:
    names = tuple(n.strip() for n in args.encoders.split(",") if n.strip())
    return EncoderConfig(names, args.preset, args.clip_model, args.s3d_weights, args.s3d_dict, args.s3d_fps,
                         args.s3d_window, args.clip_normalize, args.resize, args.device, args.grid_dtype)


def extract(args: argparse.Namespace, progress: dict | None = None) -> dict:
    """Run the extraction; returns the run summary. `progress` is filled as shards complete (for Ctrl-C)."""
    progress = {} if progress is None else progress
    manifest = Manifest.read(args.manifest)
    config = encoder_config(args)
    sequential = args.backend == "sequential"
    # The driver needs the specs to bind the store; with Ray it builds a CPU copy just for that.
    encoders = config.build(device=None if sequential else "cpu")
    specs = store_specs(encoders, args.grid_dtype)
    claim_root(args.store)
    t0 = time.perf_counter()
    with WriterLock(args.store, force=args.force_unlock):
        init_store(args.store, specs)
        progress["settled"] = clear_inflight(args.store)
        index = consolidate(args.store, specs)
        damaged = damaged_shards(args.store, deep=args.deep) if args.repair else {}
        repair = videos_of_shards(index, set(damaged))
        plan = plan_shards(manifest.videos.to_pylist(), manifest.segments.to_pylist(), manifest.captions.to_pylist(),
                           index, PlanOptions(args.on_change, args.retry_failed, frozenset(repair),
                                              args.videos_per_shard, 1 if sequential else args.workers))
        progress.update(plan=plan, summaries=[], total=sum(p.n_segments for p in plan.shards))
        _run(args, plan, config, encoders if sequential else None, specs, progress)
        index = consolidate(args.store, specs)
        if damaged:
            for shard in damaged:  # every video they served was extracted again into a new shard
                StoreFS(args.store).remove_tree(layout.shard_path(shard))
    return _summary(manifest, progress, index, time.perf_counter() - t0, damaged)


def _run(args, plan, config, encoders, specs, progress) -> None:
    sequential = encoders is not None
    summaries, since = progress["summaries"], 0
    with tqdm(total=progress["total"], unit="seg", desc="extract", disable=not progress["total"]) as bar:
        for s in run_shards(plan.shards, args.store, config, backend=args.backend, workers=args.workers,
                            ray_address=args.ray_address, chunk_frames=args.chunk_frames, retries=args.retries,
                            encoders=encoders, on_segment=bar.update if sequential else None):
            summaries.append(s)
            if not sequential:
                bar.update(s.segments)
            bar.set_postfix(failed=sum(x.failed_segments for x in summaries))
            since += 1
            if since >= JOURNAL_LIMIT:  # keep what readers must read on open bounded during long runs
                consolidate(args.store, specs)
                since = 0


def _reason_class(failure: dict) -> str:
    """'stage: problem' without the file name, so failures group by cause."""
    first = failure["reason"].splitlines()[0]
    problem = first.split(": ", 1)[1] if ": " in first and ("/" in first.split(": ", 1)[0] or
                                                             "." in first.split(": ", 1)[0]) else first
    return f"{failure['stage']}: {problem[:80]}"


def _summary(manifest: Manifest, progress: dict, index, seconds: float, damaged: dict) -> dict:
    summaries, plan = progress["summaries"], progress["plan"]
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
        "work_by_reason": dict(plan.reasons),
        "changed_kept": len(plan.kept_changed),
        "damaged_shards": len(damaged),
        "incomplete_shards_removed": progress.get("settled", {}).get("removed", 0),
        "store_shards": index.n_shards,
    }


def print_summary(summary: dict) -> None:
    if summary["segments"] == 0:
        print(f"nothing to do: all {summary['manifest_segments']} manifest segments are already in the store")
    else:
        print(f"\nextracted {summary['segments']} segments of {summary['videos']} videos in "
              f"{summary['seconds']:.1f} s ({summary['shards_written']} shards; why: "
              f"{', '.join(f'{n} {k}' for k, n in summary['work_by_reason'].items())})")
        for name, n in summary["frames"].items():
            print(f"  {name}: {n} {'windows' if name == 's3d' else 'frames'} "
                  f"({summary['frames_per_second'][name]:.1f}/s)")
        print(f"  captions: {summary['captions']}   truncated segments: {summary['truncated_segments']}")
        print(f"  failed segments: {summary['failed_segments']}")
        for reason, n in summary["failures_by_reason"].items():
            print(f"    {n:5d} x {reason}")
    if summary["changed_kept"]:
        print(f"  {summary['changed_kept']} videos changed since extraction kept their old features (--on-change keep)")
    if summary["damaged_shards"]:
        print(f"  repaired: {summary['damaged_shards']} damaged shards re-extracted and removed")
    print(json.dumps(summary, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    progress: dict = {}
    try:
        args = parse_args(argv)
        prepare_extraction_process()
        summary = extract(args, progress)
    except (ManifestError, StoreError, PlanError, ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        done = sum(s.segments for s in progress.get("summaries", []))
        print(f"interrupted: {done} of {progress.get('total', '?')} planned segments committed; rerun the same "
              f"command to resume", file=sys.stderr)
        return 130
    print_summary(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
