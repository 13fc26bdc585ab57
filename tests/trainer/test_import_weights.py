"""`python -m trainer.import_weights`: checkpoints built with the authors' module and parameter names (GYT
s3dg_clip.py S3D_clip, CoMMA s3dg.py S3D) and saved as their main_distributed.py saves them (DataParallel
`module.` prefix, epoch/optimizer/scheduler) become run directories whose heads hold exactly the source tensors
and compute what the source tensors compute; bad checkpoints end in one error line (exit 2); eval.infer scores
an imported run end to end.

The import only reads a store's encoder spec, so the full-width tests use stores that hold a spec and no
videos (CLIP 512 for stg-release, S3D 1024 / 2048 for comma-release); the end-to-end test uses the generated
store of width 16 with checkpoints of in-width 16 (the joint width stays the authors' 512)."""
from __future__ import annotations

import hashlib
import json
import math

import pytest
import torch
from torch import nn

from eval import infer
from pipeline.encoders.s3d_model import S3DConfig, S3DG
from pipeline.store import init_store
from tests.eval.helpers import run_score
from tests.eval.inference_helpers import write_benchmarks
from trainer.attention import Tokens
from trainer.checkpoint import load_trained
from trainer.import_weights import main
from trainer.synthetic import SyntheticSpec, encoder_specs, write_synthetic_store

D = 512  # num_classes of both codes: the joint width and nn.MultiheadAttention(512, 1)
CLIP_DIMS = {"global": 512, "grid": 512, "sentence": 512, "words": 512}
S3D_DIMS = {"global": 1024, "grid": 1024, "sentence": 2048, "words": 2048}

# What each of the authors' parameters must become, written out here (not read from the module under test).
LOCAL = {
    "vis_proj_mat.0.weight": "vis_proj.weight", "vis_proj_mat.0.bias": "vis_proj.bias",
    "lang_proj_mat.0.weight": "lang_proj.weight", "lang_proj_mat.0.bias": "lang_proj.bias",
    "sa_layer.vis_attn_mat.in_proj_weight": "stack.selfs.0.video.in_proj_weight",
    "sa_layer.vis_attn_mat.in_proj_bias": "stack.selfs.0.video.in_proj_bias",
    "sa_layer.vis_attn_mat.out_proj.weight": "stack.selfs.0.video.out_proj.weight",
    "sa_layer.vis_attn_mat.out_proj.bias": "stack.selfs.0.video.out_proj.bias",
    "sa_layer.text_attn_mat.in_proj_weight": "stack.selfs.0.text.in_proj_weight",
    "sa_layer.text_attn_mat.in_proj_bias": "stack.selfs.0.text.in_proj_bias",
    "sa_layer.text_attn_mat.out_proj.weight": "stack.selfs.0.text.out_proj.weight",
    "sa_layer.text_attn_mat.out_proj.bias": "stack.selfs.0.text.out_proj.bias",
}
GLOBAL = {"vis_proj_mat_g.0.weight": "vis_proj_g.weight", "vis_proj_mat_g.0.bias": "vis_proj_g.bias",
          "lang_proj_mat_g.0.weight": "lang_proj_g.weight", "lang_proj_mat_g.0.bias": "lang_proj_g.bias"}


# ---- the authors' modules (names and shapes as in their code; values random) --------------------------------
class SAEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.vis_attn_mat = nn.MultiheadAttention(D, 1)
        self.text_attn_mat = nn.MultiheadAttention(D, 1)


class AuthorsHeads(nn.Module):
    """The trainable modules of S3D_clip (global=True) or CoMMA's S3D; ca_layer1/2 hold no parameters."""

    def __init__(self, vis: int, text: int, global_dims: tuple[int, int] | None):
        super().__init__()
        self.vis_proj_mat = nn.Sequential(nn.Linear(vis, D))
        self.lang_proj_mat = nn.Sequential(nn.Linear(text, D))
        self.sa_layer = SAEncoder()
        if global_dims:
            self.vis_proj_mat_g = nn.Sequential(nn.Linear(global_dims[0], D))
            self.lang_proj_mat_g = nn.Sequential(nn.Linear(global_dims[1], D))
        with torch.no_grad():  # every value distinct (the MHA biases start at zero)
            for p in self.parameters():
                p.normal_(0, 0.05)


class CommaS3D(AuthorsHeads):
    """CoMMA's S3D: the S3D-G backbone and word2vec text module (our pipeline model has the same names; CoMMA
    has no MIL-NCE `fc` / `text_module.fc2`) before the heads. Backbone widths / vocabulary are cut down: the
    import skips those keys without reading their shapes."""

    def __init__(self, vis: int, text: int):
        backbone = S3DG(S3DConfig(width_divisor=8, num_embeddings=50))
        super().__init__(vis, text, None)
        for name, child in backbone.named_children():
            if name != "fc":
                self.add_module(name, child)
        del self.text_module.fc2


