"""S3D-G video network + word2vec text head, laid out so `s3d_howto100m.pth` (MIL-NCE) loads unchanged.

Module attribute names and parameter shapes follow the public MIL-NCE PyTorch release
(antoine77340/S3D_HowTo100M, `s3dg.py`), because the published state_dict is keyed by them:
`conv1` (space-to-depth stem), `conv_2b`, `conv_2c`, `gating`, `mixed_3b` ... `mixed_5c` (each with
`conv_b0`, `conv_b1_a`, `conv_b1_b`, `conv_b2_a`, `conv_b2_b`, `conv_b3_b`, `gating_b0..3`), the 1024->512
video head `fc`, and `text_module` (`word_embd`, `fc1`, `fc2`). Every conv unit is Conv3d (no bias) +
BatchNorm3d + ReLU as `conv1`/`bn1`, and separable units add a temporal `conv2`/`bn2`.

`width_divisor` scales every channel count (not the 24 stem input channels, which come from
space-to-depth of RGB) so a tiny model has the same keys with smaller shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

# Branch widths (b0 1x1, b1 1x1 -> 3x3x3, b2 1x1 -> 3x3x3, b3 pool -> 1x1) of each inception block.
INCEPTION_WIDTHS: dict[str, tuple[int, int, int, int, int, int]] = {
    "mixed_3b": (64, 96, 128, 16, 32, 32),
    "mixed_3c": (128, 128, 192, 32, 96, 64),
    "mixed_4b": (192, 96, 208, 16, 48, 64),
    "mixed_4c": (160, 112, 224, 24, 64, 64),
    "mixed_4d": (128, 128, 256, 24, 64, 64),
    "mixed_4e": (112, 144, 288, 32, 64, 64),
    "mixed_4f": (256, 160, 320, 32, 128, 128),
    "mixed_5b": (256, 160, 320, 32, 128, 128),
    "mixed_5c": (384, 192, 384, 48, 128, 128),
}
# A temporal/spatial pool (kernel, stride) before these blocks; the stride-2 ones set the T/8 x 7 x 7 grid.
POOL_BEFORE = {
    "mixed_4b": ("maxpool_4a", (3, 3, 3), (2, 2, 2)),
    "mixed_5b": ("maxpool_5a", (2, 2, 2), (2, 2, 2)),
}


@dataclass(frozen=True)
class S3DConfig:
    width_divisor: int = 1
    num_embeddings: int = 66250  # rows of word_embd: dictionary size + 1 (row 0 = padding)
    word_dim: int = 300
    text_hidden: int = 2048
    embed_dim: int = 512  # the MIL-NCE joint space of `fc` and `text_module.fc2`

    def width(self, channels: int) -> int:
        if channels % self.width_divisor:
            raise ValueError(f"width_divisor {self.width_divisor} does not divide {channels} channels")
        return channels // self.width_divisor


class ConvUnit(nn.Module):
    """Conv3d + BN + ReLU; separable: a 1xkxk spatial conv then a kx1x1 temporal conv, each with BN+ReLU."""

    def __init__(self, c_in: int, c_out: int, kernel: tuple[int, int, int],
                 padding: tuple[int, int, int] = (0, 0, 0), separable: bool = False):
        super().__init__()
        self.separable = separable
        kt, kh, kw = kernel
        pt, ph, pw = padding
        spatial = (1, kh, kw) if separable else kernel
        self.conv1 = nn.Conv3d(c_in, c_out, spatial, padding=(0, ph, pw) if separable else padding, bias=False)
        self.bn1 = nn.BatchNorm3d(c_out)
        if separable:
            self.conv2 = nn.Conv3d(c_out, c_out, (kt, 1, 1), padding=(pt, 0, 0), bias=False)
            self.bn2 = nn.BatchNorm3d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        if self.separable:
            x = F.relu(self.bn2(self.conv2(x)))
        return x


class SelfGating(nn.Module):
    """S3D-G feature gating: channels rescaled by sigmoid(fc(spatio-temporal mean))."""

    def __init__(self, channels: int):
        super().__init__()
        self.fc = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4))))
        return x * weights[:, :, None, None, None]


class InceptionBlock(nn.Module):
    def __init__(self, c_in: int, widths: tuple[int, int, int, int, int, int]):
        super().__init__()
        b0, b1a, b1b, b2a, b2b, b3b = widths
        self.conv_b0 = ConvUnit(c_in, b0, (1, 1, 1))
        self.conv_b1_a = ConvUnit(c_in, b1a, (1, 1, 1))
        self.conv_b1_b = ConvUnit(b1a, b1b, (3, 3, 3), padding=(1, 1, 1), separable=True)
        self.conv_b2_a = ConvUnit(c_in, b2a, (1, 1, 1))
        self.conv_b2_b = ConvUnit(b2a, b2b, (3, 3, 3), padding=(1, 1, 1), separable=True)
        self.maxpool_b3 = nn.MaxPool3d(3, stride=1, padding=1)
        self.conv_b3_b = ConvUnit(c_in, b3b, (1, 1, 1))
        self.gating_b0, self.gating_b1 = SelfGating(b0), SelfGating(b1b)
        self.gating_b2, self.gating_b3 = SelfGating(b2b), SelfGating(b3b)
        self.output_dim = b0 + b1b + b2b + b3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b0 = self.gating_b0(self.conv_b0(x))
        b1 = self.gating_b1(self.conv_b1_b(self.conv_b1_a(x)))
        b2 = self.gating_b2(self.conv_b2_b(self.conv_b2_a(x)))
        b3 = self.gating_b3(self.conv_b3_b(self.maxpool_b3(x)))
        return torch.cat((b0, b1, b2, b3), dim=1)


class TFSameMaxPool3d(nn.Module):
    """Max pool after zero padding of max(k - s, 0) split low/high, with ceil_mode: the release's
    emulation of TensorFlow 'SAME' pooling (inputs are post-ReLU, so zero padding never wins a max)."""

    def __init__(self, kernel: tuple[int, int, int], stride: tuple[int, int, int]):
        super().__init__()
        totals = [max(k - s, 0) for k, s in zip(kernel, stride, strict=True)]
        t, h, w = [(total // 2, total - total // 2) for total in totals]
        self.padding = (*w, *h, *t)  # F.pad order: last dim first
        self.pool = nn.MaxPool3d(kernel, stride, ceil_mode=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(F.pad(x, self.padding))


class SentenceEmbedding(nn.Module):
    """word2vec table -> fc1 + ReLU (per-word 2048-d), and MIL-NCE's fc2 into the joint space."""

    def __init__(self, config: S3DConfig):
        super().__init__()
        self.word_embd = nn.Embedding(config.num_embeddings, config.word_dim)
        self.fc1 = nn.Linear(config.word_dim, config.width(config.text_hidden))
        self.fc2 = nn.Linear(config.width(config.text_hidden), config.width(config.embed_dim))

    def word_tokens(self, ids: torch.Tensor) -> torch.Tensor:
        return F.relu(self.fc1(self.word_embd(ids)))


