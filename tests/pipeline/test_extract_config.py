"""The extract command's typed config: defaults, flags and `key=value` overrides, bounds, one-line errors."""
from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.backends import EncoderConfig
from pipeline.config import ConfigError
from pipeline.extract import config_from_namespace, encoder_config, main, parse_args
from pipeline.extract_config import ExtractConfig, load_extract_config
from tests.pipeline.helpers import assert_same_features, narrated_world

REPO = Path(__file__).resolve().parents[2]

# The documented defaults of `python -m pipeline.extract` (module docstring, --help, README).
DOCUMENTED = dict(encoders=("clip",), preset="tiny", clip_model=None, s3d_weights=None, s3d_dict=None, s3d_fps=16.0,
                  s3d_window=32, clip_normalize="clip", resize="center-crop", grid_dtype="float16",
                  backend="sequential", workers=1, ray_address=None, videos_per_shard=8, chunk_frames=32, retries=1,
                  device=None, on_change="reextract", retry_failed=False, repair=False, deep=False,
                  force_unlock=False)


def _required(tmp_path) -> list[str]:
    return ["--manifest", str(tmp_path / "manifest"), "--store", str(tmp_path / "store.zarr")]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    return err[0]


def test_defaults_are_the_documented_ones_and_every_option_is_a_field():
    cfg = ExtractConfig(manifest="m", store="s")
    assert dataclasses.asdict(cfg) == {"manifest": "m", "store": "s", **DOCUMENTED}
    assert parse_args(["--manifest", "m", "--store", "s"]) == cfg
    assert load_extract_config({"manifest": "m", "store": "s"}) == cfg


