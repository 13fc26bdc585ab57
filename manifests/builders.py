"""One builder per source kind. A builder reads annotations and returns a `Draft`: the videos to describe,
the captions, the box labels (a function of the probed videos, since some coordinate spaces depend on the
video size) and its purpose: evaluation sets are extracted as whole videos, training sets as caption windows
(the defaults; the command line can choose either).

Caption ids are "<video_id>:<kind>:<n>", n = the annotation's own id when it has one, else its position.
Video ids must be safe names (`manifests.integrity.id_problem`): an annotation key such as "../x" or "/etc/x"
is refused naming its file, so no builder looks outside `--video-dir`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Mapping

from manifests.benchmarks import activitynet, gyt, mining, yc_interactions, youcook2
from manifests.errors import AnnotationError
from manifests.integrity import id_problem, safe_id, shown
from manifests.narrations import load_narrations
from manifests.schema import BoxRow, CaptionRow, VideoRow
from manifests.vocabulary import Vocabulary, filter_by_vocabulary
from manifests.videos import VIDEO_EXTENSIONS, VideoSource, locate, scan_folder

Purpose = Literal["eval", "train"]
BoxMaker = Callable[[Mapping[str, VideoRow]], list[BoxRow]]
GYT_SEGMENT_FILES = ("ground_seg_3to20.json", "ground_seg.json", "seg.json")


@dataclass(frozen=True)
class Draft:
    dataset: str
    sources: list[VideoSource]
    captions: list[CaptionRow]
    purpose: Purpose
    boxes: BoxMaker | None = None
    notes: tuple[str, ...] = field(default=())


def caption_id(video_id: str, kind: str, n: int | str) -> str:
    return f"{video_id}:{kind}:{n}"


def check_ids(path: str | os.PathLike, ids: Iterable[str], where: Callable[[str], str]) -> None:
    """AnnotationError naming `path` and `where(id)` for the first video id that is not a safe name."""
    for vid in ids:
        problem = id_problem(vid)
        if problem is not None:
            raise AnnotationError(path, where(vid), f"video id {shown(vid)} is not a safe name: it {problem}")


def _key(vid: str) -> str:
    return f"[{shown(vid)}]"


def check_sources(sources: Iterable[VideoSource]) -> None:
    """ValueError when an id is not a safe name or names two files (or the same file twice)."""
    seen: dict[str, str] = {}
    for s in sources:
        safe_id(s.video_id, "video id")
        if s.video_id in seen:
            raise ValueError(f"video id {shown(s.video_id)} is given twice: {seen[s.video_id]} and {s.path}")
        seen[s.video_id] = s.path


def _folder_notes(root: Path, unsafe: list[tuple[Path, str]], others: list[Path]) -> tuple[str, ...]:
    notes = [f"skipped {p}: its name cannot be a video id (it {problem})" for p, problem in unsafe]
    if others:
        shown_names = ", ".join(str(p.relative_to(root)) for p in others[:5])
        notes.append(f"skipped {len(others)} file(s) without a video extension ({shown_names}"
                     f"{', ...' if len(others) > 5 else ''}); recognised: {' '.join(VIDEO_EXTENSIONS)}")
    return tuple(notes)


def build_folder(video_dir: str | os.PathLike, *, recursive: bool = False, dataset: str | None = None) -> Draft:
    """Every file with a video extension (case-insensitive); whole videos. Files that are not videos, or whose
    name cannot be an id, are skipped with a note."""
    root = Path(video_dir).absolute()
    listing = scan_folder(root, recursive)
    name = dataset or root.name
    return Draft(name, [VideoSource(vid, str(p), name) for vid, p in listing.videos], [], "eval",
                 notes=_folder_notes(root, listing.unsafe, listing.others))


def build_howto100m(narrations: str | os.PathLike, video_dir: str | os.PathLike, *, recursive: bool = False,
                    dataset: str = "howto100m", vocabulary: Vocabulary | None = None) -> Draft:
    """Narrations (CSV directory, caption.json or HowToCaption JSON); caption windows. With a `vocabulary`
    (manifests.vocabulary, CoMMA's YouCook2-vocabulary subset) only the narrations holding one of its entries are
    kept, and videos left without narrations are not listed; a note gives the counts. Caption ids keep each
    narration's position in its source file."""
    by_video = load_narrations(narrations)
    in_dir = Path(narrations).is_dir()
    check_ids(narrations, by_video, (lambda v: f"file {v}.csv") if in_dir else _key)
    numbered = {vid: list(enumerate(items)) for vid, items in by_video.items()}
    notes: tuple[str, ...] = ()
    if vocabulary is not None:
        numbered, counts = filter_by_vocabulary(numbered, vocabulary, text_of=lambda item: item[1].text)
        notes = (counts.note(vocabulary.source),)
    captions = [CaptionRow(caption_id(vid, "narration", k), vid, n.start, n.end, n.text, "narration", n.source)
                for vid, items in numbered.items() for k, n in items]
    return Draft(dataset, locate(list(numbered), video_dir, dataset, None, recursive), captions, "train",
                 notes=notes)


def build_youcook2(annotations: str | os.PathLike, video_dir: str | os.PathLike, *, subset: str = "validation",
                   recursive: bool = False, dataset: str = "youcook2") -> Draft:
    """The videos of one subset; captions = segment sentences (kind "step"). Whole videos for validation,
    caption windows for training."""
    path = Path(annotations)
    videos = {v: x for v, x in youcook2.load_youcook2(path).items() if x.subset == subset}
    if not videos:
        raise AnnotationError(path, "", f"no video of subset {subset!r}")
    check_ids(path, videos, lambda v: f"['database']{_key(v)}")
    captions = [
        CaptionRow(caption_id(v, "step", s.id), v, s.start, s.end, s.sentence, "step",
                   f"{path.name}['database'][{v!r}]['annotations'][{i}]")
        for v, x in videos.items() for i, s in enumerate(x.segments)]
    purpose: Purpose = "train" if subset == "training" else "eval"
    return Draft(dataset, locate(list(videos), video_dir, dataset, subset, recursive), captions, purpose)


def build_gyt(benchmark_dir: str | os.PathLike, video_dir: str | os.PathLike, *,
              segments_file: str = GYT_SEGMENT_FILES[0], recursive: bool = False,
              dataset: str = "groundingyoutube") -> Draft:
    """GroundingYouTube: step segments of `segments_file` (kind "step", whole seconds as written), each
    video's query pool from vid2step.json (kind "query", no times) and box_anno.json boxes at t = second in
    the 640x480 frames (per-video size from id2wh_new.json when present). Whole videos."""
    root = Path(benchmark_dir)
    seg_path, v2s_path, box_path = root / segments_file, root / "vid2step.json", root / "box_anno.json"
    segments = gyt.load_segments(seg_path)
    queries = gyt.load_vid2step(v2s_path) if v2s_path.exists() else {}
    boxes = gyt.load_boxes(box_path)
    sizes_path = root / "id2wh_new.json"
    sizes = gyt.load_sizes(sizes_path) if sizes_path.exists() else {}
    for file, ids in ((seg_path, segments), (v2s_path, queries), (box_path, boxes)):
        check_ids(file, ids, _key)
    captions = [CaptionRow(caption_id(v, "step", s.id), v, float(s.start), float(s.end), s.sentence, "step",
                           f"{seg_path.name}[{v!r}] id {s.id}") for v, segs in segments.items() for s in segs]
    captions += [CaptionRow(caption_id(v, "query", i), v, None, None, q, "query", f"{v2s_path.name}[{v!r}][{i}]")
                 for v, qs in queries.items() for i, q in enumerate(qs)]

    def make_boxes(_: Mapping[str, VideoRow]) -> list[BoxRow]:
        rows = []
        for v, items in boxes.items():
            w, h = sizes.get(v, gyt.GYT_FRAME_SIZE)
            rows += [BoxRow(v, float(b.second), *b.box, w, h, b.step, f"{box_path.name}[{v!r}] second {b.second}")
                     for b in items]
        return rows

    video_ids = sorted(set(segments) | set(queries) | set(boxes))
    notes = (f"captions from {seg_path.name}; boxes from {box_path.name} (known defects kept: see "
             "manifests.benchmarks.gyt)",)
    return Draft(dataset, locate(video_ids, video_dir, dataset, "test", recursive), captions, "eval",
                 make_boxes, notes)


def build_yc_interactions(benchmark_dir: str | os.PathLike, video_dir: str | os.PathLike, *,
                          recursive: bool = False, dataset: str = "youcook2-interactions") -> Draft:
    """YouCook2-Interactions: the evaluated segments with their YouCook2 sentences (kind "step") and the boxes
    at t = frame_id - 1. Box coordinates are in 640x360 frames for videos larger than 640x360 in both
    dimensions, else in the original frame, except 7 videos with original-resolution boxes
    (`yc_interactions.ORIGINAL_RESOLUTION_VIDEOS`: WYAFPvlDB_A, 30Q8k57Kbz4, oJZUxU9szWA, vU2lND4YQjM,
    FzhJGCaaYVs, 1vJp-jaIaeE, 4Y8vVGsv4JE); the frame size is null for a video that could not be probed.
    Whole videos."""
    root = Path(benchmark_dir)
    seg_path = root / "final_dataset_segments.pkl"
    box_path = root / "final_dataset_annotations.pkl"
    yc2_path = root / "youcookii_annotations_trainval.json"
    segments = yc_interactions.load_segments(seg_path)
    boxes = yc_interactions.load_boxes(box_path)
    yc2 = youcook2.load_youcook2(yc2_path)
    check_ids(seg_path, (s[0] for s in segments), lambda v: f"segment of video {shown(v)}")
    check_ids(box_path, boxes, _key)
    captions = [_yc_caption(seg_path, yc2_path, yc2, *seg) for seg in segments]

    def make_boxes(videos: Mapping[str, VideoRow]) -> list[BoxRow]:
        rows = []
        for v, frames in boxes.items():
            row = videos.get(v)
            w, h = (yc_interactions.box_frame_size(v, row.width, row.height) if row is not None and row.ok
                    else (None, None))
            rows += [BoxRow(v, yc_interactions.frame_time(k), *box, w, h, None, f"{box_path.name}[{v!r}][{k}]")
                     for k, box in frames.items()]
        return rows

    video_ids = sorted({s[0] for s in segments} | {v for v, frames in boxes.items() if frames})
    notes = ("box frame size: 640x360 for videos larger than that, else the video's own size; 7 videos keep "
             "original-resolution boxes (manifests.benchmarks.yc_interactions); null where the video is missing",)
    return Draft(dataset, locate(video_ids, video_dir, dataset, "validation", recursive), captions, "eval",
                 make_boxes, notes)


def _yc_caption(seg_path: Path, yc2_path: Path, yc2: Mapping[str, youcook2.YouCook2Video],
                vid: str, start: int, end: int) -> CaptionRow:
    video = yc2.get(vid)
    match = [s for s in video.segments if (s.start, s.end) == (start, end)] if video else []
    if not match:
        raise AnnotationError(seg_path, f"segment ({vid!r}, {start}, {end})",
                              f"no YouCook2 segment with these times in {yc2_path.name}")
    seg = match[0]
    return CaptionRow(caption_id(vid, "step", seg.id), vid, float(start), float(end), seg.sentence, "step",
                      f"{seg_path.name} ({vid!r}, {start}, {end}) + {yc2_path.name} id {seg.id}")


def build_mining(srt_dir: str | os.PathLike, video_dir: str | os.PathLike, *, recursive: bool = False,
                 dataset: str = "miningyoutube") -> Draft:
    """MiningYouTube: one video per .srt, its action segments as captions of kind "label" (the label text as
    written, e.g. "crack_eggs"). Whole videos."""
    by_video = mining.load_srt_dir(srt_dir)
    check_ids(srt_dir, by_video, lambda v: f"file {v}.srt")
    captions = [CaptionRow(caption_id(v, "label", i), v, s.start, s.end, s.label, "label", f"{v}.srt block {i + 1}")
                for v, segs in by_video.items() for i, s in enumerate(segs)]
    return Draft(dataset, locate(list(by_video), video_dir, dataset, "test", recursive), captions, "eval")


def build_activitynet(annotations: str | os.PathLike, video_dir: str | os.PathLike, *, recursive: bool = False,
                      dataset: str = "activitynet") -> Draft:
    """ActivityNet Captions (`val_1.json`, `val_2.json` or `train.json`): every video of the file, its sentences as
    captions of kind "sentence" (id = the position in the paragraph, as eval.scorers.timed_queries numbers its
    queries). Whole videos (an evaluation set) for the val files, caption windows for train.json."""
    path = Path(annotations)
    videos = activitynet.load_activitynet(path)
    check_ids(path, videos, _key)
    captions = [CaptionRow(caption_id(v, "sentence", s.index), v, s.start, s.end, s.sentence, "sentence",
                           f"{path.name}[{v!r}]['sentences'][{s.index}]")
                for v, x in videos.items() for s in x.sentences]
    purpose: Purpose = "train" if path.stem.startswith("train") else "eval"
    return Draft(dataset, locate(list(videos), video_dir, dataset, path.stem, recursive), captions, purpose)
