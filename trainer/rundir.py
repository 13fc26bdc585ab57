"""The run directory: resolved config, provenance (git SHA, store, command), metrics as JSON lines and
TensorBoard events. Only rank 0 writes.

    RUN/config.yaml      the resolved TrainConfig (what `--resume` reads back)
    RUN/run.json         git SHA (+ dirty flag), store, preset, overrides, command, world size, encoder spec
    RUN/metrics.jsonl    one JSON object per logged step: step, epoch, loss, loss terms, lr, samples_per_s, ...
    RUN/tb/              TensorBoard events
    RUN/checkpoints/     step-XXXXXXXX.pt (trainer.checkpoint)
"""
from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from pipeline.config import save_yaml
from pipeline.provenance import git_revision

class RunDir:
    def __init__(self, path: str | Path, enabled: bool = True):
        self.path, self.enabled = Path(path), enabled
        self._tb = None

    def start(self, cfg: Any, info: dict[str, Any]) -> None:
        """A new run: config.yaml and run.json (rank 0)."""
        if not self.enabled:
            return
        self.path.mkdir(parents=True, exist_ok=True)
        save_yaml(cfg, self.path / "config.yaml")
        record = {"git": git_revision(), "command": [sys.executable, *sys.argv], "started": time.time(), **info}
        (self.path / "run.json").write_text(json.dumps(record, indent=2, sort_keys=True, default=str))

    def note_resume(self, step: int) -> None:
        """Record the resume and drop metrics lines logged after the checkpoint (they will be logged again)."""
        if self.enabled:
            metrics = self.path / "metrics.jsonl"
            if metrics.exists():
                keep = [r for r in read_metrics(metrics) if r["step"] <= step]
                metrics.write_text("".join(json.dumps(r) + "\n" for r in keep))
            with open(self.path / "resumes.jsonl", "a") as f:
                f.write(json.dumps({"step": step, "time": time.time(), "git": git_revision(),
                                    "command": sys.argv}) + "\n")

    def log(self, record: dict[str, Any]) -> None:
        """Append one metrics line and the numeric values to TensorBoard."""
        if not self.enabled:
            return
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.path / "metrics.jsonl", "a") as f:
            f.write(json.dumps(clean) + "\n")
        tb = self.tensorboard()
        for k, v in record.items():
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool):
                tb.add_scalar(f"train/{k}", v, record["step"])

    def tensorboard(self):
        if self._tb is None:
            from torch.utils.tensorboard import SummaryWriter  # imported late: tensorboard is slow to import

            self._tb = SummaryWriter(str(self.path / "tb"))
        return self._tb

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The metrics lines of a run directory (or of a metrics.jsonl file)."""
    path = Path(path)
    path = path / "metrics.jsonl" if path.is_dir() else path
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
