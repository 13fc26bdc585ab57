"""`python -m pipeline.extract`: decode every manifest segment once, encode it with the frozen encoders,
and write the features into the store.

    python -m pipeline.extract --manifest MANIFEST --store STORE --encoders clip[,s3d] --preset tiny|vit-b-32
        [--clip-model HUB_ID_OR_DIR] [--s3d-weights s3d_howto100m.pth --s3d-dict s3d_dict.npy]
        [--s3d-fps 16 --s3d-window 32] [--grid-dtype float16|int8] [--backend sequential|ray] [--workers N]
        [--ray-address ADDR] [--on-change reextract|keep|refuse] [--retry-failed] [--repair [--deep]]
        [KEY=VALUE ...]

The options form one typed, frozen config (pipeline.extract_config.ExtractConfig, built with pipeline.config's
mechanism): its defaults <- the flags given <- trailing `key=value` overrides naming a field
(`chunk_frames=64`, `encoders=clip,s3d`, `retry_failed=true`), which win over the flags. An unknown key, a
value of the wrong type or out of bounds is refused before any work.

Exit 0 when the run finished, even with failure records; 2 when it could not proceed (bad manifest, option or
`key=value`, encoder settings that differ from the store's, a store held by another run, a root that is not a
store); 130 when interrupted (Ctrl-C): what was committed stays, and rerunning resumes.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import threading
import time
from collections import Counter

from tqdm import tqdm

from manifests.errors import ManifestError
from manifests.schema import Manifest
from pipeline.backends import BACKENDS, EncoderConfig, prepare_extraction_process, run_shards
from pipeline.decode import RESIZE_MODES
from pipeline.extract_config import CLIP_NORMALIZE, PRESETS, ExtractConfig, load_extract_config
from pipeline.plan import ON_CHANGE, PlanError, PlanOptions, plan_shards
from pipeline.store import StoreError, WriterLock, consolidate, init_store, layout
from pipeline.store.fs import StoreFS
from pipeline.store.index import JOURNAL_LIMIT
from pipeline.store.root import claim_root
from pipeline.store.writer import clear_inflight
from pipeline.verify import damaged_shards, videos_of_shards
from pipeline.worker import store_specs

DEFAULTS = {f.name: f.default for f in dataclasses.fields(ExtractConfig) if f.default is not dataclasses.MISSING}


def _help(text: str, name: str) -> str:
    """A flag's help with its default, read from ExtractConfig (the one place defaults live)."""
    default = DEFAULTS[name]
    return f"{text} (default: {','.join(default) if isinstance(default, tuple) else default})"


