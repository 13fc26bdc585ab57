"""Where shards run: in this process (`sequential`) or on Ray actors (`ray`), behind one signature.

    run_shards(plans, root, encoder_config, backend=..., workers=..., ...) -> iterator of ShardSummary

Ray is imported only here and only for the ray backend. Actors load the encoders once and keep them;
they take GPUs when the cluster has them. A shard whose worker dies is retried on a fresh actor; if it
dies again its segments are recorded as failures (stage "worker") so the run still accounts for them.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from pipeline.plan import ShardPlan
from pipeline.store import ShardWriter, layout
from pipeline.worker import ShardExtractor, ShardSummary

BACKENDS = ("sequential", "ray")
MMAP_THRESHOLD = 128 * 1024
# Process settings of extraction (an explicit user setting wins):
# - ffmpeg decodes on the same cores while torch encodes: OpenMP's default spin-waiting between parallel
#   regions burns the CPU time ffmpeg needs (measured: +13 % pipeline frames/s on 2 cores). It must be in the
#   environment before torch loads its OpenMP runtime.
# - frame chunks are large buffers allocated by reader threads and freed by the encoding thread; glibc's
#   adaptive mmap threshold then serves them from per-thread heaps that only grow (measured: peak memory
#   +5..30 % from a 1- to a 10-minute video). A fixed threshold maps each chunk and unmaps it when freed.
#   Glibc reads the variable at start (Ray workers); this process sets it with mallopt.
EXTRACTION_ENV = {"OMP_WAIT_POLICY": "PASSIVE", "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD)}


def prepare_extraction_process() -> None:
    """Call before torch is imported (the extraction CLI and the benchmark do)."""
    for key, value in EXTRACTION_ENV.items():
        os.environ.setdefault(key, value)
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: nothing to fix
        return
    libc.mallopt(-3, int(os.environ["MALLOC_MMAP_THRESHOLD_"]))  # -3 = M_MMAP_THRESHOLD


@dataclass(frozen=True)
class EncoderConfig:
    """Everything needed to build the encoders again inside another process."""

    names: tuple[str, ...]
    preset: str
    clip_model: str | None = None
    s3d_weights: str | None = None
    s3d_dict: str | None = None
    s3d_fps: float = 16.0
    s3d_window: int = 32
    clip_normalize: str = "clip"
    resize: str = "center-crop"
    device: str | None = None
    grid_dtype: str = "float16"  # how grid tokens are stored (not an encoder setting, but part of the store's spec)

    def build(self, device: str | None = None) -> dict:
        from pipeline.encoders import build_encoders

        return build_encoders(self.names, self.preset, clip_model=self.clip_model, s3d_weights=self.s3d_weights,
                              s3d_dict=self.s3d_dict, s3d_fps=self.s3d_fps, s3d_window=self.s3d_window,
                              clip_normalize=self.clip_normalize, resize=self.resize,
                              device=device or self.device)


def run_shards(plans: list[ShardPlan], root: str, config: EncoderConfig, *, backend: str = "sequential",
               workers: int = 1, ray_address: str | None = None, chunk_frames: int = 32, retries: int = 1,
               encoders: dict | None = None, on_segment: Callable[[int], None] | None = None
               ) -> Iterator[ShardSummary]:
    """Run every plan; yield each shard's summary as it completes (order not guaranteed for ray)."""
    if backend == "sequential":
        extractor = ShardExtractor(root, encoders or config.build(), chunk_frames=chunk_frames, retries=retries,
                                   grid_dtype=config.grid_dtype,
                                   on_segment=on_segment)
        for plan in plans:
            yield extractor.run(plan)
    elif backend == "ray":
        yield from _run_ray(plans, root, config, workers, ray_address, chunk_frames, retries)
    else:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")


def _record_lost_shard(root: str, plan: ShardPlan, specs: dict, reason: str) -> ShardSummary:
    """A shard whose worker died twice: every segment gets a failure record, written by the driver."""
    writer = ShardWriter(root, plan.name, specs)
    for video in plan.videos:
        for seg in video.segments:
            writer.add_failure(video_id=video.video_id, segment_id=seg["segment_id"], stage="worker", reason=reason,
                               attempts=2)
    writer.commit()
    n = plan.n_segments
    return ShardSummary(plan.name, videos=len(plan.videos), segments=n, failed_segments=n, failures=writer.failures)


def _run_ray(plans, root, config, workers, address, chunk_frames, retries) -> Iterator[ShardSummary]:
    import ray

    if not ray.is_initialized():
        if address:
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        else:
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    resources = ray.cluster_resources()
    gpus = resources.get("GPU", 0.0)
    cpus = max(1.0, resources.get("CPU", 1.0) // max(1, workers))
    options = {"num_cpus": cpus, "num_gpus": min(1.0, gpus / workers) if gpus else 0,
               "runtime_env": {"env_vars": {k: os.environ.get(k, v) for k, v in EXTRACTION_ENV.items()}}}

    @ray.remote
    class ShardActor:
        def __init__(self):
            import torch

            torch.set_num_threads(max(1, int(cpus)))
            self.extractor = ShardExtractor(root, config.build(), chunk_frames=chunk_frames, retries=retries,
                                            grid_dtype=config.grid_dtype)

        def run(self, plan: ShardPlan) -> ShardSummary:
            return self.extractor.run(plan)

        def specs(self) -> dict:
            return self.extractor.specs

    actors = [ShardActor.options(**options).remote() for _ in range(max(1, workers))]
    specs = ray.get(actors[0].specs.remote())
    queue = list(reversed(plans))
    running: dict = {}  # future -> (slot, actor, plan, attempt)

    def submit(slot: int, plan: ShardPlan, attempt: int) -> None:
        running[actors[slot].run.remote(plan)] = (slot, actors[slot], plan, attempt)

    for slot in range(len(actors)):
        for _ in range(2):  # two in flight per actor: the next shard is queued while one runs
            if queue:
                submit(slot, queue.pop(), 1)
    while running:
        done, _ = ray.wait(list(running), num_returns=1)
        slot, actor, plan, attempt = running.pop(done[0])
        try:
            yield ray.get(done[0])
        except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError) as exc:
            if actors[slot] is actor:  # replace a dead actor once, however many of its tasks fail
                actors[slot] = ShardActor.options(**options).remote()
            # Under a new name: the dead worker's process may not be gone yet and must not share files with the
            # retry; what it left stays in inflight/ and is cleared by the next run.
            plan = dataclasses.replace(plan, name=layout.new_shard_name())
            if attempt < 2:
                submit(slot, plan, attempt + 1)
                continue
            yield _record_lost_shard(root, plan, specs, f"worker died twice: {exc}")
        if queue:
            submit(slot, queue.pop(), 1)
