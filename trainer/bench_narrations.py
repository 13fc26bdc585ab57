"""`python -m trainer.bench_narrations --store S`: the trainer's narration index on a store at scale.

On a store written by `python -m pipeline.bench_scale` (N videos, 113 narrations each, 16-s segments at 1 fps),
in this fresh process: `build_index` (seconds; added RSS, anonymous and file-mapped apart: the mapped caption
columns it reads are page cache shared by every process), one epoch of per-video sampling (one narration per
video), and a DataLoader of NarrationDataset with 2 workers reading batches of those samples (the private dirty
memory each worker holds, and the index pages it maps). The last line is JSON.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import psutil

from pipeline.procmem import smaps_mb, status_mb
from pipeline.store import open_store
from trainer.data import EpochSampler, NarrationDataset, build_index, make_loader
from trainer.train_config import DataConfig

CONFIG = DataConfig(window_s=16.0, fps=1.0, candidates=16, batch_size=64, workers=2, prefetch=2)


def measure(root: str, batches: int = 20) -> dict:
    store = open_store(root)
    before = status_mb()
    t0 = time.perf_counter()
    index = build_index(store, CONFIG)
    built = time.perf_counter() - t0
    after = status_mb()
    sampler = EpochSampler(index, CONFIG, seed=0)
    t0 = time.perf_counter()
    epoch = sampler.epoch_batches(0)
    sampled = time.perf_counter() - t0
    assert len(np.unique(index.video_of(epoch.ravel()))) == epoch.size  # one narration per video
    loader = make_loader(NarrationDataset(root, index, CONFIG), sampler, CONFIG.workers, CONFIG.prefetch)
    t0 = time.perf_counter()
    for k, _ in zip(range(batches), loader):
        pass
    read = time.perf_counter() - t0
    kids = [smaps_mb(p.pid) for p in psutil.Process().children()]
    return {"videos": len(index.videos), "narrations": len(index), "build_index_s": built,
            "build_index_anon_mb": after["RssAnon"] - before["RssAnon"],
            "build_index_file_mb": after["RssFile"] - before["RssFile"], "epoch_sampling_s": sampled,
            "steps_per_epoch": sampler.steps_per_epoch, "loader_samples_per_s": batches * CONFIG.batch_size / read,
            "worker_private_mb": max(k["Private_Dirty"] for k in kids),
            "worker_file_mb": max(k["Pss_File"] for k in kids)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.bench_narrations", description=__doc__.split("\n\n")[0])
    p.add_argument("--store", required=True, help="a store written by python -m pipeline.bench_scale")
    args = p.parse_args(argv)
    r = measure(args.store)
    print(f"{r['videos']:,} videos, {r['narrations']:,} narrations: build_index {r['build_index_s']:.1f} s, "
          f"+{r['build_index_anon_mb']:.0f} MB anonymous / +{r['build_index_file_mb']:.0f} MB mapped; one epoch of "
          f"per-video sampling {r['epoch_sampling_s']:.2f} s ({r['steps_per_epoch']:,} steps of 64); loader "
          f"{r['loader_samples_per_s']:.0f} samples/s; a worker holds {r['worker_private_mb']:.0f} MB of its own (private "
          f"dirty) and {r['worker_file_mb']:.0f} MB of mapped index pages (PSS)")
    print(json.dumps(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
