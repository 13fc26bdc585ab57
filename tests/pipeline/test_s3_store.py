"""The store on a real S3-compatible server (moto's server mode on 127.0.0.1, through s3fs): requests per open
that do not grow with the number of shards, a killed extraction resumed to the same store, and the whole
chain extract -> verify -> train -> eval.run with `--store s3://...`."""
from __future__ import annotations

import json

import fsspec
import pytest

from manifests.synth import WorldConfig, generate
from pipeline import extract, verify
from pipeline.store import layout
from tests.pipeline.helpers import ARGS, assert_same_features, kill_midway, narrated_world
from trainer import train

pytest.importorskip("moto")
from pipeline.bench_requests import BUCKET, LocalS3, count_open, write_shards  # noqa: E402
from pipeline.bench_scale import SPEC  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def s3():
    with LocalS3() as server:
        yield server


def _journal(root: str) -> int:
    try:
        return len(fsspec.filesystem("s3").ls(f"{root[len('s3://'):]}/{layout.JOURNAL_DIR}", refresh=True))
    except FileNotFoundError:
        return 0


def test_requests_per_open_do_not_grow_with_the_shards(s3, tmp_path):
    counts = {}
    for n in (3, 40):
        root = s3.url(f"requests-{n}.zarr")
        write_shards(root, n, SPEC)
        counts[n] = (count_open(s3, root, tmp_path / f"cache-{n}"), count_open(s3, root, tmp_path / f"cache-{n}"))
    assert counts[3] == counts[40], counts
    assert counts[3][1] < counts[3][0] <= 30  # a warm index cache saves the column downloads


def test_a_killed_extraction_on_s3_resumes_to_an_uninterrupted_run(s3, tmp_path):
    manifest = narrated_world(tmp_path, videos=6)
    args = ["--manifest", str(manifest), *ARGS, "--videos-per-shard", "1"]
    reference, killed = s3.url("reference.zarr"), s3.url("killed.zarr")
    assert extract.main([*args, "--store", reference]) == 0
    kill_midway([*args, "--store", killed], lambda: _journal(killed), 2)
    assert verify.main(["--store", killed, "--manifest", str(manifest)]) == 1
    assert extract.main([*args, "--store", killed, "--force-unlock"]) == 0
    assert verify.main(["--store", killed, "--manifest", str(manifest)]) == 0
    assert_same_features(reference, killed)


def test_extract_verify_train_and_evaluate_from_s3(s3, tmp_path, capsys):
    paths = generate(tmp_path / "world", WorldConfig(seed=0, train_videos=2, test_videos=2, seconds=(20, 25)),
                     jobs=1, progress=False).paths
    train_store, test_store = s3.url("train.zarr"), s3.url("test.zarr")
    for manifest, store in ((paths.train_manifest, train_store), (paths.gyt_manifest, test_store)):
        assert extract.main(["--manifest", str(manifest), "--store", store, "--encoders", "clip", "--preset", "tiny",
                             "--resize", "squash", "--device", "cpu"]) == 0
        assert verify.main(["--store", store, "--manifest", str(manifest)]) == 0
    assert fsspec.filesystem("s3").exists(f"{BUCKET}/train.zarr/{layout.CURRENT}")
    run = tmp_path / "run"
    assert train.main(["--store", train_store, "--out", str(run), "--preset", "tiny", "optim.max_steps=3",
                       "data.workers=2", "runtime.progress=false", "runtime.device=cpu"]) == 0
    capsys.readouterr()
    from eval import run as eval_run

    assert eval_run.main(["gyt", "--run", str(run), "--store", test_store, "--benchmark-dir",
                          str(paths.benchmarks), "--no-progress"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["missing_videos"] == [] and 0 <= metrics["iou_pointing"] <= 100  # percent
