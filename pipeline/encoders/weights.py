"""Content hashes that identify encoder weights in the store attrs.

Real weights are identified by the sha256 of the file the user downloaded (so it can be checked with
`sha256sum`); randomly initialised weights have no file, so they are identified by a hash over the
state_dict itself (names, dtypes, shapes and raw bytes, in key order).
"""
from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path

import torch

_CHUNK = 1 << 20


class EncoderLoadError(ValueError):
    """Weights or data files of an encoder are missing, unreadable or do not fit its architecture.

    A ValueError (a bad --clip-model / --s3d-weights / --s3d-dict value), so command-line entry points
    report it as one `error:` line; the message names the path and the problem on one line."""


def path_problem(path: str | Path, *, directory: bool = False) -> str | None:
    """Why `path` cannot be read as a file (or, with `directory`, as a directory), phrased to follow the
    path in a message ("... s3d_howto100m.pth not found"); None when it can."""
    path = Path(path)
    if not path.exists():
        return "is a broken symbolic link" if path.is_symlink() else "not found"
    if directory and not path.is_dir():
        return "is a file, not a directory"
    if not directory and path.is_dir():
        return "is a directory, not a file"
    if not os.access(path, os.R_OK | (os.X_OK if directory else 0)):
        return "is not readable (permission denied)"
    if not directory and path.stat().st_size == 0:
        return "is empty (0 bytes)"
    return None


def one_line(error: BaseException | str, limit: int = 400) -> str:
    """An underlying library's error text on one line (they often span several), cut to `limit` chars."""
    text = " ".join(str(error).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
