"""Fixtures of the manifests tests: small generated videos (made once per session) and benchmark paths."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.media import audio_only, colour_video, rotate_metadata


@dataclass(frozen=True)
class Media:
    """Generated files: `plain` 2 s 64x48 with audio; `portrait` 1 s 48x64; `rotated` = plain with a 90 degree
    display rotation (shown 48x64); `large` 1 s 656x368 (above YC-Interactions' 640x360 rule);
    `audio` an audio-only .mp4; `corrupt` garbage bytes named .mp4; `empty` a zero-byte .mp4."""

    plain: Path
    portrait: Path
    rotated: Path
    large: Path
    audio: Path
    corrupt: Path
    empty: Path


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> Media:
    d = tmp_path_factory.mktemp("media")
    plain = colour_video(d / "plain.mp4", seconds=2, fps=10, width=64, height=48, audio=True)
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not really a video" * 50)
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    return Media(plain=plain,
                 portrait=colour_video(d / "portrait.mp4", seconds=1, fps=10, width=48, height=64),
                 rotated=rotate_metadata(plain, d / "rotated.mp4", 90),
                 large=colour_video(d / "large.mp4", seconds=1, fps=5, width=656, height=368),
                 audio=audio_only(d / "audio.mp4", seconds=1), corrupt=corrupt, empty=empty)
