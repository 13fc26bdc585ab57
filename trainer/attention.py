"""The local attention stack (CoMMA / STG local branch): cross-attention layers (without parameters, as in the
released code, or with CoMMA's learned key/query/value projections, eq. 2) and self-attention layers, evaluated
for every (video, text) pair of a batch or for matched pairs.

Shapes: video tokens V [Bv, P, R, d] and text tokens T [Q, Bt, W, d]. Before the first cross layer the two
are unpaired (P = Q = 1: each video's tokens once, each text's tokens once); a cross layer makes them paired
([Bv, Bt, ...], the video attended by each text and vice versa). Matched pairs (evaluation) are paired with
Bt = 1. Cross layers contract over d or over R/W with einsum, so the [Bv, Bt, W, R, d] tensor the reference
code builds with `.repeat` never exists: the largest tensors are the pair outputs [Bv, Bt, R, d] themselves.

Cross layer (`score` = scaled_dot | dot | cosine, `residual` on/off):
    S = V T^T (x 1/sqrt(d) for scaled_dot)                         [.., R, W]
    V' = softmax_W(S, padding words masked) T  (+ V)                region tokens become mixtures of words
    T' = softmax_R(S, padding regions masked)^T V  (+ T)            words become mixtures of regions
With projections (`LocalStack(cross_projections=True)`, CoMMA eq. 2: Attn(W_K Y, W_Q Y, W_V Y, M_CA) with one
W_K, W_Q, W_V per cross layer applied to the stacked tokens Y = [V, T] of both modalities):
    S_v = (V W_Q)(T W_K)^T, S_t = (V W_K)(T W_Q)^T (same score scaling)   regions query words; words query regions
    V' = softmax_W(S_v) (T W_V)  (+ V),  T' = softmax_R(S_t)^T (V W_V)  (+ T)
Without projections S_v = S_t = S and the layer is exactly the one above (no parameters).
Self layer: V' = V + MHA_v(V), T' = T + MHA_t(T, key padding mask) (one MHA per modality).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

NEG = -1e9


def masked_softmax(logits: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax over `dim` with masked entries exactly 0; a slice with nothing valid gives all zeros."""
    probs = torch.softmax(logits.masked_fill(~mask, NEG), dim=dim)
    return probs * mask


@dataclass
class Tokens:
    """The stack's state: tokens, their masks (broadcastable to the token shapes minus d) and pairing."""
    video: torch.Tensor        # [Bv, P, R, d]
    text: torch.Tensor         # [Q, Bt, W, d]
    video_mask: torch.Tensor   # [Bv, 1, R]
    text_mask: torch.Tensor    # [Q, Bt, W]
    paired: bool
    record: list[dict] | None = field(default=None)  # attention maps per layer (rollout) when not None


def cross_scores(v: torch.Tensor, t: torch.Tensor, paired: bool, score: str) -> torch.Tensor:
    """S [Bv, Bt, R, W] for unpaired ([Bv,1,R,d], [1,Bt,W,d]) or paired ([Bv,Bt,R,d] x2) tokens."""
    d = v.shape[-1]
    if score == "cosine":
        v, t = nn.functional.normalize(v, dim=-1), nn.functional.normalize(t, dim=-1)
    s = torch.einsum("vtrd,vtwd->vtrw", v, t) if paired else torch.einsum("vrd,twd->vtrw", v[:, 0], t[0])
    return s / math.sqrt(d) if score == "scaled_dot" else s


