"""The evaluation tasks: the one list of their names (a predictions file's `task`, a scorer of eval.scorers, the
task argument of eval.score, eval.infer and eval.baselines) and the named subsets that commands serve.
Imports nothing from eval/, so that every module can import it."""
from __future__ import annotations

TASKS = ("gyt", "gyt-spatial", "youcook", "mining", "retrieval", "moments", "gyt-clips", "youcook-bb")

DESCRIPTIONS = {
    "gyt": "GroundingYouTube, untrimmed: per-second labels and heatmaps as tubes (IoU pointing, temporal "
           "accuracy, video mAP)",
    "gyt-spatial": "GroundingYouTube, given segments: a heatmap or point per annotated frame (pointing "
                   "accuracy, IoU)",
    "youcook": "YouCook2-Interactions pointing game: a heatmap or point per annotated frame",
    "mining": "MiningYouTube: per-second class scores aligned to each video's transcript (IoU, IoD, MoF)",
    "retrieval": "text-video retrieval from similarity matrices (R@k, median and mean rank)",
    "moments": "moment retrieval: ranked proposals per timed query (R@n at IoU thresholds, mIoU)",
    "gyt-clips": "GroundingYouTube clips (step with context of its own length, the step as query): per-second "
                 "foreground scores and heatmaps (IoU pointing, video mAP; STG paper Table 7)",
    "youcook-bb": "YouCook2-BoundingBox pointing game: the object label as query, a heatmap or point per boxed "
                  "frame (CoMMA Table 3)",
}

# Tasks answered with heatmaps and/or per-second scores (model inference, eval.infer and eval.baselines).
GROUNDING_TASKS = ("gyt", "gyt-spatial", "youcook", "mining", "gyt-clips", "youcook-bb")
# Tasks with heatmaps.
SPATIAL_TASKS = ("gyt", "gyt-spatial", "youcook", "gyt-clips", "youcook-bb")

assert tuple(DESCRIPTIONS) == TASKS
assert set(GROUNDING_TASKS) <= set(TASKS) and set(SPATIAL_TASKS) <= set(GROUNDING_TASKS)
