"""Fixtures for the encoder tests: few torch threads (the CI box is shared) and cached tiny encoders."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.encoders import build_encoders


@pytest.fixture(scope="session", autouse=True)
def _few_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(min(2, previous))
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_clip():
    return build_encoders(["clip"], "tiny", device="cpu")["clip"]


@pytest.fixture(scope="session")
def tiny_s3d():
    return build_encoders(["s3d"], "tiny", device="cpu", s3d_window=16)["s3d"]


def random_frames(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)
