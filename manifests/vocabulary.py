"""A narration filter by vocabulary: keep the narrations that contain at least one vocabulary entry.

CoMMA (Tan et al., NeurIPS 2021, Sec. 4 "Self-training dataset") trains on the HowTo100M clips whose narrations
contain verbs and nouns of the YouCook2 vocabulary (about 250,000 clips); the word list itself was not released,
so the user supplies one (`python -m manifests.build howto100m ... --vocabulary-filter FILE`).

Vocabulary file: UTF-8 text, one entry per line; blank lines and lines starting with "#" are ignored. An entry is
tokenised like a narration; an entry of several words ("olive oil") matches only those words in that order,
next to each other. A line that holds no word (e.g. "--") is an error naming the file and line.

Tokenisation (entries and narrations alike): lowercase (`str.lower`), then the maximal runs of letters and
digits (regex `[^\\W_]+`, Unicode-aware): punctuation, underscores and apostrophes split words ("don't" ->
"don", "t"; "stir-fry" -> "stir", "fry"). No stemming: "onion" does not match "onions" (list both forms).
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence, TypeVar

from manifests.benchmarks.common import read_lines
from manifests.errors import AnnotationError

WORD = re.compile(r"[^\W_]+")
T = TypeVar("T")


def words(text: str) -> list[str]:
    """The tokens of `text`: lowercase runs of letters and digits."""
    return WORD.findall(text.lower())


@dataclass(frozen=True)
class Vocabulary:
    source: str
    single: frozenset[str]                    # one-word entries
    phrases: Mapping[str, tuple[tuple[str, ...], ...]]  # multi-word entries by their first word

    @property
    def size(self) -> int:
        return len(self.single) + sum(len(p) for p in self.phrases.values())

    def matches(self, text: str) -> bool:
        tokens = words(text)
        for i, token in enumerate(tokens):
            if token in self.single:
                return True
            for phrase in self.phrases.get(token, ()):
                if tuple(tokens[i:i + len(phrase)]) == phrase:
                    return True
        return False


def load_vocabulary(path: str | os.PathLike) -> Vocabulary:
    """The vocabulary of a file (see the module docstring); AnnotationError naming the file (and line) when it
    is missing, unreadable, holds a line without a word, or no entry at all."""
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(path, "", "vocabulary file does not exist (or is not a file)")
    single: set[str] = set()
    phrases: dict[str, set[tuple[str, ...]]] = {}
    for n, line in enumerate(read_lines(path), start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        entry = tuple(words(text))
        if not entry:
            raise AnnotationError(path, f"line {n}", f"{text!r} holds no word (letters or digits)")
        if len(entry) == 1:
            single.add(entry[0])
        else:
            phrases.setdefault(entry[0], set()).add(entry)
    if not single and not phrases:
        raise AnnotationError(path, "", "holds no vocabulary entry (one word or phrase per line)")
    return Vocabulary(str(path), frozenset(single), {k: tuple(sorted(v)) for k, v in phrases.items()})


@dataclass(frozen=True)
class FilterCounts:
    kept: int
    dropped: int
    videos_kept: int
    videos_dropped: int  # videos left without any narration

    def note(self, source: str) -> str:
        total = self.kept + self.dropped
        share = 100.0 * self.kept / total if total else 0.0
        return (f"vocabulary filter {source}: kept {self.kept} of {total} narrations ({share:.1f} %), dropped "
                f"{self.dropped}; {self.videos_dropped} video(s) left without a narration were dropped, "
                f"{self.videos_kept} kept")


def filter_by_vocabulary(by_video: Mapping[str, Sequence[T]], vocabulary: Vocabulary,
                         text_of=lambda item: item.text) -> tuple[dict[str, list[T]], FilterCounts]:
    """{video: the narrations that match} (videos without one left out) and the counts."""
    kept: dict[str, list[T]] = {}
    n_kept = n_dropped = 0
    for vid, items in by_video.items():
        matching = [item for item in items if vocabulary.matches(text_of(item))]
        n_kept += len(matching)
        n_dropped += len(items) - len(matching)
        if matching:
            kept[vid] = matching
    return kept, FilterCounts(n_kept, n_dropped, len(kept), len(by_video) - len(kept))
