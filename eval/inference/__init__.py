"""Inference: a method (a trained head, or the frozen features) + the feature store -> a predictions file
(eval/predictions.py) that the scorers read. Command lines: `python -m eval.infer`, `python -m eval.run`,
`python -m eval.baselines global-sim`; definitions in eval/README.md ("Inference").

| module | what |
|---|---|
| `config.py` (+ `presets/paper.yaml`, `presets/reference.yaml`) | InferConfig: every threshold and choice |
| `features.py` | a video's stored rows and where each second lies among them (CLIP frames, S3D cells) |
| `encoder.py` | the store's text encoder rebuilt from its spec (refused when it differs), the black frame |
| `grounders.py` | per-row similarities and chunk heatmaps: `HeadGrounder` (rollout), `FrozenGrounder` (cosines) |
| `spatial.py` | chunking a span of seconds (masked or black padding, the published loaders' last-second rule) |
| `temporal.py` | similarity -> scores, the background threshold, runs of a label (tubes), mining log-probabilities |
| `context.py` | a session: store, method, text encoder, missing-video policy |
| `tasks.py` | per task: the scorer's queries/videos -> groups of the predictions file, and the summary |
"""
from eval.inference.config import InferConfig, load_infer_config
from eval.inference.context import MissingVideosError, Session, frozen_session, head_session
from eval.inference.errors import InferenceError
from eval.inference.tasks import TASKS, Benchmark, run_inference

__all__ = ["TASKS", "Benchmark", "InferConfig", "InferenceError", "MissingVideosError", "Session",
           "frozen_session", "head_session", "load_infer_config", "run_inference"]
