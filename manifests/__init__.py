"""Manifests: the first stage of groundcache's data flow.

A manifest (a directory of parquet tables, documented in `manifests.schema`) lists the videos, the segments to
extract, the captions and any benchmark box labels. `python -m manifests.build <kind> ...` writes one from a
source (a folder of videos, HowTo100M narrations, YouCook2, GroundingYouTube, YouCook2-Interactions,
MiningYouTube); `python -m manifests.validate MANIFEST` checks one. `manifests.benchmarks` holds the typed
readers of the benchmark annotation files, shared with the evaluation scorers.
`manifests.ffmpeg` is the project's one ffmpeg/ffprobe wrapper, used here to probe and render videos and
by `pipeline` to decode them.
"""
