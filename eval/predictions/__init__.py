"""The predictions file that inference (or a baseline) writes and every scorer reads.

`format` documents the layout (its docstring is the specification) and holds the names, constants, item types
and checks; `writer` holds `PredictionsWriter`; `reader` holds `read_predictions`. Import from this package.
"""
from eval.predictions.format import (
    BACKGROUND, FORMAT, PROTOCOLS, RANKED_VERSION, READS, RETRIEVAL_LEVELS, VERSION, MomentPrediction,
    PointPrediction, Predictions, PredictionsError, PredictionsMeta, RetrievalPrediction, SpatialPrediction,
    TemporalPrediction, check_ids, check_labels, check_meta, check_name, check_proposals, check_retrieval,
    check_span, finite_float32, heatmaps_array, moment_group_names,
)
from eval.predictions.reader import read_predictions
from eval.predictions.writer import PredictionsWriter

__all__ = [
    "BACKGROUND", "FORMAT", "PROTOCOLS", "RANKED_VERSION", "READS", "RETRIEVAL_LEVELS", "VERSION",
    "MomentPrediction", "PointPrediction", "Predictions", "PredictionsError", "PredictionsMeta",
    "PredictionsWriter", "RetrievalPrediction", "SpatialPrediction", "TemporalPrediction", "check_ids",
    "check_labels", "check_meta", "check_name", "check_proposals", "check_retrieval", "check_span",
    "finite_float32", "heatmaps_array", "moment_group_names", "read_predictions",
]
