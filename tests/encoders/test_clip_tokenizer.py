"""Our CLIP BPE tokenizer must give OpenAI CLIP's token ids (checked against two independent references)."""
from __future__ import annotations

import html
import importlib.util
from pathlib import Path

import ftfy
import numpy as np
import pytest

from pipeline.encoders.clip_tokenizer import (
    CONTEXT_LENGTH, VOCAB_SIZE, ClipTokenizer, TokenizerFileError, byte_symbols, default_vocab_path,
)

VARIED_TEXTS = [
    "a photo of a cat",
    "",
    "   ",
    "Hello, World!!! What's up?? (yes) [no] {maybe}",
    "it's, they're, we've, I'm, you'll, he'd, don't, can't",
    "Add 2 cups of flour, 1/2 tsp salt & 350g butter at 180°C; bake 25-30 min.",
    "3.14159 and 1,000,000 and 2024-11-22 and 0x1F",
    "Fish &amp; chips &lt;3 &quot;quoted&quot; &#39;single&#39; &amp;amp;",
    "naïve café — “smart quotes” ‘single’ … ñandú Œuvre ß",  # noqa: RUF001
    "東京でラーメンを食べる 北京 서울 Москва Ελλάδα",
    "emoji 😀🍕👍🏽 and symbols ©®™ ✓ ♥",
    "mojibake: Ã©tÃ© â€œquotedâ€\x9d",
    "TWO   spaces\tand\nnewline\r\nand\u00a0nbsp",
    "UPPER lower MiXeD CamelCaseWord snake_case_word kebab-case",
    "supercalifragilisticexpialidocious antidisestablishmentarianism pneumonoultramicroscopic",
    "cut the onions into thin slices then fry them until golden brown " * 6,  # > 77 tokens
    "!" * 200,
    "a" * 500,
]


@pytest.fixture(scope="module")
def tokenizer() -> ClipTokenizer:
    return ClipTokenizer()


@pytest.fixture(scope="module")
def open_clip_reference():
    """open_clip's tokenizer.py loaded on its own (importing the package would need torchvision)."""
    path = default_vocab_path().parent / "tokenizer.py"
    spec = importlib.util.spec_from_file_location("open_clip_tokenizer_reference", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def hf_reference(tokenizer, tmp_path_factory):
    from transformers import CLIPTokenizer

    folder = tmp_path_factory.mktemp("hf_clip_tokenizer")
    tokenizer.write_hf_files(folder)
    return CLIPTokenizer.from_pretrained(str(folder))


def test_known_ids_and_layout(tokenizer):
    ids = tokenizer(["a photo of a cat", ""])
    assert ids.shape == (2, CONTEXT_LENGTH) and ids.dtype == np.int64
    # Well-known OpenAI CLIP ids: <|startoftext|> a photo of a cat <|endoftext|>, then zero padding.
    assert ids[0, :7].tolist() == [49406, 320, 1125, 539, 320, 2368, 49407]
    assert ids[1, :2].tolist() == [49406, 49407]
    assert not ids[0, 7:].any() and not ids[1, 2:].any()
    assert len(tokenizer.vocab) == VOCAB_SIZE
    assert (tokenizer.sot_id, tokenizer.eot_id) == (49406, 49407)


def test_byte_symbols_are_a_bijection_without_whitespace():
    table = byte_symbols()
    assert sorted(b for b, _ in table) == list(range(256))
    assert len({s for _, s in table}) == 256
    assert not any(s.isspace() for _, s in table)
    assert dict(table)[ord("a")] == "a" and dict(table)[ord(" ")] == chr(256 + 32)


def test_matches_open_clip_reference(tokenizer, open_clip_reference):
    reference = open_clip_reference.tokenize(VARIED_TEXTS, context_length=CONTEXT_LENGTH).numpy()
    ours = tokenizer(VARIED_TEXTS)
    for text, a, b in zip(VARIED_TEXTS, ours, reference, strict=True):
        assert a.tolist() == b.tolist(), text


def test_matches_transformers_clip_tokenizer_from_converted_vocab(tokenizer, hf_reference):
    # HF's fast CLIP tokenizer skips ftfy and html unescaping, so compare on text those leave unchanged;
    # it also knows the special-token strings, like OpenAI's tokenizer (open_clip names them differently).
    texts = [t for t in VARIED_TEXTS
             if html.unescape(t) == t and ftfy.fix_text(t) == t and len(tokenizer.encode(t)) < 75]
    texts += ["before <|endoftext|> after", "<|startoftext|>x"]
    assert len(texts) >= 12
    for text in texts:
        assert [tokenizer.sot_id, *tokenizer.encode(text), tokenizer.eot_id] == hf_reference(text)["input_ids"], text


def test_long_text_is_truncated_with_eot_last(tokenizer):
    text = "word " * 200
    ids = tokenizer([text])[0]
    assert len(tokenizer.encode(text)) == 200
    assert ids[0] == tokenizer.sot_id and ids[-1] == tokenizer.eot_id
    assert (ids[1:-1] == tokenizer.vocab["word</w>"]).all()


def test_cleaning_unescapes_html_and_fixes_text(tokenizer):
    assert tokenizer.encode("Fish &amp; Chips") == tokenizer.encode("fish & chips")
    assert tokenizer.encode("  many \n\t spaces ") == tokenizer.encode("many spaces")
    assert tokenizer.encode("cafÃ©") == tokenizer.encode("café")  # ftfy repairs mojibake


def test_single_string_is_rejected(tokenizer):
    with pytest.raises(TypeError, match="sequence of texts"):
        tokenizer("a photo")


def test_missing_or_corrupt_vocab_file_is_named(tmp_path):
    missing = tmp_path / "nope.txt.gz"
    with pytest.raises(TokenizerFileError, match="nope.txt.gz"):
        ClipTokenizer(missing)
    corrupt = tmp_path / "corrupt.txt.gz"
    corrupt.write_bytes(b"not gzip at all")
    with pytest.raises(TokenizerFileError, match="corrupt.txt.gz"):
        ClipTokenizer(corrupt)


def test_default_vocab_is_the_open_clip_file():
    path = default_vocab_path()
    assert path.name == "bpe_simple_vocab_16e6.txt.gz" and Path(path).parent.name == "open_clip"