def test_the_config_is_frozen():
    cfg = parse_args(["--manifest", "m", "--store", "s"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.chunk_frames = 64  # type: ignore[misc]
    assert dataclasses.replace(cfg, chunk_frames=64).chunk_frames == 64 and cfg.chunk_frames == 32


@pytest.mark.parametrize("flags,overrides", [
    (["--chunk-frames", "64"], ["chunk_frames=64"]),
    (["--encoders", "clip,s3d"], ["encoders=clip,s3d"]),
    (["--encoders", "clip,s3d"], ["encoders=[clip, s3d]"]),
    (["--s3d-fps", "8"], ["s3d_fps=8"]),
    (["--s3d-window", "16"], ["s3d_window=16"]),
    (["--grid-dtype", "int8"], ["grid_dtype=int8"]),
    (["--on-change", "keep"], ["on_change=keep"]),
    (["--preset", "vit-b-32"], ["preset=vit-b-32"]),
    (["--device", "cuda:1"], ["device=cuda:1"]),
    (["--clip-model", "openai/clip-vit-base-patch32"], ["clip_model=openai/clip-vit-base-patch32"]),
    (["--retry-failed"], ["retry_failed=true"]),
    (["--repair", "--deep"], ["repair=yes", "deep=on"]),
])
def test_a_flag_and_a_key_value_override_give_the_same_config(flags, overrides):
    required = ["--manifest", "m", "--store", "s"]
    assert parse_args([*required, *flags]) == parse_args([*required, *overrides]) != parse_args(required)


def test_overrides_win_over_flags_and_may_come_anywhere():
    cfg = parse_args(["chunk_frames=64", "--manifest", "m", "--store", "s", "--chunk-frames", "8", "retries=0"])
    assert (cfg.chunk_frames, cfg.retries) == (64, 0)
    assert parse_args(["--manifest", "m", "--store", "s", "manifest=other"]).manifest == "other"
    assert parse_args(["--manifest", "m", "--store", "s", "--device", "cpu", "device=null"]).device is None


def test_an_unknown_key_exits_2_with_one_line_naming_it(tmp_path, capsys):
    assert main([*_required(tmp_path), "chunk_frame=64"]) == 2
    line = _one_error_line(capsys)
    assert "unknown key 'chunk_frame'" in line and "chunk_frames" in line and "force_unlock" in line
    assert not (tmp_path / "store.zarr").exists()


def test_an_unknown_key_from_the_command_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pipeline.extract", *_required(tmp_path), "bogus=1"], cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()] and "unknown key 'bogus'" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "store.zarr").exists()


@pytest.mark.parametrize("extra,message", [
    (["--chunk-frames", "0"], "--chunk-frames must be in [1, 4096], got 0"),
    (["chunk_frames=0"], "--chunk-frames must be in [1, 4096], got 0"),
    (["chunk_frames=5000"], "--chunk-frames must be in [1, 4096], got 5000"),
    (["--retries", "-1"], "--retries must be in [0, 10], got -1"),
    (["workers=0"], "--workers must be in [1, 1024], got 0"),
    (["videos_per_shard=0"], "--videos-per-shard must be in [1, 100000], got 0"),
    (["--s3d-fps", "1e6"], "--s3d-fps must be in [0.001, 60], got 1e+06"),
    (["s3d_fps=nan"], "--s3d-fps must be in [0.001, 60], got nan"),
    (["--s3d-window", "12"], "--s3d-window must be a multiple of 8"),
    (["s3d_window=12"], "--s3d-window must be a multiple of 8"),
    (["s3d_window=4"], "--s3d-window must be in [8, 512], got 4"),
    (["chunk_frames=many"], "chunk_frames: expected an integer, got 'many'"),
    (["preset=huge"], "preset: 'huge' is not one of ['tiny', 'vit-b-32']"),
    (["backend=dask"], "backend: 'dask' is not one of ['sequential', 'ray']"),
    (["retry_failed=maybe"], "retry_failed: expected true/false, got 'maybe'"),
    (["chunk_frames"], "expected KEY=VALUE"),
])
def test_a_bad_value_exits_2_with_one_line_before_any_work(tmp_path, capsys, extra, message):
    assert main([*_required(tmp_path), *extra]) == 2
    assert message in _one_error_line(capsys)
    assert not (tmp_path / "store.zarr").exists()


def test_checks_hold_for_a_config_built_in_code():
    with pytest.raises(ConfigError, match=r"--chunk-frames must be in \[1, 4096\], got 0"):
        ExtractConfig(manifest="m", store="s", chunk_frames=0)
    with pytest.raises(ValueError, match=r"--resize must be one of \['center-crop', 'squash'\], got 'bogus'"):
        ExtractConfig(manifest="m", store="s", resize="bogus")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="--s3d-window must be a multiple of 8"):
        ExtractConfig(manifest="m", store="s", s3d_window=20)
    assert ExtractConfig(manifest="m", store="s", encoders="clip, s3d").encoders == ("clip", "s3d")  # type: ignore


def test_encoder_config_is_built_from_the_config():
    cfg = parse_args(["--manifest", "m", "--store", "s", "--encoders", "clip,s3d", "s3d_window=16", "resize=squash",
                      "--grid-dtype", "int8", "clip_normalize=none", "device=cpu"])
    assert encoder_config(cfg) == EncoderConfig(("clip", "s3d"), "tiny", None, None, None, 16.0, 16, "none", "squash",
                                                "cpu", "int8")


def test_a_namespace_of_the_old_api_still_converts():
    ns = argparse.Namespace(manifest="m", store="s", encoders="clip,s3d", chunk_frames=64, retry_failed=True)
    cfg = config_from_namespace(ns)
    assert isinstance(cfg, ExtractConfig) and cfg.encoders == ("clip", "s3d") and cfg.chunk_frames == 64
    assert config_from_namespace(cfg) is cfg and encoder_config(ns).names == ("clip", "s3d")
    with pytest.raises(ConfigError, match="unknown key 'chunk_frame'"):
        config_from_namespace(argparse.Namespace(manifest="m", store="s", chunk_frame=1))


def test_help_shows_the_defaults_and_the_key_value_form(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "KEY=VALUE" in out and "--chunk-frames" in out and "(default: 32)" in out and "chunk_frames=64" in out


def test_key_value_overrides_reach_the_extraction(tmp_path, capsys):
    manifest = narrated_world(tmp_path / "world", videos=2)
    by_flags, by_overrides = tmp_path / "flags.zarr", tmp_path / "overrides.zarr"
    assert main(["--manifest", str(manifest), "--store", str(by_flags), "--encoders", "clip", "--chunk-frames", "4",
                 "--videos-per-shard", "1"]) == 0
    flags_summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert main(["--manifest", str(manifest), "--store", str(by_overrides), "--videos-per-shard", "2",
                 "chunk_frames=4", "videos_per_shard=1", "encoders=clip"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["shards_written"] == flags_summary["shards_written"] == 2  # videos_per_shard=1 won over the flag
    assert set(summary["frames"]) == {"clip"}
    assert_same_features(by_flags, by_overrides)
