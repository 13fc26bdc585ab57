"""The vocabulary filter of narration manifests (CoMMA's YouCook2-vocabulary subset of HowTo100M):
tokenisation, one-word and multi-word entries, the counts in the build summary, one-line errors for bad files."""
from __future__ import annotations

import pytest

from manifests.build import main
from manifests.errors import AnnotationError
from manifests.schema import Manifest
from manifests.vocabulary import filter_by_vocabulary, load_vocabulary, words
from tests.manifests.helpers import write_narration_csvs

NARRATIONS = {
    "vidA": [(0.0, 2.0, "Chop the ONIONS finely"), (3.0, 4.0, "subscribe to my channel"),
             (5.0, 6.0, "add olive oil, then stir-fry")],
    "vidB": [(1.0, 2.0, "hello everyone"), (2.0, 3.0, "oil painting tips")],
    "vidC": [(0.0, 1.0, "thanks for watching")],
}


def vocab_file(tmp_path, text: str, name="vocab.txt"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tokenisation_lowercases_and_splits_on_non_letters():
    assert words("Stir-FRY the chicken's 2 legs_now!") == ["stir", "fry", "the", "chicken", "s", "2", "legs", "now"]
    assert words("Crème brûlée") == ["crème", "brûlée"]


def test_single_words_and_phrases_match_as_documented(tmp_path):
    vocab = load_vocabulary(vocab_file(tmp_path, "# YouCook2 words\nOnions\n\nolive oil\nstir\n"))
    assert vocab.size == 3
    assert vocab.matches("chop the onions") and vocab.matches("STIR-fry it")
    assert vocab.matches("add olive oil") and not vocab.matches("oil painting") and not vocab.matches("olive")
    assert not vocab.matches("chop the onion")                            # no stemming
    assert not vocab.matches("oil olive")                                  # a phrase keeps its order


def test_filter_counts_and_keeps_order(tmp_path):
    vocab = load_vocabulary(vocab_file(tmp_path, "onions\nolive oil\n"))
    by_video = {v: [t for _, _, t in rows] for v, rows in NARRATIONS.items()}
    kept, counts = filter_by_vocabulary(by_video, vocab, text_of=lambda t: t)
    expected = {v: [t for t in texts if vocab.matches(t)] for v, texts in by_video.items()}
    assert kept == {v: ts for v, ts in expected.items() if ts}
    total = sum(len(t) for t in by_video.values())
    assert (counts.kept, counts.dropped) == (sum(len(t) for t in kept.values()), total - counts.kept)
    assert (counts.videos_kept, counts.videos_dropped) == (len(kept), len(by_video) - len(kept))
    assert f"kept {counts.kept} of {total} narrations" in counts.note("v.txt")


@pytest.mark.parametrize("text,problem", [
    ("onion\n--\n", "line 2: '--' holds no word"),
    ("# only a comment\n\n", "holds no vocabulary entry"),
])
def test_bad_vocabulary_files_are_refused(tmp_path, text, problem):
    with pytest.raises(AnnotationError, match=problem):
        load_vocabulary(vocab_file(tmp_path, text))


def write_csv_dir(root):
    return write_narration_csvs(root, NARRATIONS)


def build(tmp_path, *extra):
    videos = tmp_path / "videos"
    videos.mkdir(exist_ok=True)
    return main(["howto100m", str(write_csv_dir(tmp_path)), "--video-dir", str(videos), "--out",
                 str(tmp_path / "manifest"), "--no-progress", *extra])


def test_build_keeps_matching_narrations_and_reports_counts(tmp_path, capsys):
    vocab = vocab_file(tmp_path, "onions\nolive oil\n")
    assert build(tmp_path, "--vocabulary-filter", str(vocab)) == 0
    out = capsys.readouterr().out
    manifest = Manifest.read(tmp_path / "manifest")
    captions = manifest.caption_rows()
    loaded = load_vocabulary(vocab)
    want = [(v, t) for v, rows in NARRATIONS.items() for _, _, t in rows if loaded.matches(t)]
    assert sorted((c.video_id, c.text) for c in captions) == sorted(want)
    # caption ids keep the narration's position in its file
    assert {c.caption_id for c in captions} == {f"vidA:narration:{k}" for k in (0, 2)}
    assert {v.video_id for v in manifest.video_rows()} == {v for v, _ in want}
    total = sum(len(r) for r in NARRATIONS.values())
    assert f"kept {len(want)} of {total} narrations" in out and f"dropped {total - len(want)}" in out
    assert "2 video(s) left without a narration were dropped" in out


@pytest.mark.parametrize("content", [None, "--\n", b"\xff\xfeonion\n"])
def test_build_with_a_bad_vocabulary_file_exits_2_with_one_line(tmp_path, capsys, content):
    path = tmp_path / "vocab.txt"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    assert build(tmp_path, "--vocabulary-filter", str(path)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path}")
    assert not (tmp_path / "manifest").exists()
