"""MiningYouTube .srt blocks must be in time order, not inverted and not overlapping (beyond frame rounding)."""
from __future__ import annotations

import pytest

from manifests.benchmarks import mining
from manifests.build import main
from manifests.errors import AnnotationError


def _srt(tmp_path, *blocks: tuple[str, str], name="vid.srt"):
    text = "\ufeff" + "\r\n".join(f"{i}\r\n{a} --> {b}\r\nlabel_{i}\r\n" for i, (a, b) in enumerate(blocks, 1))
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


def _refused(path, *fragments):
    with pytest.raises(AnnotationError) as err:
        mining.load_srt(path)
    message = str(err.value)
    assert message.startswith(f"{path}: ") and "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


def test_inverted_block_is_refused_naming_its_line(tmp_path):
    path = _srt(tmp_path, ("00:00:01,000", "00:00:02,000"), ("00:00:05,000", "00:00:04,000"))
    _refused(path, "line 6:", "ends (4.000 s) before it starts (5.000 s)")


def test_overlapping_block_is_refused_naming_both_lines(tmp_path):
    path = _srt(tmp_path, ("00:00:01,000", "00:00:03,000"), ("00:00:02,500", "00:00:04,000"))
    _refused(path, "line 6:", "starts at 2.500 s, before the previous block (line 2) ends at 3.000 s")


def test_blocks_out_of_time_order_are_refused(tmp_path):
    path = _srt(tmp_path, ("00:01:00,000", "00:01:05,000"), ("00:00:01,000", "00:00:02,000"))
    _refused(path, "line 6:", "in time order")


def test_rounding_overlaps_and_zero_length_blocks_are_kept(tmp_path):
    # as in the released files: 9 ms overlaps (frame times rounded to ms) and blocks of zero length
    path = _srt(tmp_path, ("00:01:53,630", "00:01:56,189"), ("00:01:56,180", "00:01:56,180"),
                ("00:01:56,180", "00:01:59,700"))
    assert [(s.start, s.end) for s in mining.load_srt(path)] == [(113.63, 116.189), (116.18, 116.18),
                                                                 (116.18, 119.7)]


def test_mining_builder_exits_2_on_an_overlap(tmp_path, capsys):
    srt_dir = tmp_path / "srt"
    srt_dir.mkdir()
    path = _srt(srt_dir, ("00:00:01,000", "00:00:03,000"), ("00:00:02,000", "00:00:04,000"))
    (tmp_path / "videos").mkdir()
    code = main(["mining", str(srt_dir), "--video-dir", str(tmp_path / "videos"), "--out", str(tmp_path / "m")])
    assert code == 2
    assert capsys.readouterr().err.startswith(f"error: {path}: line 6: block starts at 2.000 s")
    assert not (tmp_path / "m").exists()
