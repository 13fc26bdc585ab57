"""Clip-sentence and video-paragraph retrieval (task `retrieval`) from a retrieval adapter (kind "retrieval":
COOT's embeddings). Per video of the benchmark: its timed queries in time order are the clips and the
paragraph (the adapter's `item` picks each clip's frames); the written `/retrieval/clip` and `/retrieval/video`
matrices are the cosines of the L2-normalised embeddings, text rows against video columns (COOT appendix
A.1). Ids: "<video_id>/<query_id>" for clips and sentences, the video id for videos and paragraphs."""
from __future__ import annotations

from eval.inference.errors import InferenceError
from eval.inference.features import MissingFeatures
from eval.inference.output import Output, progress
from eval.inference.queries import benchmark_queries, encode_queries, video_frames
from eval.inference.session import Session


def infer_retrieval(session: Session, benchmark: str, benchmark_dir) -> Output:
    by_video = benchmark_queries(benchmark, benchmark_dir)
    out = Output(files={"benchmark": benchmark})
    items = []
    for vid in progress(session, session.check_present(list(by_video), out.missing), "retrieval"):
        try:
            times, feats = video_frames(session, vid)
        except MissingFeatures as exc:
            session.miss(out.missing, [q.clip_id for q in by_video[vid]], exc)
            continue
        item, left = session.model.item(times, feats, encode_queries(session, vid, by_video[vid]))
        for clip_id in left:
            session.miss(out.missing, [clip_id], MissingFeatures(vid, "no stored frame in its span, or no word"))
        if item is not None:
            items.append(item)
    if not items:
        raise InferenceError(f"{session.store.root}: no video of the {benchmark} queries has frames")
    emb = session.model.embed(items)
    clip_ids = [f"{it.video_id}/{q}" for it in items for q in it.query_ids]
    video_ids = [it.video_id for it in items]
    out.retrieval.append(("clip", clip_ids, clip_ids, (emb["sentence"] @ emb["clip"].T).numpy()))
    out.retrieval.append(("video", video_ids, video_ids, (emb["paragraph"] @ emb["video"].T).numpy()))
    out.counts.update(videos=len(by_video), clips=len(clip_ids))
    return out
