"""Imports go one way: training and evaluation never import Ray; pipeline and manifests know nothing of
trainer/eval."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _loaded_after(modules: list[str]) -> set[str]:
    code = ("import sys, json; " + "; ".join(f"import {m}" for m in modules) +
            "; print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    import json

    return set(json.loads(out.stdout))


@pytest.mark.parametrize("entry", ["trainer.train", "trainer.bench", "eval.score", "eval.baselines", "eval.viz"])
def test_train_and_eval_never_import_ray(entry):
    assert "ray" not in _loaded_after([entry])


def test_pipeline_and_manifests_do_not_import_trainer_or_eval():
    for path in [*(REPO / "pipeline").rglob("*.py"), *(REPO / "manifests").rglob("*.py")]:
        text = path.read_text()
        for banned in ("import trainer", "from trainer", "import eval", "from eval"):
            assert banned not in text, f"{path.relative_to(REPO)}: {banned}"
