"""An S3-compatible server on 127.0.0.1 (moto's server mode) and the number of requests a store open costs.

    with LocalS3() as s3:                        # a real HTTP server; s3.env points boto/s3fs at it
        root = s3.url("store.zarr")              # s3://groundcache/store.zarr
        subprocess.run([...], env={**os.environ, **s3.env})
        s3.requests                              # HTTP requests the server has answered so far

`requests_per_open` writes stores of 10 and 1,000 real shards on it and counts the requests of
`open_store` in a fresh process, with an empty index cache (cold) and again with it filled (warm).
moto comes with the `dev` extra (`pip install -e .[dev]`).
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import urllib.request
import uuid
from pathlib import Path

import numpy as np

BUCKET = "groundcache"


class _Counter(logging.Handler):
    def __init__(self):
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "HTTP/1.1" in record.getMessage():
            self.count += 1


class LocalS3:
    """moto's ThreadedMotoServer on a free port of 127.0.0.1, with one bucket and the environment to reach it."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.counter = _Counter()

    def __enter__(self) -> "LocalS3":
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        self.env = {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        self._saved = {k: os.environ.get(k) for k in self.env}
        os.environ.update(self.env)
        logger = logging.getLogger("werkzeug")  # the counter before any request, or werkzeug prints each one
        logger.setLevel(logging.INFO)
        logger.addHandler(self.counter)
        # moto keeps its buckets per process, not per server: each server starts empty
        urllib.request.urlopen(urllib.request.Request(f"{self.endpoint}/moto-api/reset", method="POST")).close()
        import fsspec

        fsspec.get_filesystem_class("s3").clear_instance_cache()  # cached by arguments, not by endpoint
        fsspec.filesystem("s3", skip_instance_cache=True).mkdir(BUCKET)
        return self

    @property
    def requests(self) -> int:
        return self.counter.count

    def url(self, name: str) -> str:
        return f"s3://{BUCKET}/{name}"

    def __exit__(self, *exc) -> None:
        logging.getLogger("werkzeug").removeHandler(self.counter)
        self.server.stop()
        import fsspec

        fsspec.get_filesystem_class("s3").clear_instance_cache()
        for k, v in self._saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_shards(root: str, shards: int, spec: dict) -> None:
    """A store of `shards` real one-video shards of a "clip" encoder with `spec`, consolidated."""
    from pipeline.store import ShardWriter, consolidate, init_store, layout

    init_store(root, {"clip": spec})
    rng = np.random.default_rng(0)
    for i in range(shards):
        w = ShardWriter(root, layout.new_shard_name(), {"clip": spec})
        with w.segment({"segment_id": f"v{i:05d}:0", "video_id": f"v{i:05d}", "start": 0.0, "end": None, "fps": 1.0}):
            grid = rng.standard_normal((2, *spec["grid"], spec["dims"]["grid"]))
            w.append_frames("clip", times=np.arange(2.0), grid=grid, **{"global": grid.mean((1, 2))})
        w.commit()
    consolidate(root)


def count_open(s3: LocalS3, root: str, cache: Path) -> int:
    """Requests of one open_store (and len(video_ids)) in a fresh process."""
    code = "import sys; from pipeline.store import open_store; print(len(open_store(sys.argv[1]).video_ids()))"
    before = s3.requests
    subprocess.run([sys.executable, "-c", code, root], check=True, capture_output=True,
                   env={**os.environ, **s3.env, "GROUNDCACHE_CACHE": str(cache)})
    return s3.requests - before


def requests_per_open(workdir: Path, spec: dict, sizes: tuple[int, ...] = (10, 1000)) -> dict[str, dict[str, int]]:
    out = {}
    with LocalS3() as s3:
        for n in sizes:
            root = s3.url(f"requests-{n}-{uuid.uuid4().hex[:6]}.zarr")
            write_shards(root, n, spec)
            cache = Path(workdir) / f"cache-{uuid.uuid4().hex[:6]}"
            out[str(n)] = {"cold": count_open(s3, root, cache), "warm": count_open(s3, root, cache)}
    return out
