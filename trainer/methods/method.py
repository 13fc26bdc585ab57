"""What a method is, for the registry (trainer.methods): each method folder exports `METHODS`, a tuple of these."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn


@dataclass(frozen=True)
class Method:
    name: str
    section: type                                   # the config section (`cfg.<name>`)
    build_head: Callable[[dict[str, int], Any], nn.Module]  # (feature widths, section.head) -> the head
    step: Callable[..., nn.Module]                  # (head, cfg, world) -> module returning {"loss", terms...}
    dataset: Callable[..., Any]                     # (store root, NarrationIndex, cfg) -> Dataset
    inference: Callable[..., Any]                   # (TrainedHead, device, **options) -> the eval adapter, whose
                                                    # `kind` says what it gives (eval/inference/__init__.py)
    tasks: tuple[str, ...]                          # the evaluation tasks it answers (eval.infer TASK)
    presets: Path                                   # its folder of YAML presets
    demo_preset: str                                # what `make compare` trains it with on the demo's stores
    reported: tuple[str, ...]                       # the tasks `make compare` scores it on
    tiny_preset: str                                # its small preset (tests, the generated sample store)
    tiny: dict = field(default_factory=dict)        # head fields of the tiny variant (head.variant=tiny)
    paper_preset: str = ""                          # the same scale with its paper's choices where demo_preset
                                                    # keeps the released code's (`make compare` trains both)
    every_term: tuple[str, ...] = ()                # overrides that switch on every loss term and branch
    rank_invariant: tuple[str, ...] = ()            # overrides without per-rank random draws (DDP = 1 process)
    eval_overrides: tuple[str, ...] = ()            # inference settings (eval.infer key=value) of its reported rows
    summary: str = ""

    @property
    def kind(self) -> str:
        """What its inference adapter gives: "grounding" (similarities and heatmaps), "retrieval" (embeddings) or
        "snippets" (snippet scores)."""
        return self.inference.kind
