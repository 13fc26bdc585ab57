"""Building blocks of the COOT head (Ging et al. NeurIPS 2020): post-norm transformer layers, Attention-FA
(eq. 4), the temporal transformer + pooling that turns a sequence into one vector, and the contextual
transformer (F_Local + F_Global, eq. 5).

Sequences are [N, L, D] with a boolean mask [N, L]. Valid tokens are first moved to the front (`compact`):
positions then count valid tokens only, so a padded batch computes exactly what each sequence alone would.
Every sequence given to a block must hold at least one valid token.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from trainer.methods.coot.config import CootHeadConfig


def compact(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Valid tokens first, in order: x [N, L, ...], mask [N, L] -> (x', mask') with mask' = [1..1 0..0]."""
    order = torch.sort((~mask).to(torch.int8), dim=1, stable=True).indices
    idx = order.reshape(*order.shape, *([1] * (x.dim() - 2))).expand(*order.shape, *x.shape[2:])
    return x.gather(1, idx), mask.gather(1, order)


def positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Sinusoidal positional encoding [L, dim] (sin on even channels, cos on odd ones)."""
    pos = torch.arange(length, device=device, dtype=torch.float64)[:, None]
    rate = torch.pow(10000.0, -torch.arange(0, dim, 2, device=device, dtype=torch.float64) / dim)
    pe = torch.zeros(length, dim, device=device, dtype=torch.float64)
    pe[:, 0::2] = torch.sin(pos * rate)
    pe[:, 1::2] = torch.cos(pos * rate[: dim // 2])
    return pe.to(dtype)


class Layer(nn.Module):
    """Post-norm transformer layer: x = LN(q + MHA(q, kv, kv)); x = LN(x + FF(x)); self-attention when kv is q."""

    def __init__(self, dim: int, heads: int, ff: int, dropout: float):
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(ff, dim))
        self.drop = nn.Dropout(dropout)

    def forward(self, q: torch.Tensor, kv: torch.Tensor | None, mask: torch.Tensor) -> torch.Tensor:
        kv = q if kv is None else kv
        out, _ = self.attn(q, kv, kv, key_padding_mask=~mask, need_weights=False)
        x = self.norm1(q + self.drop(out))
        return self.norm2(x + self.drop(self.ff(x)))


class AttentionFA(nn.Module):
    """Attention-aware feature aggregation (eq. 4): per-channel weights A = softmax_L(W2 GELU(W1 X + b1) + b2),
    x = sum_i a_i * x_i. With several heads, head h's hidden units give the weights of channel block h."""

    def __init__(self, dim: int, heads: int, hidden: int, dropout: float):
        super().__init__()
        if hidden % heads or dim % heads:
            raise ValueError(f"Attention-FA: width {dim} and hidden {hidden} must be divisible by {heads} heads")
        self.heads = heads
        self.w1 = nn.Linear(dim, hidden)
        self.w2 = nn.Parameter(torch.empty(heads, hidden // heads, dim // heads))
        self.b2 = nn.Parameter(torch.zeros(heads, dim // heads))
        nn.init.xavier_uniform_(self.w2)
        self.drop = nn.Dropout(dropout)

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """A [N, L, D]: a distribution over the valid tokens for every channel."""
        n, length, _ = x.shape
        q = self.drop(F.gelu(self.w1(x))).reshape(n, length, self.heads, -1)
        logits = (torch.einsum("nlhk,hkc->nlhc", q, self.w2) + self.b2).reshape(n, length, -1)
        return torch.softmax(logits.masked_fill(~mask[..., None], float("-inf")), dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x * self.drop(self.weights(x, mask))).sum(1)


def masked_pool(x: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """Mean or max over the valid tokens of x [N, L, D] -> [N, D]."""
    if how == "max":
        return x.masked_fill(~mask[..., None], float("-inf")).amax(1)
    m = mask.to(x.dtype)[..., None]
    return (x * m).sum(1) / m.sum(1).clamp(min=1)


class TemporalEncoder(nn.Module):
    """T-Transformer + pooling of one modality: LN -> Linear + GELU to d -> + positions -> layers -> pool.
    One instance per branch serves both its clips (sentences) and its whole video (paragraph)."""

    def __init__(self, d_in: int, dim: int, heads: int, cfg: CootHeadConfig):
        super().__init__()
        self.norm = nn.LayerNorm(d_in)
        self.fc = nn.Linear(d_in, dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.layers = nn.ModuleList(Layer(dim, heads, cfg.ff_mult * dim, cfg.dropout) for _ in range(cfg.layers))
        self.how = cfg.pool
        self.af = AttentionFA(dim, cfg.af_heads, cfg.af_mult * dim, cfg.dropout) if cfg.pool == "af" else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """x [N, L, D_in], mask [N, L] -> pooled [N, d]."""
        x, mask = compact(x, mask)
        x = F.gelu(self.fc(self.norm(x.to(self.fc.weight.dtype))))
        x = self.drop(x + positions(x.shape[1], x.shape[2], x.device, x.dtype))
        for layer in self.layers:
            x = layer(x, None, mask)
        return self.af(x, mask) if self.af is not None else masked_pool(x, mask, self.how)


class ContextualTransformer(nn.Module):
    """CoT (Fig. 2, eq. 5): F_Local (self-attention over the clip vectors + positions) gives h_i; F_Global
    attends from the global context g to the h_i (then a feed-forward layer): H_context. Output:
    concat(mean_i h_i, H_context) [N, 2d], or mean_i h_i [N, d] without the global cross-attention."""

    def __init__(self, dim: int, heads: int, cfg: CootHeadConfig):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.drop = nn.Dropout(cfg.dropout)
        self.local = nn.ModuleList(Layer(dim, heads, cfg.ff_mult * dim, cfg.dropout)
                                   for _ in range(cfg.context_layers))
        self.cross = Layer(dim, heads, cfg.ff_mult * dim, cfg.dropout) if cfg.context else None

    def forward(self, items: torch.Tensor, mask: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        h, mask = compact(items, mask)
        h = self.norm(h)
        h = self.drop(h + positions(h.shape[1], h.shape[2], h.device, h.dtype))
        for layer in self.local:
            h = layer(h, None, mask)
        pooled = masked_pool(h, mask, "mean")
        if self.cross is None:
            return pooled
        ctx = self.cross(context[:, None].to(h.dtype), h, mask)[:, 0]
        return torch.cat([pooled, ctx], dim=-1)


def init_truncated(module: nn.Module, std: float) -> None:
    """COOT appendix A.1: weights and biases from a normal of std `std` truncated at 2 std (LayerNorms keep
    theirs); std 0 keeps torch's defaults."""
    if std <= 0:
        return
    for sub in module.modules():
        if isinstance(sub, nn.LayerNorm):
            continue
        for name, p in sub.named_parameters(recurse=False):
            if "weight" in name or "bias" in name or name in ("w2", "b2"):
                nn.init.trunc_normal_(p, std=std, a=-2 * std, b=2 * std)
