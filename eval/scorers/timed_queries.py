"""Timed text queries of a benchmark (the ground truth of `moments` and `retrieval`): one per annotated segment,
with the annotation's own id, its text and its time span as a continuous interval [start, end) in seconds.

- gyt: `ground_seg_3to20.json` (groundingyoutube/); segment [s, e] covers whole seconds s..e -> [s, e + 1);
  segments with e < s are left out (as by the gyt scorer); query id = the segment id; text = its sentence.
- youcook2: `youcookii_annotations_trainval.json` (youcook2_interactions/), videos of one subset (validation);
  segment [s, e] -> [s, e); query id = the segment id; text = its sentence.
- mining: `annotations/<video>.srt` (miningyoutube/); block i (0-based) -> [start, end); query id = i; text = the
  label as written.
- charades-sta: `charades_sta_test.txt` (charades_sta/; manifests.benchmarks.charades_sta); line `vid s e##sentence`
  -> [s, e) as written (not clipped to the video); query id = the line's 0-based position among its video's lines;
  spans with e <= s (no IoU) are left out.
- didemo: `test_data.json` (didemo/; `--annotations val_data.json` for validation; manifests.benchmarks.didemo);
  query id = `annotation_id`; [start, end) = the consensus moment in seconds (5-s segments); `times` = every
  annotator's moment in seconds, which the moments scorer uses (DiDeMo's own metrics).
- activitynet: `val_1.json` (activitynet/; manifests.benchmarks.activitynet; COOT's val1), every sentence of every
  video; query id = its position in the paragraph (0-based); [start, end) = its timestamp clipped to
  [0, duration], the end raised to the start when it lies before it (the sentence stays in the paragraph).
Inference (`eval.infer retrieval|moments`) reads these same queries; the manifest builders end the captions'
ids with the same ids ("<video>:step:<id>", "<video>:label:<i>"), so text.source=store finds each query's own
stored caption.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eval.scorers.common import ScoreError, resolve_file
from manifests.benchmarks.activitynet import load_activitynet
from manifests.benchmarks.charades_sta import load_charades_sta
from manifests.benchmarks.didemo import consensus, load_didemo, span_seconds
from manifests.benchmarks.gyt import load_segments
from manifests.benchmarks.mining import load_srt_dir
from manifests.benchmarks.youcook2 import load_youcook2

BENCHMARKS = ("gyt", "youcook2", "mining", "charades-sta", "didemo", "activitynet")
DEFAULT_FILES = {"gyt": ("groundingyoutube", "ground_seg_3to20.json"),
                 "youcook2": ("youcook2_interactions", "youcookii_annotations_trainval.json"),
                 "mining": ("miningyoutube", "annotations"),
                 "charades-sta": ("charades_sta", "charades_sta_test.txt"),
                 "didemo": ("didemo", "test_data.json"),
                 "activitynet": ("activitynet", "val_1.json")}


@dataclass(frozen=True)
class TimedQuery:
    video_id: str
    query_id: str
    start: float   # seconds, inclusive
    end: float     # seconds, exclusive
    text: str
    times: tuple[tuple[float, float], ...] = ()   # didemo: every annotator's [start, end) in seconds

    @property
    def clip_id(self) -> str:
        """The id of the clip / sentence in retrieval predictions."""
        return f"{self.video_id}/{self.query_id}"


def _folder(benchmark_dir: Path, subdir: str, name: str) -> Path:
    for path in (Path(name), Path(benchmark_dir) / subdir / name, Path(benchmark_dir) / name):
        if path.is_dir():
            return path
    raise ScoreError(f"annotation directory {name!r} not found under {benchmark_dir}")


def load_timed_queries(benchmark: str, benchmark_dir: str | Path, annotations: str | None = None,
                       subset: str = "validation") -> list[TimedQuery]:
    """Every timed query of the benchmark, ordered by video id, then start time, then query id."""
    if benchmark not in BENCHMARKS:
        raise ScoreError(f"unknown benchmark {benchmark!r} (one of {BENCHMARKS})")
    subdir, default = DEFAULT_FILES[benchmark]
    name = annotations or default
    out: list[TimedQuery] = []
    if benchmark == "gyt":
        for vid, segs in load_segments(resolve_file(benchmark_dir, subdir, name)).items():
            out += [TimedQuery(vid, str(s.id), float(s.start), float(s.end + 1), s.sentence)
                    for s in segs if s.end >= s.start]
    elif benchmark == "youcook2":
        videos = load_youcook2(resolve_file(benchmark_dir, subdir, name))
        for vid, video in videos.items():
            if video.subset == subset:
                out += [TimedQuery(vid, str(s.id), s.start, s.end, s.sentence) for s in video.segments]
    elif benchmark == "mining":
        for vid, segs in load_srt_dir(_folder(Path(benchmark_dir), subdir, name)).items():
            out += [TimedQuery(vid, str(i), s.start, s.end, s.label) for i, s in enumerate(segs)]
    elif benchmark == "activitynet":
        out = _activitynet_queries(resolve_file(benchmark_dir, subdir, name))
    else:
        out = _sentence_queries(benchmark, resolve_file(benchmark_dir, subdir, name))
    if not out:
        raise ScoreError(f"{benchmark}: no timed query in {name!r} under {benchmark_dir}")
    return sorted(out, key=lambda q: (q.video_id, q.start, q.query_id))


def _sentence_queries(benchmark: str, path: Path) -> list[TimedQuery]:
    """The timed queries of charades-sta or didemo (module docstring)."""
    if benchmark == "charades-sta":
        return [TimedQuery(vid, str(q.index), q.start, q.end, q.sentence)
                for vid, qs in load_charades_sta(path).items() for q in qs if q.end > q.start]
    return [TimedQuery(q.video_id, str(q.annotation_id), *span_seconds(consensus(q.times)), q.description,
                       tuple(span_seconds(t) for t in q.times)) for q in load_didemo(path)]


def _activitynet_queries(path: Path) -> list[TimedQuery]:
    """ActivityNet Captions' timed sentences (module docstring)."""
    out = []
    for vid, video in load_activitynet(path).items():
        for s in video.sentences:
            start = min(max(s.start, 0.0), video.duration)
            out.append(TimedQuery(vid, str(s.index), start, max(start, min(s.end, video.duration)), s.sentence))
    return out
