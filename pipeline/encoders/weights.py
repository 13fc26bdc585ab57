"""Content hashes that identify encoder weights in the store attrs.

Real weights are identified by the sha256 of the file the user downloaded (so it can be checked with
`sha256sum`); randomly initialised weights have no file, so they are identified by a hash over the
state_dict itself (names, dtypes, shapes and raw bytes, in key order).
"""
from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import torch

_CHUNK = 1 << 20


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks so large checkpoints need no extra memory."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def state_dict_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """Hex sha256 over every tensor of a state_dict in key order.

    Each entry contributes its name, dtype and shape before its bytes, so two models whose raw bytes
    happen to concatenate to the same stream (e.g. a reshaped tensor) still hash differently.
    """
    digest = hashlib.sha256()
    for name, tensor in state_dict.items():
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        header = f"{name}|{flat.dtype}|{tuple(tensor.shape)}\n"
        digest.update(header.encode("utf-8"))
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def combined_sha256(named_digests: Mapping[str, str]) -> str:
    """One hex digest for weights split over several files (sharded checkpoints), order-independent."""
    digest = hashlib.sha256()
    for name in sorted(named_digests):
        digest.update(f"{name}:{named_digests[name]}\n".encode())
    return digest.hexdigest()
