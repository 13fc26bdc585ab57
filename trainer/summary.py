"""Run statistics: throughput, time spent waiting for data, and the one-screen end summary."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class RunStats:
    start_step: int
    batch_size: int
    started: float = field(default_factory=time.perf_counter)
    wait_s: float = 0.0
    records: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: Path | None = None
    interrupted: bool = False
    is_main: bool = True
    end_step: int = 0
    end_epoch: float = 0.0
    seconds: float = 0.0
    context: dict[str, Any] = field(default_factory=dict)
    _window: tuple[float, int, float] | None = None  # (time, step, wait) at the previous log line

    def waited(self, seconds: float) -> None:
        self.wait_s += seconds

    def rates(self, step: int) -> dict[str, float]:
        """Samples/s and the share of time spent waiting for the loader since the previous log line."""
        now = time.perf_counter()
        t0, s0, w0 = self._window or (self.started, self.start_step, 0.0)
        self._window = (now, step, self.wait_s)
        elapsed = max(now - t0, 1e-9)
        return {"samples_per_s": (step - s0) * self.batch_size / elapsed,
                "data_wait": (self.wait_s - w0) / elapsed}

    def logged(self, record: dict[str, Any]) -> None:
        self.records.append(record)

    def finish(self, step: int, epoch: float) -> None:
        self.end_step, self.end_epoch = step, epoch
        self.seconds = time.perf_counter() - self.started

    def summary(self) -> dict[str, Any]:
        steps = self.end_step - self.start_step
        losses = [r["loss"] for r in self.records]
        head, tail = losses[: max(1, len(losses) // 10)], losses[-max(1, len(losses) // 10):]
        return {**{k: v for k, v in self.context.items() if v is not None},
                "steps": self.end_step, "steps_this_run": steps, "epochs": round(self.end_epoch, 3),
                "seconds": round(self.seconds, 2),
                "samples_per_s": round(steps * self.batch_size / max(self.seconds, 1e-9), 2),
                "data_wait_share": round(self.wait_s / max(self.seconds, 1e-9), 4),
                "loss_first": round(sum(head) / len(head), 5) if losses else None,
                "loss_last": round(sum(tail) / len(tail), 5) if losses else None,
                "checkpoint": str(self.checkpoint) if self.checkpoint else None, "interrupted": self.interrupted}

    def report(self) -> str:
        """The end-of-run screen; its last line is the summary as one JSON object."""
        s = self.summary()
        lines = [
            "-" * 72,
            f"run        {s.get('run_dir', '')}   ({'interrupted' if s['interrupted'] else 'done'})",
            f"store      {s.get('store', '')}   preset {s.get('preset', '')}   {s.get('device', '')} "
            f"x{s.get('world_size', 1)}",
            f"data       {s.get('videos', '?')} videos, {s.get('narrations', '?')} narrations, "
            f"{s.get('steps_per_epoch', '?')} steps/epoch",
            f"progress   step {s['steps']}/{s.get('total_steps', '?')} ({s['epochs']:g} epochs), "
            f"{s['steps_this_run']} steps in {s['seconds']:.1f} s",
            f"speed      {s['samples_per_s']:.1f} samples/s, waiting for data {100 * s['data_wait_share']:.1f} % "
            f"of the time",
            f"loss       {s['loss_first']} (first logged steps) -> {s['loss_last']} (last)",
            f"checkpoint {s['checkpoint']}",
            "-" * 72,
            json.dumps(s, default=str),
        ]
        return "\n".join(lines)
