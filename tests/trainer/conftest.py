"""Trainer test fixtures: few torch threads (the machine is shared) and small synthetic stores."""
from __future__ import annotations

import pytest
import torch

from trainer.synthetic import SyntheticSpec, write_synthetic_store


@pytest.fixture(autouse=True)
def _few_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def synthetic_store(tmp_path_factory):
    """(root, truth, spec) of a CLIP + S3D synthetic store: 6 videos of 40 s, 4 narrated events each (4 x 4
    grid cells), d = 16."""
    root = str(tmp_path_factory.mktemp("synthetic") / "store.zarr")
    spec = SyntheticSpec(videos=6, dim=16, block=4, encoders=("clip", "s3d"), shards=2)
    return root, write_synthetic_store(root, spec), spec
