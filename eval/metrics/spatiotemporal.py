"""The IoU+Pointing game of untrimmed spatio-temporal grounding (STG paper Sec. 5.3 / appendix 8.4).

The paper: "For each video frame, the prediction is correct when the model predicts the correct action for the
frame. Also, given the predicted action as a query, the maximum point of the heatmap aims to lie within the
desired bounding box. We then compute the Intersection over Union (IoU) over all the predictions with the GT."

Our reading, per second of a video:
- G: the annotated action seconds (a ground-truth box with its step);
- D: the seconds predicted as an action (not background) among the known seconds: the annotated seconds and
  the seconds outside every ground-truth segment (seconds of a segment without a box are unknown and ignored);
- correct: seconds of G whose predicted label is the ground-truth step AND whose pointing is a hit (for a
  random-point prior, the expected hit);
- IoU+Pointing = sum(correct) / |G or D|, pooled over all videos. Predicting an action everywhere is therefore
  penalised, which a per-frame accuracy over G alone (also reported: sum(correct) / |G|) would not do.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class IouPointingCounts:
    correct: float  # sum of per-frame correctness (expected values allowed)
    union: int  # |G or D|
    gt_frames: int  # |G|
    label_correct: int  # seconds of G with the right label, whatever the pointing

    def __add__(self, other: IouPointingCounts) -> IouPointingCounts:
        return IouPointingCounts(self.correct + other.correct, self.union + other.union,
                                 self.gt_frames + other.gt_frames, self.label_correct + other.label_correct)


def iou_pointing_counts(gt_frame: np.ndarray, known: np.ndarray, predicted_action: np.ndarray,
                        label_correct: np.ndarray, hit: np.ndarray) -> IouPointingCounts:
    """Counts of one video; all arrays are per second of the video.

    gt_frame: annotated action second; known: second that counts (annotated, or outside every GT segment);
    predicted_action: predicted label is not background; label_correct: predicted label == GT step (read at
    GT frames only); hit: pointing hit in [0, 1] for the predicted label's heatmap (read at GT frames only)."""
    gt_frame = np.asarray(gt_frame, bool)
    if (gt_frame & ~np.asarray(known, bool)).any():
        raise ValueError("every annotated second must be known")
    action = np.asarray(predicted_action, bool)
    detected = action & np.asarray(known, bool)
    right = np.asarray(label_correct, bool) & gt_frame & action  # a background prediction is never right
    correct = float(np.where(right, np.asarray(hit, np.float64), 0.0).sum())
    return IouPointingCounts(correct, int((gt_frame | detected).sum()), int(gt_frame.sum()), int(right.sum()))