def save_authors(path, model: nn.Module, extra: dict | None = None, drop: tuple[str, ...] = (),
                 epoch: int = 150) -> dict[str, torch.Tensor]:
    """torch.save as main_distributed.py: {"epoch", "state_dict" (DataParallel: module.*), "optimizer",
    "scheduler"}; `extra` keys are added and `drop` keys removed (without the prefix). Returns the state_dict."""
    wrapped = nn.DataParallel(model)
    optimizer = torch.optim.AdamW(wrapped.parameters(), lr=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    state = wrapped.state_dict()
    for key in drop:
        del state[f"module.{key}"]
    state.update({f"module.{k}": v for k, v in (extra or {}).items()})
    torch.save({"epoch": epoch, "state_dict": state, "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict()}, path)
    return {k[len("module."):]: v for k, v in state.items()}


# ---- stores --------------------------------------------------------------------------------------------------
def spec_store(root, clip_dims=CLIP_DIMS, s3d_dims=S3D_DIMS) -> str:
    """A store holding the encoder specs the `reference` and `comma` presets expect, and no videos."""
    specs = encoder_specs(SyntheticSpec(encoders=("clip", "s3d"), s3d_fps=5.0))
    specs["clip"].update(model="clip-vit-b-32", dims=dict(clip_dims))
    specs["s3d"].update(model="s3dg-howto100m", dims=dict(s3d_dims))
    init_store(str(root), specs)
    return str(root)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return spec_store(tmp_path_factory.mktemp("import-store") / "store.zarr")


def run_import(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err: str, *names: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("trainer.import_weights: error: "), err
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


# ---- parameters and forward -----------------------------------------------------------------------------------
def attention(x: torch.Tensor, keep: torch.Tensor, w_in, b_in, w_out, b_out) -> torch.Tensor:
    """One-head scaled dot-product self-attention of x [N, d], keys restricted to `keep` [N]."""
    q, k, v = (x @ w_in.T + b_in).chunk(3, dim=-1)
    logits = (q @ k.T / math.sqrt(x.shape[-1])).masked_fill(~keep[None], float("-inf"))
    return torch.softmax(logits, -1) @ v @ w_out.T + b_out


def check_head(head, source: dict[str, torch.Tensor], expected: dict[str, str]) -> None:
    ours = head.state_dict()
    assert set(ours) == set(expected.values())
    for theirs, name in expected.items():
        assert torch.equal(ours[name], source[theirs]), name


def check_forward(head, source: dict[str, torch.Tensor], dims: dict[str, int]) -> None:
    """Projections and both self-attentions of the head against formulas over the source tensors."""
    g = torch.Generator().manual_seed(1)
    grid = torch.randn(2, 3, 7, 7, dims["grid"], generator=g)
    words = torch.randn(2, 6, dims["words"], generator=g)
    video, _ = head.encode_video(grid, torch.ones(2, 3, dtype=torch.bool))
    ref = grid.reshape(2, 147, -1) @ source["vis_proj_mat.0.weight"].T + source["vis_proj_mat.0.bias"]
    torch.testing.assert_close(video, ref, rtol=1e-5, atol=1e-5)
    text = head.encode_text(words)
    torch.testing.assert_close(text, words @ source["lang_proj_mat.0.weight"].T + source["lang_proj_mat.0.bias"],
                               rtol=1e-5, atol=1e-5)
    word_mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    region_mask = torch.ones(2, 147, dtype=torch.bool)
    x = Tokens(video[:, None], text[:, None], region_mask[:, None], word_mask[:, None], paired=True)
    with torch.no_grad():
        y = head.stack.selfs[0](x)
    for i in range(2):
        v = video[i] + attention(video[i], region_mask[i], *(source[f"sa_layer.vis_attn_mat.{p}"] for p in
                                 ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")))
        t = text[i] + attention(text[i], word_mask[i], *(source[f"sa_layer.text_attn_mat.{p}"] for p in
                                ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias")))
        torch.testing.assert_close(y.video[i, 0], v, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(y.text[i, 0], t, rtol=1e-4, atol=1e-5)
    if "vis_proj_mat_g.0.weight" in source:
        frames = torch.randn(5, dims["global"], generator=g)
        sentence = torch.randn(2, dims["sentence"], generator=g)
        torch.testing.assert_close(head.video_embedding(frames), frames @ source["vis_proj_mat_g.0.weight"].T
                                   + source["vis_proj_mat_g.0.bias"], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(head.global_text(sentence), sentence @ source["lang_proj_mat_g.0.weight"].T
                                   + source["lang_proj_mat_g.0.bias"], rtol=1e-5, atol=1e-5)


def test_stg_release_becomes_a_reference_stg_head(store, tmp_path, capsys):
    ckpt, run = tmp_path / "GroundingWeights.pth.tar", tmp_path / "run"
    source = save_authors(ckpt, AuthorsHeads(512, 512, (512, 512)))
    code, out, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", run)
    assert code == 0, err
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["method"] == "stg" and summary["preset"] == "reference" and summary["mapped"] == 16
    trained = load_trained(run)
    assert trained.step == 0 and trained.config.method == "stg"
    assert trained.head.stack.modes["eval"] == ("dot", "none")  # the released code's eval-mode attention
    check_head(trained.head, source, {**LOCAL, **GLOBAL})
    check_forward(trained.head, source, CLIP_DIMS)
    provenance = json.loads((run / "imported.json").read_text())
    assert provenance["sha256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest() == summary["sha256"]
    assert provenance["mapping"] == {**LOCAL, **GLOBAL} and provenance["skipped"] == {}
    assert provenance["source_epoch"] == 150
    assert json.loads((run / "run.json").read_text())["imported"]["sha256"] == summary["sha256"]


def test_comma_release_skips_the_s3d_backbone(store, tmp_path, capsys):
    ckpt, run = tmp_path / "comma.pth.tar", tmp_path / "run"
    source = save_authors(ckpt, CommaS3D(1024, 2048))
    backbone = [k for k in source if k not in LOCAL]
    assert any(k.startswith("mixed_5c.") for k in backbone) and "text_module.word_embd.weight" in backbone
    code, out, err = run_import(capsys, "--from", "comma-release", ckpt, "--store", store, "--out", run)
    assert code == 0, err
    trained = load_trained(run)
    assert trained.config.method == "comma" and trained.config.data.encoder == "s3d"
    check_head(trained.head, source, LOCAL)
    check_forward(trained.head, source, S3D_DIMS)
    by_module: dict[str, int] = {}
    for key in backbone:
        by_module[key.split(".")[0] + "."] = by_module.get(key.split(".")[0] + ".", 0) + 1
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["skipped"] == by_module and summary["mapped"] == len(LOCAL)
    assert "mixed_5c. (" in out and "text_module. (3)" in out  # word_embd, fc1 weight and bias
    skipped = json.loads((run / "imported.json").read_text())["skipped"]
    assert sorted(k for keys in skipped.values() for k in keys) == sorted(backbone)


def test_older_projection_names_the_eval_scripts_rename_are_read(store, tmp_path, capsys):
    model = AuthorsHeads(512, 512, (512, 512))
    renamed = {k.replace("lang_proj_mat.", "lang_key_mat.").replace("vis_proj_mat.", "key_mat."): v
               for k, v in model.state_dict().items()}
    ckpt = tmp_path / "old.pth.tar"
    torch.save({"epoch": 3, "state_dict": {f"module.{k}": v for k, v in renamed.items()}}, ckpt)
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 0, err
    check_head(load_trained(tmp_path / "run").head, model.state_dict(), {**LOCAL, **GLOBAL})


# ---- bad checkpoints -----------------------------------------------------------------------------------------
def test_unmapped_keys_are_listed(store, tmp_path, capsys):
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, AuthorsHeads(512, 512, (512, 512)),
                 extra={"vis_proj_mat_g.cg.fc.weight": torch.zeros(512, 512), "fc.weight": torch.zeros(512, 1024)})
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, str(ckpt), "2 key(s)", "vis_proj_mat_g.cg.fc.weight", "fc.weight")
    assert not (tmp_path / "run").exists()


def test_s3d_backbone_keys_are_no_backbone_of_the_clip_model(store, tmp_path, capsys):
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, AuthorsHeads(512, 512, (512, 512)), extra={"mixed_5c.conv_b0.conv1.weight": torch.zeros(1)})
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, "mixed_5c.conv_b0.conv1.weight")


def test_missing_head_keys_are_listed(store, tmp_path, capsys):
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, AuthorsHeads(512, 512, (512, 512)),
                 drop=("sa_layer.vis_attn_mat.in_proj_weight", "lang_proj_mat_g.0.bias"))
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, str(ckpt), "sa_layer.vis_attn_mat.in_proj_weight (for stack.selfs.0.video.in_proj_weight)",
              "lang_proj_mat_g.0.bias (for lang_proj_g.bias)")
    assert not (tmp_path / "run").exists()


def test_comma_release_without_its_self_attention_is_refused(store, tmp_path, capsys):
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, CommaS3D(1024, 2048), drop=tuple(k for k in LOCAL if k.startswith("sa_layer.text")))
    code, _, err = run_import(capsys, "--from", "comma-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, "4 head parameter(s)", *(k for k in LOCAL if k.startswith("sa_layer.text")))


def test_shape_mismatch_names_the_key_and_both_shapes(store, tmp_path, capsys):
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, AuthorsHeads(1024, 512, (512, 512)))  # an S3D-width video projection, CLIP store
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, "vis_proj_mat.0.weight: checkpoint [512, 1024] vs head vis_proj.weight [512, 512]")
    assert "lang_proj_mat" not in err


def test_two_names_for_one_parameter_are_refused(store, tmp_path, capsys):
    model = AuthorsHeads(512, 512, (512, 512))
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, model, extra={"key_mat.0.bias": torch.zeros(512)})
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, "vis_proj_mat.0.bias and key_mat.0.bias -> vis_proj.bias")


@pytest.mark.parametrize("content", [b"not a checkpoint", "pickle"])
def test_unreadable_files_are_one_error(store, tmp_path, capsys, content):
    ckpt = tmp_path / "c.pth.tar"
    if content == "pickle":  # an object weights_only=True refuses (the file still names the problem)
        torch.save({"state_dict": {}, "args": nn.Linear(1, 1)}, ckpt)
    else:
        ckpt.write_bytes(content)
    code, _, err = run_import(capsys, "--from", "stg-release", ckpt, "--store", store, "--out", tmp_path / "run")
    assert code == 2
    one_error(err, str(ckpt), "weights_only=True")


def test_other_bad_inputs(store, tmp_path, capsys):
    ckpt = tmp_path / "c.pth.tar"
    save_authors(ckpt, AuthorsHeads(512, 512, (512, 512)))
    base = ["--from", "stg-release", ckpt, "--store", store]
    code, _, err = run_import(capsys, *base, "--out", tmp_path / "a", "--preset", "comma")
    assert code == 2
    one_error(err, "'stg' head", "'comma'")
    code, _, err = run_import(capsys, *base, "--out", tmp_path / "a", "stg.head.heads=2")
    assert code == 2
    one_error(err, "stg.head.heads=2")
    code, _, err = run_import(capsys, "--from", "stg-release", tmp_path / "absent.pth.tar", "--store", store,
                              "--out", tmp_path / "a")
    assert code == 2
    one_error(err, "absent.pth.tar: no such checkpoint file")
    other = spec_store(tmp_path / "narrow.zarr", clip_dims={k: 16 for k in CLIP_DIMS})
    code, _, err = run_import(capsys, *base, "--out", tmp_path / "a", "--store", other)
    assert code == 2
    one_error(err, "does not fit preset 'reference'", "clip.dims")
    assert run_import(capsys, *base, "--out", tmp_path / "a")[0] == 0
    code, _, err = run_import(capsys, *base, "--out", tmp_path / "a")
    assert code == 2
    one_error(err, "already holds a run with checkpoints")


# ---- end to end ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """The generated CLIP + S3D store (width 16, 6 videos x 4 narrated events) and its benchmark files."""
    tmp = tmp_path_factory.mktemp("import-e2e")
    root = str(tmp / "store.zarr")
    truth = write_synthetic_store(root, SyntheticSpec(videos=6, dim=16, block=4, encoders=("clip", "s3d")))
    write_benchmarks(tmp / "bench", truth)
    return root, tmp / "bench"


@pytest.mark.parametrize("name, method, model", [("stg-release", "stg", lambda: AuthorsHeads(16, 16, (16, 16))),
                                                  ("comma-release", "comma", lambda: CommaS3D(16, 16))])
def test_eval_infer_scores_an_imported_run(world, tmp_path, capsys, name, method, model):
    store, bench = world
    ckpt, run, predictions = tmp_path / "w.pth.tar", tmp_path / "run", tmp_path / "predictions.h5"
    save_authors(ckpt, model())
    code, _, err = run_import(capsys, "--from", name, ckpt, "--store", store, "--out", run, "data.expect={}")
    assert code == 0, err
    assert infer.main(["mining", "--run", str(run), "--store", store, "--benchmark-dir", str(bench), "--out",
                       str(predictions), "--no-progress", "fps=5", "text.source=store"]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["missing"] == {} and summary["method"] == f"{method}@step0"
    metrics = run_score(capsys, "mining", "--predictions", predictions, "--benchmark-dir", bench)
    assert metrics["videos"] == 6 and metrics["segments"] == 24
