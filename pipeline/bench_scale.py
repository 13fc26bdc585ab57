"""`python -m pipeline.bench_scale`: the store at HowTo100M size, written and measured.

    python -m pipeline.bench_scale --videos N --narrations-per-video C --store S --write-only
    python -m pipeline.bench_scale --sizes 10000,100000,1200000 --narrations-per-video 113 --out DIR

`--write-only` writes a store whose index is a real index of this version for N videos: each video has
`--segments-per-video` segments and C narrations with their own ids and texts, and every one of them is
readable through the public reader. Feature rows are tiny (8-d) and shared: one real shard holds one video's
worth of frames and caption features, and every video's rows point into it (so writing 1.2M videos x 113
narrations takes minutes and ~10 GB, nearly all of it the index).

Without `--write-only`, for each size it writes (or reuses) DIR/<N>.zarr and measures, each in a fresh process:
open_store (seconds, added RSS: anonymous and file-mapped separately), median `frames(video)` and
`captions(video)` over random videos, and the memory one more DataLoader worker adds: the proportional memory
(PSS) of the main process and its workers with two workers minus with one, all reading random videos through
one FeatureStore per worker. The table is printed and the last line is a JSON object. (The trainer's narration
index at the same sizes: `python -m trainer.bench_narrations --store DIR/<N>.zarr`.)
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.store import ShardWriter, StoreError, init_store, layout
from pipeline.store.columns import Strings
from pipeline.store.consolidate import RunWriter
from pipeline.procmem import smaps_mb, status_mb
from pipeline.store.fs import StoreFS
from pipeline.store.runs import tables_from_markers

DIM = 8
SPEC = {"encoder": "clip", "model": "bench-scale", "weights_sha256": "none", "grid": [7, 7], "max_words": 20,
        "dims": {"global": DIM, "grid": DIM, "sentence": DIM, "words": DIM},
        "preprocessing": {"size": 224, "resize": "center-crop"}}
TEMPLATE = "__bench_template__"
BLOCK = 20_000  # videos generated and appended per step


# ---- writing ------------------------------------------------------------------------------------------------
def _digits(values: np.ndarray, width: int) -> np.ndarray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return ((values[:, None] // powers) % 10 + ord("0")).astype(np.uint8)


def _fixed(parts: list) -> Strings:
    """Fixed-width strings from parts: bytes constants or (numbers, width) digit runs; one row per number."""
    n = next(len(p[0]) for p in parts if isinstance(p, tuple))
    cols = [np.broadcast_to(np.frombuffer(p, np.uint8), (n, len(p))) if isinstance(p, bytes) else _digits(*p)
            for p in parts]
    data = np.concatenate(cols, axis=1)
    return Strings(np.arange(n + 1, dtype=np.int64) * data.shape[1], data.tobytes())


def _template(root: str, segments: int, segment_s: float, fps: float, narrations: int) -> dict:
    """One real shard holding one video's frames and caption features; every generated video points into it."""
    rng = np.random.default_rng(0)
    w = ShardWriter(root, layout.new_shard_name(), {"clip": SPEC})
    n = int(round(segment_s * fps))
    for k in range(segments):
        meta = {"segment_id": f"{TEMPLATE}:{k}", "video_id": TEMPLATE, "start": k * segment_s,
                "end": (k + 1) * segment_s, "fps": fps}
        with w.segment(meta) as rows:
            grid = rng.standard_normal((n, 7, 7, DIM))
            w.append_frames("clip", times=k * segment_s + np.arange(n) / fps, grid=grid, **{"global": grid.mean((1, 2))})
            rows.info.update(truncated=False, end_actual=(k + 1) * segment_s)
    caps = [{"caption_id": f"{TEMPLATE}:{j}", "video_id": TEMPLATE, "start": 0.0, "end": 1.0, "text": "t",
             "kind": "narration"} for j in range(narrations)]
    words = rng.standard_normal((narrations, 20, DIM))
    w.add_captions(caps, {"clip": {"sentence": words.mean(1), "words": words, "mask": np.ones((narrations, 20), bool)}})
    return w.commit()


def _block(a: int, b: int, c: int, segments: int, segment_s: float, fps: float) -> dict:
    """Tables of generated videos a..b-1: ids v0000000000.., their segments and narrations."""
    v = np.arange(a, b, dtype=np.int64)
    n = len(v)
    per_seg, per_cap = np.repeat(v, segments), np.repeat(v, c)
    k, j = np.tile(np.arange(segments), n), np.tile(np.arange(c), n)
    span = segments * segment_s
    start = j * (span - 2.0) / max(1, c - 1)
    rows = int(round(segment_s * fps))
    return {
        "videos": {"id": _fixed([b"v", (v, 10)]), "src_size": np.full(n, -1, np.int64),
                   "src_mtime": np.full(n, np.nan), "src_hash": Strings(np.zeros(n + 1, np.int64), b"")},
        "counts": {"seg": np.full(n, segments), "cap": np.full(n, c), "fail": np.zeros(n, np.int64)},
        "segments": {"id": _fixed([b"v", (per_seg, 10), b":", (k, 3)]), "shard": np.zeros(n * segments, np.int32),
                     "start": k * segment_s, "end": (k + 1) * segment_s, "fps": np.full(n * segments, fps),
                     "end_actual": (k + 1) * segment_s, "truncated": np.zeros(n * segments, bool),
                     "row": (k * rows)[:, None].astype(np.int32), "n": np.full((n * segments, 1), rows, np.int32)},
        "captions": {"id": _fixed([b"v", (per_cap, 10), b":", (j, 3)]),
                     "text": _fixed([b"step ", (j, 3), b" of video ", (per_cap, 10)]),
                     "start": start, "end": start + 2.0, "kind": np.zeros(n * c, np.int8),
                     "shard": np.zeros(n * c, np.int32), "row": j.astype(np.int32)},
    }


