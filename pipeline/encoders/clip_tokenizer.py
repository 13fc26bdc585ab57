"""OpenAI CLIP's byte-level BPE tokenizer, reimplemented so no CLIP package has to be imported.

The vocabulary is the `bpe_simple_vocab_16e6.txt.gz` merges file that ships inside the open_clip_torch
wheel. We only *read* that file: importing `open_clip` pulls in torchvision, which has no CPU build here.
Token ids equal `clip.tokenize(text, truncate=True)`: ftfy + double html unescape, whitespace collapsed,
lower-cased, split by CLIP's regex, byte-level BPE, <|startoftext|> ... <|endoftext|>, zero padding to
77 tokens; over-long texts are cut to 77 with the last id replaced by <|endoftext|>.
"""
from __future__ import annotations

import functools
import gzip
import html
import importlib.util
import json
from collections.abc import Sequence
from pathlib import Path

import ftfy
import numpy as np
import regex

from .weights import sha256_file

SOT_TEXT = "<|startoftext|>"
EOT_TEXT = "<|endoftext|>"
CONTEXT_LENGTH = 77
VOCAB_SIZE = 49408
# The merges file holds more merges than CLIP uses: 49408 = 2 * 256 byte symbols + merges + 2 specials.
_NUM_MERGES = VOCAB_SIZE - 2 * 256 - 2
_VOCAB_FILENAME = "bpe_simple_vocab_16e6.txt.gz"
_SPLIT = regex.compile(
    r"""<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
    regex.IGNORECASE,
)


class TokenizerFileError(FileNotFoundError):
    """The CLIP BPE vocabulary file is missing or malformed."""


def default_vocab_path() -> Path:
    """The merges file inside the installed open_clip_torch wheel (located without importing it)."""
    spec = importlib.util.find_spec("open_clip")
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        candidate = Path(folder) / _VOCAB_FILENAME
        if candidate.is_file():
            return candidate
    raise TokenizerFileError(
        f"CLIP BPE vocabulary {_VOCAB_FILENAME} not found: install it with "
        "`pip install --no-deps open_clip_torch` (only the data file is used) or pass its path explicitly"
    )


@functools.cache
def byte_symbols() -> tuple[tuple[int, str], ...]:
    """(byte value, printable stand-in character) for all 256 bytes, in vocabulary order.

    This is the GPT-2/CLIP byte-level convention: bytes that are printable Latin-1 characters stand for
    themselves and come first; the others (controls, space, a few gaps) follow in increasing byte order,
    mapped to code points 256, 257, ... so that BPE never sees whitespace or control characters.
    """
    kept = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    kept_set = set(kept)
    moved = [b for b in range(256) if b not in kept_set]
    return (*((b, chr(b)) for b in kept), *((b, chr(256 + i)) for i, b in enumerate(moved)))


@functools.cache
def _load_merges(path: str) -> tuple[tuple[str, str], ...]:
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            lines = handle.read().split("\n")
    except (OSError, EOFError, UnicodeDecodeError) as error:
        raise TokenizerFileError(f"{path}: cannot read the CLIP BPE merges file ({error})") from error
    # Line 0 is a version header; CLIP uses the next _NUM_MERGES merge rules.
    rules = [tuple(line.split()) for line in lines[1 : _NUM_MERGES + 1]]
    if len(rules) != _NUM_MERGES or any(len(rule) != 2 for rule in rules):
        raise TokenizerFileError(f"{path}: expected {_NUM_MERGES} merge rules 'a b' after the header")
    return tuple(rules)  # type: ignore[arg-type]


class ClipTokenizer:
    """Text -> CLIP token ids, identical to OpenAI CLIP's `SimpleTokenizer` + `tokenize(truncate=True)`."""

    def __init__(self, vocab_path: str | Path | None = None, context_length: int = CONTEXT_LENGTH):
        self.vocab_path = Path(vocab_path) if vocab_path is not None else default_vocab_path()
        if not self.vocab_path.is_file():
            raise TokenizerFileError(f"{self.vocab_path}: CLIP BPE vocabulary file not found")
        self.merges = _load_merges(str(self.vocab_path))
        self.vocab = self._build_vocab(self.merges)
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.sot_id = self.vocab[SOT_TEXT]
        self.eot_id = self.vocab[EOT_TEXT]
        self.context_length = context_length
        self._bytes = dict(byte_symbols())
        self._bpe = functools.lru_cache(maxsize=65536)(self._bpe_uncached)

    @staticmethod
    def _build_vocab(merges: Sequence[tuple[str, str]]) -> dict[str, int]:
        symbols = [symbol for _, symbol in byte_symbols()]
        tokens = [*symbols, *(s + "</w>" for s in symbols), *(a + b for a, b in merges), SOT_TEXT, EOT_TEXT]
        return {token: index for index, token in enumerate(tokens)}

    @functools.cached_property
    def sha256(self) -> str:
        return sha256_file(self.vocab_path)

    @staticmethod
    def clean(text: str) -> str:
        text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
        return " ".join(text.split()).lower()

    def _bpe_uncached(self, piece: str) -> tuple[str, ...]:
        """Merge the lowest-ranked adjacent pair, everywhere left to right, until no known pair is left."""
        if piece in (SOT_TEXT, EOT_TEXT):
            return (piece,)
        parts = [*piece[:-1], piece[-1] + "</w>"]
        while len(parts) > 1:
            pairs = {(parts[i], parts[i + 1]) for i in range(len(parts) - 1)}
            best = min(pairs, key=lambda pair: self.ranks.get(pair, len(self.ranks)))
            if best not in self.ranks:
                break
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return tuple(parts)

    def encode(self, text: str) -> list[int]:
        """BPE ids of the text, without start/end tokens and without truncation."""
        ids: list[int] = []
        for piece in _SPLIT.findall(self.clean(text)):
            if piece not in (SOT_TEXT, EOT_TEXT):
                piece = "".join(self._bytes[b] for b in piece.encode("utf-8"))
            ids.extend(self.vocab[token] for token in self._bpe(piece))
        return ids

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """int64 [C, context_length]: SOT, ids, EOT, zero padding; truncated so EOT is always present."""
        if isinstance(texts, str):
            raise TypeError("ClipTokenizer expects a sequence of texts, not a single string")
        out = np.zeros((len(texts), self.context_length), dtype=np.int64)
        for row, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > self.context_length:
                ids = ids[: self.context_length]
                ids[-1] = self.eot_id
            out[row, : len(ids)] = ids
        return out

    def spec(self) -> dict:
        return {"kind": "clip-bpe", "vocab_sha256": self.sha256, "context_length": self.context_length}

    def write_hf_files(self, folder: str | Path) -> tuple[Path, Path]:
        """Write `vocab.json` + `merges.txt` so transformers' CLIPTokenizer can be built from this vocab."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
        vocab_file.write_text(json.dumps(self.vocab, ensure_ascii=False), encoding="utf-8")
        lines = ["#version: 0.2", *(f"{a} {b}" for a, b in self.merges)]
        merges_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
        return vocab_file, merges_file


@functools.cache
def shared_tokenizer(vocab_path: str | None = None) -> ClipTokenizer:
    """One tokenizer per vocabulary file per process (building the rank table takes ~0.2 s)."""
    return ClipTokenizer(vocab_path)
