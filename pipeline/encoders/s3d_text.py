"""MIL-NCE word tokenisation for S3D: the `s3d_dict.npy` dictionary, `[\\w']+` words, OOV dropped.

Word i of the dictionary has token id i + 1 (id 0 is padding). Words missing from the dictionary are
dropped (there is no UNK), then ids are cut or zero-padded to `max_words`. The S3D release lower-cases
text before splitting; the grounding authors' loaders do not, so it is an option recorded in the spec.
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .weights import EncoderLoadError, one_line, path_problem, sha256_file

WORD_PATTERN = r"[\w']+"
_WORDS = re.compile(WORD_PATTERN)  # stdlib re, as the release uses: \w is Unicode-aware for str


class DictionaryError(EncoderLoadError):
    """`s3d_dict.npy` is missing, unsafe to load (object array) or not a 1-D array of words."""


def load_dictionary(path: str | Path) -> list[str]:
    """The word list of `s3d_dict.npy`, refusing object arrays rather than unpickling them."""
    path = Path(path)
    problem = path_problem(path)
    if problem:
        raise DictionaryError(
            f"S3D dictionary {path} {problem}: download s3d_dict.npy (MIL-NCE HowTo100M release, "
            "see github.com/antoine77340/S3D_HowTo100M) and pass it with --s3d-dict"
        )
    try:
        words = np.load(path, allow_pickle=False)
    except ValueError as error:
        # numpy raises ValueError both for object arrays (which would need pickle) and for corrupt files.
        raise DictionaryError(
            f"{path}: cannot load as a plain numpy string array without pickle ({one_line(error)}); an object-dtype "
            "dictionary is refused because unpickling can run code: re-save it as a unicode array, e.g. "
            "np.save(path, np.asarray(words, dtype=str)) from a trusted copy"
        ) from error
    if not isinstance(words, np.ndarray) or words.ndim != 1 or words.dtype.kind not in "US":
        raise DictionaryError(
            f"{path}: expected a 1-D array of words (unicode or bytes), got "
            f"{getattr(words, 'dtype', type(words).__name__)} with shape {getattr(words, 'shape', None)}"
        )
    if words.dtype.kind == "S":
        return [w.decode("utf-8") for w in words.tolist()]
    return [str(w) for w in words.tolist()]


def whole_words(bpe_tokens: Iterable[str]) -> tuple[str, ...]:
    """Whole-word entries of a CLIP BPE vocabulary (ASCII letters + '</w>'), suffix stripped, in order.

    Used as the tiny S3D dictionary so tests and the demo need no extra data file.
    """
    words: dict[str, None] = {}
    for token in bpe_tokens:
        word = token.removesuffix("</w>")
        if word != token and word.isascii() and word.isalpha():
            words.setdefault(word, None)
    return tuple(words)


class WordTokenizer:
    """Texts -> int64 ids [C, max_words] and a bool mask of real words, MIL-NCE style."""

    def __init__(self, words: Sequence[str], *, max_words: int = 20, lowercase: bool = True,
                 source_sha256: str = "", source: str = ""):
        # Later duplicates win, as building the release's dict in order does.
        self.word_to_id = {word: index + 1 for index, word in enumerate(words)}
        self.vocab_rows = len(words) + 1
        self.max_words = max_words
        self.lowercase = lowercase
        self.source_sha256 = source_sha256
        self.source = source

    @classmethod
    def from_file(cls, path: str | Path, **options: object) -> WordTokenizer:
        return cls(load_dictionary(path), source_sha256=sha256_file(path), source="s3d_dict.npy", **options)

    def words(self, text: str) -> list[str]:
        """The in-vocabulary words of a text, in order, before the max_words cut."""
        found = _WORDS.findall(text.lower() if self.lowercase else text)
        return [word for word in found if word in self.word_to_id]

    def __call__(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(texts, str):
            raise TypeError("WordTokenizer expects a sequence of texts, not a single string")
        ids = np.zeros((len(texts), self.max_words), dtype=np.int64)
        for row, text in enumerate(texts):
            kept = [self.word_to_id[word] for word in self.words(text)][: self.max_words]
            ids[row, : len(kept)] = kept
        return ids, ids > 0

    def spec(self) -> dict:
        return {"kind": "s3d-words", "pattern": WORD_PATTERN, "lowercase": self.lowercase, "oov": "drop",
                "dictionary": self.source, "dictionary_sha256": self.source_sha256,
                "vocab_size": self.vocab_rows - 1}