def write_scale_store(root: str, videos: int, narrations: int, segments: int = 4, segment_s: float = 16.0,
                      fps: float = 1.0) -> dict:
    """Write the store described in the module docstring; returns what was written."""
    if StoreFS(root).exists(layout.ROOT_META):
        raise StoreError(f"{root}: a store is already there; give a new path")
    t0 = time.perf_counter()
    init_store(root, {"clip": SPEC})
    marker = _template(root, segments, segment_s, fps, narrations)
    cols, meta = tables_from_markers([marker], {"clip": SPEC})
    fs = StoreFS(root)
    w = RunWriter(fs, {**meta, "kinds": ["narration"]})
    empty = {k.split(".", 1)[1]: v[:0] for k, v in cols.items() if k.startswith("failures.")}
    for a in range(0, videos, BLOCK):
        t = _block(a, min(videos, a + BLOCK), narrations, segments, segment_s, fps)
        w.videos(t["videos"], t["counts"])
        w.rows("segments", t["segments"])
        w.rows("captions", t["captions"])
        w.rows("failures", empty)
        print(f"\rwrote {min(videos, a + BLOCK):,} / {videos:,} videos", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    w.shards(cols["shards.name"], cols["shards.rows"], cols["shards.crc_off"], cols["chunks.crc"], cols["chunks.size"])
    run = w.close()
    fs.write_json(layout.CURRENT, {"format": layout.SCHEMA_VERSION, "runs": [run], "consumed": [marker["shard"]],
                                   "retired": []})
    fs.remove(layout.journal_path(marker["shard"]))
    return {"videos": videos, "narrations": videos * narrations, "seconds": round(time.perf_counter() - t0, 1),
            "index_bytes": sum(p.stat().st_size for p in Path(root, layout.INDEX_DIR).rglob("*") if p.is_file())
            if fs.local else None}


# ---- measuring, each in a fresh process ---------------------------------------------------------------------
def probe_open(root: str) -> dict:
    from pipeline.store import open_store

    before = status_mb()
    t0 = time.perf_counter()
    store = open_store(root)
    seconds = time.perf_counter() - t0
    after = status_mb()
    n = len(store.video_ids())
    return {"open_s": seconds, "open_anon_mb": after["RssAnon"] - before["RssAnon"],
            "open_file_mb": after["RssFile"] - before["RssFile"], "videos": n}


def probe_read(root: str, samples: int = 300) -> dict:
    """Median latency of frames() and captions() of random videos, with the decoded-chunk cache off."""
    from pipeline.store.reader import FeatureStore

    store = FeatureStore(root, cache_mb=0)
    ids = store.video_ids()
    picks = np.random.default_rng(0).integers(len(ids), size=samples)
    times = {"frames": [], "captions": []}
    for i in picks:
        vid = ids[int(i)]
        t0 = time.perf_counter()
        f = store.frames(vid, "clip")
        t1 = time.perf_counter()
        c = store.captions(vid, "clip")
        t2 = time.perf_counter()
        assert len(f["times"]) and len(c["text"])
        times["frames"].append(t1 - t0), times["captions"].append(t2 - t1)
    return {f"{k}_ms": 1e3 * float(np.median(v)) for k, v in times.items()} | \
        {f"{k}_p90_ms": 1e3 * float(np.percentile(v, 90)) for k, v in times.items()} | \
        {"narrations_per_video": len(c["text"])}


def probe_workers(root: str, workers: int = 2, samples: int = 640) -> dict:
    """DataLoader workers reading random videos, each through its own FeatureStore over the same mapped files.

    Returns the proportional memory (PSS) of the main process and its workers together, so that a run with one
    worker and a run with two give the cost of one more worker, and each worker's private dirty memory (what
    exists only because it does: its heap and the inherited pages it wrote to) and mapped-file pages (index page
    cache, shared with every other process and dropped under memory pressure)."""
    import psutil
    import torch
    from torch.utils.data import DataLoader, Dataset

    from pipeline.store import open_store

    class Videos(Dataset):
        def __init__(self):
            self.store, self.pid = open_store(root), os.getpid()
            self.n = len(self.store.video_ids())

        def __len__(self):
            return self.n

        def __getitem__(self, i):
            if self.pid != os.getpid():  # a worker: its own store object, over the same mapped files
                self.store, self.pid = open_store(root), os.getpid()
            vid = self.store.video_ids()[int(i)]
            return torch.from_numpy(self.store.frames(vid)["global"].astype(np.float32)).sum() + \
                len(self.store.captions(vid)["text"])

    ds = Videos()
    sampler = torch.utils.data.RandomSampler(ds, num_samples=samples, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(ds, batch_size=16, sampler=sampler, num_workers=workers, persistent_workers=True)
    for _ in loader:
        pass
    kids = [smaps_mb(k.pid) for k in psutil.Process().children()]
    total = smaps_mb()["Pss"] + sum(k["Pss"] for k in kids)
    del loader
    return {"workers": len(kids), "total_pss_mb": total,
            "worker_private_mb": max(k["Private_Dirty"] for k in kids),
            "worker_file_mb": max(k["Pss_File"] for k in kids)}


PROBES = {"open": probe_open, "read": probe_read, "workers": probe_workers}


def run_probe(name: str, root: str, *extra: str) -> dict:
    proc = subprocess.run([sys.executable, "-m", "pipeline.bench_scale", "--probe", name, "--store", root, *extra],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"probe {name} on {root} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


TARGETS = {"open_s": 5.0, "open_anon_mb": 1024.0, "frames_ms": 10.0, "captions_ms": 10.0, "worker_added_mb": 100.0}


def measure(out: Path, sizes: list[int], narrations: int) -> list[dict]:
    rows = []
    for n in sizes:
        root = str(out / f"{n}.zarr")
        written = out / f"{n}.json"
        if not written.exists():
            written.write_text(json.dumps(write_scale_store(root, n, narrations)))
        row = {"size": n, **json.loads(written.read_text())}
        row.update(run_probe("open", root))
        row.update(run_probe("read", root))
        one, two = run_probe("workers", root, "--workers", "1"), run_probe("workers", root, "--workers", "2")
        row.update(two, worker_added_mb=two["total_pss_mb"] - one["total_pss_mb"])
        row["targets_met"] = all(row[k] < v for k, v in TARGETS.items())
        rows.append(row)
        print(f"measured {n:,} videos", file=sys.stderr)
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| videos | narrations | index on disk | open s | open RSS anon / file MB | frames ms (p90) | "
             "captions ms (p90) | one more worker MB (private / index pages) | targets |", "|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r['videos']:,} | {r['narrations']:,} | {r['index_bytes'] / 2**30:.2f} GiB | {r['open_s']:.2f} "
                     f"| {r['open_anon_mb']:.0f} / {r['open_file_mb']:.0f} | {r['frames_ms']:.2f} "
                     f"({r['frames_p90_ms']:.2f}) | {r['captions_ms']:.2f} ({r['captions_p90_ms']:.2f}) | "
                     f"{r['worker_added_mb']:.0f} ({r['worker_private_mb']:.0f} / {r['worker_file_mb']:.0f}) | "
                     f"{'met' if r['targets_met'] else 'MISSED'} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m pipeline.bench_scale", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", help="with --write-only: the store to write")
    p.add_argument("--videos", type=int, default=1_200_000, help="videos of the --write-only store")
    p.add_argument("--narrations-per-video", type=int, default=113, help="HowTo100M: 136M / 1.2M = 113")
    p.add_argument("--segments-per-video", type=int, default=4)
    p.add_argument("--write-only", action="store_true", help="write --store and stop")
    p.add_argument("--sizes", default="10000,100000,1200000", help="videos of each measured store")
    p.add_argument("--out", default="data/bench-scale", help="folder of the measured stores (reused when present)")
    p.add_argument("--s3", action="store_true", help="also count S3 requests per open at 10 and 1,000 shards")
    p.add_argument("--probe", choices=sorted(PROBES), help=argparse.SUPPRESS)  # internal: one fresh-process probe
    p.add_argument("--workers", type=int, default=2, help=argparse.SUPPRESS)  # internal: the workers probe's
    args = p.parse_args(argv)
    if (args.write_only or args.probe) and not args.store:
        p.error("--store is needed with --write-only")
    if not 1 <= args.narrations_per_video <= 999 or not 1 <= args.segments_per_video <= 999 or args.videos < 1:
        p.error("--videos must be >= 1 and --narrations-per-video, --segments-per-video in [1, 999]")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.probe:
        extra = {"workers": args.workers} if args.probe == "workers" else {}
        print(json.dumps(PROBES[args.probe](args.store, **extra)))
        return 0
    try:
        if args.write_only:
            print(json.dumps(write_scale_store(args.store, args.videos, args.narrations_per_video,
                                               args.segments_per_video)))
            return 0
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        rows = measure(out, [int(s) for s in args.sizes.split(",")], args.narrations_per_video)
    except StoreError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    result = {"rows": rows, "targets": TARGETS}
    if args.s3:
        from pipeline.bench_requests import requests_per_open

        result["s3_requests_per_open"] = requests_per_open(out / "s3", SPEC)
    print(table(rows))
    if args.s3:
        print("S3 requests per open_store (fresh process; cold = empty index cache):",
              json.dumps(result["s3_requests_per_open"]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
