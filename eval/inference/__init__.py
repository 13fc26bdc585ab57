"""Inference: a method (a trained run of any registered method, or the frozen features) + the feature store ->
a predictions file (eval/predictions/) that the scorers read. Command lines: `python -m eval.infer`,
`python -m eval.run`, `python -m eval.baselines global-sim`; definitions in eval/README.md ("Inference").

| module | what |
|---|---|
| `config.py` (+ `presets/paper.yaml`, `presets/reference.yaml`) | InferConfig: every threshold and choice |
| `session.py` | a session: store, the method's adapter, the texts' features, the missing-video policy, the device |
| `features.py` | a video's stored rows and where each second lies among them (CLIP frames, S3D cells) |
| `encoder.py` | the store's text encoder rebuilt from its spec (refused when it differs), the black frame |
| `grounders.py` | what a grounding adapter gives; `FrozenGrounder` (the frozen features' cosines) |
| `spatial.py` | chunking a span of seconds (masked or black padding, the published loaders' last-second rule) |
| `temporal.py` | similarity or snippet scores -> per-second scores, the background threshold, runs of a label |
| `queries.py` | the benchmark's timed queries (retrieval, moments) with their texts' features |
| `retrieval.py`, `moments.py` | clip-sentence / video-paragraph similarity matrices; ranked moment proposals |
| `output.py` | what a predictions file will hold, written at the end |
| `tasks.py` | per task: the scorer's queries/videos -> groups of the predictions file, and the summary |

A method's adapter (`trainer.methods.METHODS[name].inference`) has a `kind`: "grounding" (similarities and
heatmaps: stg, comma), "retrieval" (embeddings: coot) or "snippets" (snippet scores and attention: wsra).
"""
from eval.inference.config import InferConfig, load_infer_config
from eval.inference.errors import InferenceError
from eval.inference.session import MissingVideosError, Session, frozen_session, method_session
from eval.inference.tasks import Benchmark, run_inference

__all__ = ["Benchmark", "InferConfig", "InferenceError", "MissingVideosError", "Session", "frozen_session",
           "method_session", "load_infer_config", "run_inference"]