class CrossProjection(nn.Module):
    """CoMMA eq. 2's W_Q, W_K, W_V of one cross layer: d x d matrices (no bias: the equation has none) shared by
    both modalities (the equation applies them to the stacked tokens Y = [V, T]); xavier-uniform initialised
    like nn.MultiheadAttention's in_proj (our choice: the self layers' initialisation)."""

    def __init__(self, dim: int):
        super().__init__()
        self.query, self.key, self.value = (nn.Linear(dim, dim, bias=False) for _ in range(3))
        for layer in (self.query, self.key, self.value):
            nn.init.xavier_uniform_(layer.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.query(x), self.key(x), self.value(x)


def cross_layer(x: Tokens, score: str, residual: bool, proj: CrossProjection | None = None) -> Tokens:
    if proj is None:
        s_video = s_text = cross_scores(x.video, x.text, x.paired, score)
        video_values, text_values = x.video, x.text
    else:
        (qv, kv, video_values), (qt, kt, text_values) = proj(x.video), proj(x.text)
        s_video = cross_scores(qv, kt, x.paired, score)   # region queries, word keys [.., R, W]
        s_text = cross_scores(kv, qt, x.paired, score)    # word queries, region keys, laid out [.., R, W]
    to_words = masked_softmax(s_video, x.text_mask[:, :, None, :], dim=-1)    # region -> word
    to_regions = masked_softmax(s_text, x.video_mask[:, :, :, None], dim=-2)  # word -> region (over R)
    if x.paired:
        video = torch.einsum("vtrw,vtwd->vtrd", to_words, text_values)
        text = torch.einsum("vtrw,vtrd->vtwd", to_regions, video_values)
    else:
        video = torch.einsum("vtrw,twd->vtrd", to_words, text_values[0])
        text = torch.einsum("vtrw,vrd->vtwd", to_regions, video_values[:, 0])
    if residual:
        video, text = video + x.video, text + x.text
    if x.record is not None:
        x.record.append({"kind": "cross", "region_to_word": to_words, "word_to_region": to_regions.transpose(-1, -2)})
    return Tokens(video, text, x.video_mask, x.text_mask, True, x.record)


class SelfLayer(nn.Module):
    """Intra-modal attention (nn.MultiheadAttention per modality, residual, no norm/FFN as in the code)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.video = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.text = nn.MultiheadAttention(dim, heads, batch_first=True)

    @staticmethod
    def _attend(mha: nn.MultiheadAttention, x: torch.Tensor, mask: torch.Tensor, need_weights: bool):
        lead, (n, d) = x.shape[:-2], x.shape[-2:]
        flat = x.reshape(-1, n, d)
        keep = mask.expand(*lead, n).reshape(-1, n)
        keep = keep | ~keep.any(-1, keepdim=True)  # nothing valid (empty text): attend all, output is unused
        out, weights = mha(flat, flat, flat, key_padding_mask=~keep, need_weights=need_weights)
        out = flat + out
        return out.reshape(*lead, n, d), (weights.reshape(*lead, n, n) if need_weights else None)

    def forward(self, x: Tokens) -> Tokens:
        video, _ = self._attend(self.video, x.video, x.video_mask, False)
        text, weights = self._attend(self.text, x.text, x.text_mask, x.record is not None)
        if x.record is not None:
            x.record.append({"kind": "self", "text": weights})
        return Tokens(video, text, x.video_mask, x.text_mask, x.paired, x.record)


def residual_flags(policy: str, n_cross: int) -> list[bool]:
    if policy == "none":
        return [False] * n_cross
    if policy == "all":
        return [True] * n_cross
    return [False] + [True] * (n_cross - 1)  # all_but_first: CA1 replaces tokens, later CAs add


class LocalStack(nn.Module):
    """A sequence of 'cross'/'self' layers; attention mode (logit score, residuals) per train/eval. With
    `cross_projections` each cross layer has its own CrossProjection (CoMMA eq. 2); without, the cross layers
    have no parameters (released code) and the module's parameters and initialisation are unchanged."""

    def __init__(self, layers: tuple[str, ...], dim: int, heads: int, modes: dict[str, tuple[str, str]],
                 cross_projections: bool = False):
        super().__init__()
        self.kinds = tuple(layers)
        self.selfs = nn.ModuleList(SelfLayer(dim, heads) for k in layers if k == "self")
        self.modes = modes  # {"train": (score, residual policy), "eval": (...)}
        # created after the self layers, so that their initial weights stay those of the default stack
        self.crosses = nn.ModuleList(CrossProjection(dim) for k in layers if k == "cross") \
            if cross_projections else None

    def forward(self, x: Tokens, mode: str) -> Tokens:
        score, policy = self.modes[mode]
        flags = iter(residual_flags(policy, self.kinds.count("cross")))
        selfs = iter(self.selfs)
        projections = None if self.crosses is None else iter(self.crosses)
        for kind in self.kinds:
            if kind == "cross":
                x = cross_layer(x, score, next(flags), None if projections is None else next(projections))
            else:
                x = next(selfs)(x)
        return x


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the token axis (-2) of the valid tokens; zero where none is valid."""
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(-2) / m.sum(-2).clamp(min=1)


def rollout_chain(record: list[dict], video_mask: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
    """Attention rollout [.., R] (reference s3dg_clip.py:910-942): the last cross layer's region->word map,
    through the text self-attention maps of the layers before it, back to regions through the previous cross
    layer's word->region map (padding-word rows zeroed), averaged over the valid query regions. With a
    single cross layer the map is its word->region attention averaged over the valid words."""
    crosses = [i for i, r in enumerate(record) if r["kind"] == "cross"]
    if not crosses:
        raise ValueError("rollout needs at least one cross-attention layer")
    words = text_mask.to(record[crosses[-1]]["region_to_word"].dtype)
    if len(crosses) == 1:
        w2r = record[crosses[0]]["word_to_region"] * words[..., None]
        return w2r.sum(-2) / words.sum(-1, keepdim=True).clamp(min=1)
    chain = record[crosses[-1]]["region_to_word"]                          # [.., R, W]
    for r in reversed(record[crosses[-2] + 1:crosses[-1]]):
        if r["kind"] == "self":
            chain = chain @ r["text"]                                        # [.., R, W]
    chain = chain @ (record[crosses[-2]]["word_to_region"] * words[..., None])  # [.., R, R]
    queries = video_mask.to(chain.dtype)
    return (chain * queries[..., None]).sum(-2) / queries.sum(-1, keepdim=True).clamp(min=1)
