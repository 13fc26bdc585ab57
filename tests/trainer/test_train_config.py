"""The train command's config: a preset names its method, the config holds the common sections and exactly that
method's section; every preset loads, round-trips through config.yaml and sets the documented values; a config
of groundcache 0.1 (before methods had sections) still loads."""
from __future__ import annotations

import pytest

from pipeline.config import ConfigError, save_yaml, to_dict, valid_keys
from trainer.methods import (METHODS, all_presets, config_class, config_from_dict, load_train_config,
                             load_train_yaml)


@pytest.mark.parametrize("preset", all_presets())
def test_every_preset_loads_and_round_trips_through_yaml(preset, tmp_path):
    cfg = load_train_config(preset)
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_train_yaml(tmp_path / "config.yaml") == cfg
    assert to_dict(cfg)["data"]["encoder"] == cfg.data.encoder
    sections = [name for name in METHODS if hasattr(cfg, name)]
    assert sections == [cfg.method] and cfg.section is getattr(cfg, cfg.method)  # exactly one method section


def test_presets_set_the_documented_paper_and_code_values():
    paper, code = load_train_config("paper-clip"), load_train_config("reference")
    assert (paper.data.candidates, paper.data.fps, paper.stg.selection.keep, paper.data.batch_size) == (80, 5.0, 16, 64)
    assert (code.data.candidates, code.data.fps, code.stg.selection.keep, code.data.anchor) == (16, 1.0, 8, "start")
    assert (code.stg.loss.form, code.stg.loss.local_group, code.stg.loss.group_reduce) == ("milnce", 16, "sum")
    assert (code.stg.head.eval_score, code.stg.head.eval_residual, code.stg.head.global_frames) == ("dot", "none", "all")
    assert (paper.stg.head.eval_score, paper.stg.head.global_frames, paper.stg.loss.form) == \
        ("cosine", "selected", "symmetric")
    # CVPR Sec. 3.3: cosine cross-attention logits; the released code: / sqrt(d) in training, none in eval mode
    assert paper.stg.head.train_score == "cosine" and code.stg.head.train_score == "scaled_dot"
    assert load_train_config("paper-s3d").stg.head.train_score == "cosine"
    assert code.optim.name == "adamw" and code.optim.weight_decay == 0.01 and paper.optim.name == "adam"
    comma = load_train_config("comma")
    assert comma.method == "comma" and comma.comma.loss.global_weight == 0 and comma.data.encoder == "s3d"


def test_the_coot_and_wsra_presets_set_the_papers_values():
    coot = load_train_config("coot")
    assert (coot.method, coot.coot.head.dim, coot.coot.head.heads, coot.data.batch_size) == ("coot", 384, 8, 64)
    assert (coot.optim.name, coot.optim.lr, coot.optim.betas, coot.optim.eps) == ("radam", 9e-4, (0.56, 0.98), 1.5e-9)
    c = coot.coot.loss
    assert c.cycle_weight == 0.001 and {c.clip_margin, c.video_margin, c.global_margin, c.cluster_clip_margin,
                                        c.cluster_video_margin} == {0.2}
    assert (coot.coot.head.af_heads, coot.coot.head.af_mult, coot.coot.head.dropout) == (2, 2, 0.05)
    wsra = load_train_config("wsra")
    w = wsra.wsra.loss
    assert (wsra.method, wsra.data.batch_size, wsra.optim.lr, wsra.optim.schedule) == ("wsra", 42, 1e-4, "constant")
    assert (w.top_k, w.last_k, w.crov_threshold, w.instance_weight, w.vas_weight) == (3, 2, 0.9, 1.0, 0.1)
    for tiny in ("coot-tiny", "wsra-tiny", "tiny", "comma-tiny"):
        assert load_train_config(tiny).section.head.variant == "tiny"


@pytest.mark.parametrize("preset", ["coot", "wsra", "coot-tiny", "wsra-tiny"])
def test_method_sections_take_their_own_keys_only(preset, tmp_path):
    method = load_train_config(preset).method
    override = "coot.head.pool=max" if method == "coot" else "wsra.loss.rank_by=matching"
    cfg = load_train_config(preset, [override])
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_train_yaml(tmp_path / "config.yaml") == cfg
    with pytest.raises(ConfigError, match=rf"unknown key '{method}\.loss\.cycle'; valid keys in {method}\.loss"):
        load_train_config(preset, [f"{method}.loss.cycle=1"])
    with pytest.raises(ConfigError, match="unknown key 'stg'"):  # another method's section
        load_train_config(preset, ["stg.head.dim=8"])


def test_train_config_cross_checks():
    with pytest.raises(ConfigError, match=r"^comma: loss.word_weight > 0 needs head.word_values=true"):
        load_train_config("comma", ["comma.loss.word_weight=1"])
    with pytest.raises(ConfigError, match=r"^stg\.head\.heads must be >= 1, got 0$"):  # keys named in full
        load_train_config("paper-clip", ["stg.head.heads=0"])
    with pytest.raises(ConfigError, match=r"^data\.fps must be null for s3d"):
        load_train_config("paper-s3d", ["data.fps=5"])
    with pytest.raises(ConfigError, match=r"^stg\.selection\.keep=90 > data\.candidates=80"):
        load_train_config("paper-clip", ["stg.selection.keep=90"])
    with pytest.raises(ConfigError, match="not a multiple of stg.loss.local_group=24"):
        load_train_config("paper-clip", ["stg.loss.local_group=24"])
    with pytest.raises(ConfigError, match="layers must be"):
        load_train_config("paper-clip", ["stg.head.layers=[cross,mlp]"])
    with pytest.raises(ConfigError, match="^the coot method trains on whole videos"):
        load_train_config("coot", ["data.sampling=per_narration"])
    with pytest.raises(ConfigError, match="unknown method 'mlp'"):
        load_train_config("tiny", ["method=mlp"])
    assert "optim.lr" in valid_keys(config_class("stg")) and "stg.selection.keep" in valid_keys(config_class("stg"))


def test_a_config_of_groundcache_0_1_loads_in_the_method_layout():
    old = {"seed": 3, "data": {"batch_size": 4, "sampling": "per_video", "max_clips": 4, "video_frames": 16},
           "selection": {"method": "none"}, "head": {"name": "coot", "variant": "tiny", "dim": 32, "heads": 2,
                                                     "layers": ["cross"], "coot": {"pool": "max"}},
           "loss": {"form": "milnce", "coot": {"cycle_weight": 1.0}}, "optim": {"lr": 0.01}}
    cfg = config_from_dict(old)
    assert (cfg.method, cfg.seed, cfg.data.batch_size, cfg.optim.lr) == ("coot", 3, 4, 0.01)
    assert (cfg.coot.head.variant, cfg.coot.head.dim, cfg.coot.head.heads, cfg.coot.head.pool) == ("tiny", 32, 2, "max")
    assert (cfg.coot.loss.cycle_weight, cfg.coot.data.max_clips, cfg.coot.data.video_frames) == (1.0, 4, 16)
    stg = config_from_dict({"head": {"name": "stg", "dim": 16}, "loss": {"local_group": 0}, "selection": {"keep": 4}})
    assert (stg.method, stg.stg.head.dim, stg.stg.selection.keep) == ("stg", 16, 4)
