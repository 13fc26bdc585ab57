"""The benchmark command runs end to end at toy sizes and reports every figure (speeds are not asserted)."""
from __future__ import annotations

import json

import pytest

from trainer.methods.stg.bench import main


@pytest.mark.slow
def test_bench_reports_every_figure(tmp_path, capsys):
    assert main(["--device", "cpu", "--pairs", "2", "--frames", "1", "--naive-pairs", "2", "--naive-frames", "1",
                 "--full-batch", "2", "--steps", "1", "--videos", "2", "--loader-batches", "1", "--loader-batch", "4",
                 "--workers", "0", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    result = json.loads(out[-1])
    assert [c["impl"] for c in result["attention"]] == ["naive", "batched", "batched"]
    assert all(c.get("peak_mb", -1) >= 0 and c["seconds"] > 0 for c in result["attention"])
    assert result["attention_memory_ratio"] > 0 and result["naive_full_tensor_mb"] > 0
    for key in ("train_tiny", "train_full", "loader"):
        assert result[key]["samples_per_s"] > 0
    assert "naive / batched at the same size" in "\n".join(out)
    counted = result["attention_counted"]
    assert [c["impl"] for c in counted["cases"]] == ["naive", "batched"] * 2
    assert counted["full_memory_ratio"] > 1                     # the naive way holds the repeated tensors