def parser() -> argparse.ArgumentParser:
    """The command line: every flag sets the ExtractConfig field of the same name (--chunk-frames: chunk_frames);
    flags not given are left out of the namespace (argparse.SUPPRESS), so the defaults are ExtractConfig's."""
    p = argparse.ArgumentParser(prog="python -m pipeline.extract", description=__doc__.split("\n\n")[0],
                                argument_default=argparse.SUPPRESS,
                                epilog="KEY=VALUE: any option by its name with underscores (chunk_frames=64, "
                                       "encoders=clip,s3d, retry_failed=true, device=none); it wins over the flag.")
    p.add_argument("--manifest", required=True, help="manifest directory (python -m manifests.build ...)")
    p.add_argument("--store", required=True, help="store root: a directory or an fsspec URL (s3://, gs://, ...)")
    p.add_argument("--encoders", help=_help("comma-separated: clip, s3d", "encoders"))
    p.add_argument("--preset", choices=PRESETS,
                   help=_help("tiny: small random encoders (tests, demo); vit-b-32: real weights", "preset"))
    p.add_argument("--clip-model", help="CLIP hub id or local directory (preset vit-b-32)")
    p.add_argument("--s3d-weights", help="s3d_howto100m.pth (preset vit-b-32 with s3d)")
    p.add_argument("--s3d-dict", help="s3d_dict.npy (preset vit-b-32 with s3d)")
    p.add_argument("--s3d-fps", type=float, help=_help("frame rate of S3D windows", "s3d_fps"))
    p.add_argument("--s3d-window", type=int, help=_help("frames per S3D window, a multiple of 8", "s3d_window"))
    p.add_argument("--clip-normalize", choices=CLIP_NORMALIZE,
                   help=_help("CLIP mean/std normalisation; 'none' is what the authors' code did", "clip_normalize"))
    p.add_argument("--resize", choices=RESIZE_MODES,
                   help=_help("short side + centre crop, or squash to 224x224 as the authors' evaluation", "resize"))
    p.add_argument("--grid-dtype", choices=layout.GRID_DTYPES,
                   help=_help("grid tokens on disk: float16, or int8 with a float16 scale per token (~2x smaller; "
                              "readers return float16 either way). A store keeps one", "grid_dtype"))
    p.add_argument("--backend", choices=BACKENDS, help=_help("where shards run", "backend"))
    p.add_argument("--workers", type=int, help=_help("Ray actors (ray backend)", "workers"))
    p.add_argument("--ray-address", help="join an existing Ray cluster instead of starting one")
    p.add_argument("--videos-per-shard", type=int, help=_help("videos per shard", "videos_per_shard"))
    p.add_argument("--chunk-frames", type=int, help=_help("frames per decode chunk / encoder batch", "chunk_frames"))
    p.add_argument("--retries", type=int, help=_help("retries of a failed segment before recording it", "retries"))
    p.add_argument("--device", help="torch device for the encoders (default: cuda when present)")
    p.add_argument("--on-change", choices=ON_CHANGE,
                   help=_help("a source video replaced since it was extracted: re-extract it, keep its old "
                              "features, or refuse to run", "on_change"))
    p.add_argument("--retry-failed", action="store_true",
                   help="extract again the videos with failure records")
    p.add_argument("--repair", action="store_true",
                   help="re-extract the videos of shards that verification finds damaged (missing chunks; with "
                        "--deep, also chunks whose checksum differs)")
    p.add_argument("--deep", action="store_true", help="with --repair: read and check every chunk")
    p.add_argument("--force-unlock", action="store_true",
                   help="clear a lock left by a dead run, then take it")
    p.add_argument("overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="set an option by its field name (pipeline.extract_config.ExtractConfig), after the flags")
    return p


def parse_args(argv: list[str] | None = None) -> ExtractConfig:
    """The command line as an ExtractConfig: defaults <- the flags given <- the `key=value` overrides. Raises
    ConfigError (a ValueError) for an unknown key, a value of the wrong type or out of bounds."""
    ns = vars(parser().parse_intermixed_args(argv))
    overrides = ns.pop("overrides", [])
    return load_extract_config(ns, overrides)


def config_from_namespace(args: argparse.Namespace | ExtractConfig) -> ExtractConfig:
    """An ExtractConfig from a Namespace holding the options by field name (code written for the old
    argparse-based API); an ExtractConfig is returned as it is."""
    if isinstance(args, ExtractConfig):
        return args
    return load_extract_config({k: v for k, v in vars(args).items() if k != "overrides"},
                               getattr(args, "overrides", None) or ())


def encoder_config(cfg: ExtractConfig) -> EncoderConfig:
    """What the workers need to build the encoders again (pipeline.backends.EncoderConfig)."""
    cfg = config_from_namespace(cfg)
    return EncoderConfig(tuple(cfg.encoders), cfg.preset, cfg.clip_model, cfg.s3d_weights, cfg.s3d_dict, cfg.s3d_fps,
                         cfg.s3d_window, cfg.clip_normalize, cfg.resize, cfg.device, cfg.grid_dtype)


def extract(cfg: ExtractConfig, progress: dict | None = None) -> dict:
    """Run the extraction; returns the run summary. `progress` is filled as shards complete (for Ctrl-C)."""
    cfg = config_from_namespace(cfg)
    progress = {} if progress is None else progress
    manifest = Manifest.read(cfg.manifest)
    config = encoder_config(cfg)
    sequential = cfg.backend == "sequential"
    # The driver needs the specs to bind the store; with Ray it builds a CPU copy just for that.
    encoders = config.build(device=None if sequential else "cpu")
    specs = store_specs(encoders, cfg.grid_dtype)
    claim_root(cfg.store)
    t0 = time.perf_counter()
    with WriterLock(cfg.store, force=cfg.force_unlock):
        init_store(cfg.store, specs)
        progress["settled"] = clear_inflight(cfg.store)
        index = consolidate(cfg.store, specs)
        damaged = damaged_shards(cfg.store, deep=cfg.deep) if cfg.repair else {}
        repair = videos_of_shards(index, set(damaged))
        plan = plan_shards(manifest.videos.to_pylist(), manifest.segments.to_pylist(), manifest.captions.to_pylist(),
                           index, PlanOptions(cfg.on_change, cfg.retry_failed, frozenset(repair),
                                              cfg.videos_per_shard, 1 if sequential else cfg.workers))
        progress.update(plan=plan, summaries=[], total=sum(p.n_segments for p in plan.shards))
        _run(cfg, plan, config, encoders if sequential else None, specs, progress)
        index = consolidate(cfg.store, specs)
        if damaged:
            for shard in damaged:  # every video they served was extracted again into a new shard
                StoreFS(cfg.store).remove_tree(layout.shard_path(shard))
    return _summary(manifest, progress, index, time.perf_counter() - t0, damaged)


class Interrupts:
    """Ctrl-C raises KeyboardInterrupt at once, as usual, and is remembered: one that lands where Python swallows
    exceptions (a finaliser, a logging handler run while a child process starts) is not printed as an ignored
    traceback but raised again at the next segment or shard, so that it is never lost."""

    def __init__(self):
        self.hit, self.previous, self.hook = False, None, None

    def __enter__(self) -> "Interrupts":
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
            self.hook, sys.unraisablehook = sys.unraisablehook, self._unraisable
        return self

    def __exit__(self, *exc) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            sys.unraisablehook = self.hook

    def _handle(self, signum, frame) -> None:
        self.hit = True
        raise KeyboardInterrupt

    def _unraisable(self, unraisable) -> None:
        if not issubclass(unraisable.exc_type, KeyboardInterrupt):
            self.hook(unraisable)

    def check(self) -> None:
        if self.hit:
            raise KeyboardInterrupt


def _run(cfg: ExtractConfig, plan, config: EncoderConfig, encoders, specs, progress) -> None:
    sequential = encoders is not None
    summaries, since = progress["summaries"], 0
    with tqdm(total=progress["total"], unit="seg", desc="extract", disable=not progress["total"]) as bar, \
            Interrupts() as interrupts:
        def on_segment(n: int) -> None:
            interrupts.check()
            bar.update(n)

        for s in run_shards(plan.shards, cfg.store, config, backend=cfg.backend, workers=cfg.workers,
                            ray_address=cfg.ray_address, chunk_frames=cfg.chunk_frames, retries=cfg.retries,
                            encoders=encoders, on_segment=on_segment if sequential else None):
            interrupts.check()
            summaries.append(s)
            if not sequential:
                bar.update(s.segments)
            bar.set_postfix(failed=sum(x.failed_segments for x in summaries))
            since += 1
            if since >= JOURNAL_LIMIT:  # keep what readers must read on open bounded during long runs
                consolidate(cfg.store, specs)
                since = 0
        interrupts.check()


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
        cfg = parse_args(argv)
        prepare_extraction_process()
        summary = extract(cfg, progress)
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