class S3DG(nn.Module):
    """S3D-G with space-to-depth stem (as trained for MIL-NCE) and its text module."""

    def __init__(self, config: S3DConfig = S3DConfig()):
        super().__init__()
        self.config = config
        w = config.width
        self.conv1 = ConvUnit(24, w(64), (2, 4, 4), padding=(1, 2, 2))
        self.conv_2b = ConvUnit(w(64), w(64), (1, 1, 1))
        self.conv_2c = ConvUnit(w(64), w(192), (3, 3, 3), padding=(1, 1, 1), separable=True)
        self.gating = SelfGating(w(192))
        self.maxpool_2a = TFSameMaxPool3d((1, 3, 3), (1, 2, 2))
        self.maxpool_3a = TFSameMaxPool3d((1, 3, 3), (1, 2, 2))
        channels = w(192)
        for name, widths in INCEPTION_WIDTHS.items():
            if name in POOL_BEFORE:
                pool_name, kernel, stride = POOL_BEFORE[name]
                self.add_module(pool_name, TFSameMaxPool3d(kernel, stride))
            block = InceptionBlock(channels, tuple(w(c) for c in widths))  # type: ignore[arg-type]
            self.add_module(name, block)
            channels = block.output_dim
        self.output_dim = channels
        self.fc = nn.Linear(channels, w(config.embed_dim))
        self.text_module = SentenceEmbedding(config)

    @staticmethod
    def space_to_depth(video: torch.Tensor) -> torch.Tensor:
        """[B,C,T,H,W] -> [B,8C,T/2,H/2,W/2]; channel index = ((dt*2 + dh)*2 + dw)*C + c, as trained."""
        b, c, t, h, w = video.shape
        x = video.reshape(b, c, t // 2, 2, h // 2, 2, w // 2, 2)
        return x.permute(0, 3, 5, 7, 1, 2, 4, 6).reshape(b, 8 * c, t // 2, h // 2, w // 2)

    def mixed_5c_features(self, video: torch.Tensor) -> torch.Tensor:
        """Video [B,3,T,H,W] in [0,1] (T, H, W even) -> mixed_5c [B,C,T/8,H/32,W/32]."""
        x = self.conv1(self.space_to_depth(video))
        x = x[:, :, 1:, 1:, 1:]  # the stem pads 1 more than 'SAME' would on the low side; drop it
        x = self.conv_2c(self.conv_2b(self.maxpool_2a(x)))
        x = self.maxpool_3a(self.gating(x))
        x = self.mixed_3c(self.mixed_3b(x))
        x = self.maxpool_4a(x)
        for name in ("mixed_4b", "mixed_4c", "mixed_4d", "mixed_4e", "mixed_4f"):
            x = getattr(self, name)(x)
        x = self.maxpool_5a(x)
        return self.mixed_5c(self.mixed_5b(x))
