from __future__ import annotations

import hashlib

import torch

from pipeline.encoders.weights import combined_sha256, sha256_file, state_dict_sha256


def test_sha256_file_matches_hashlib_across_chunks(tmp_path):
    data = bytes(range(256)) * 9000  # > 1 MiB, so several read chunks
    path = tmp_path / "w.bin"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()


def test_state_dict_hash_sees_values_names_shapes_and_dtypes():
    base = {"a": torch.arange(6, dtype=torch.float32), "b": torch.zeros(2, dtype=torch.int64)}
    digest = state_dict_sha256(base)
    assert digest == state_dict_sha256({k: v.clone() for k, v in base.items()})
    assert digest != state_dict_sha256({**base, "a": base["a"] + 1e-6})
    assert digest != state_dict_sha256({"c": base["a"], "b": base["b"]})
    assert digest != state_dict_sha256({**base, "a": base["a"].reshape(2, 3)})
    assert digest != state_dict_sha256({**base, "a": base["a"].double()})
    assert digest != state_dict_sha256({"b": base["b"], "a": base["a"]})  # key order matters
    scalar = {"n": torch.tensor(3)}
    assert state_dict_sha256(scalar) != state_dict_sha256({"n": torch.tensor(4)})


def test_combined_sha256_is_order_independent():
    assert combined_sha256({"x": "1", "y": "2"}) == combined_sha256({"y": "2", "x": "1"})
    assert combined_sha256({"x": "1", "y": "2"}) != combined_sha256({"x": "2", "y": "1"})
