"""The restricted unpickler bounds what a file may build through the allowed types and opcodes: each hostile
pickle here is refused with an error naming the file, before the allocation or work it asks for."""
from __future__ import annotations

import codecs
import pickle

import pytest

from manifests import safe_pickle
from manifests.errors import AnnotationError, UnsafePickleError
from manifests.safe_pickle import MAX_BUILD, MAX_DEPTH, safe_load

BIG = 2**44  # 16 TiB


class _Call:
    """Pickles as `fn(*args)` (REDUCE through an allowed global)."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


def _file(tmp_path, data: bytes, name="evil.pkl"):
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _long1(n: int) -> bytes:
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize("fn", [bytearray, bytes])
def test_allocation_through_an_allowed_global_is_refused(tmp_path, protocol, fn):
    path = _file(tmp_path, pickle.dumps({"boxes": _Call(fn, BIG)}, protocol=protocol))
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path)
    message = str(err.value)
    assert str(path) in message and f"call {fn.__name__}()" in message and "refused" in message
    assert f"would allocate {BIG:,} bytes" in message and "\n" not in message


def test_allocation_through_newobj_is_refused(tmp_path):
    # bytes.__new__(bytes, 2**44), as NEWOBJ spells it
    path = _file(tmp_path, b"\x80\x02cbuiltins\nbytes\n" + _long1(BIG) + b"\x85\x81.")
    with pytest.raises(UnsafePickleError, match=r"evil.pkl: call bytes\(\): refused"):
        safe_load(path)


def test_str_of_a_shared_string_is_bounded(tmp_path):
    # one 1 MB string referenced 200 times, printed into one str: 200 MB from a 1 MB file
    path = _file(tmp_path, pickle.dumps(_Call(str, ["x" * 2**20] * 200), protocol=3))
    assert path.stat().st_size < 2 * 2**20
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path)
    assert "call str(): refused" in str(err.value) and f"{MAX_BUILD:,}" in str(err.value)


@pytest.mark.parametrize("fn", [tuple, list, bytes])
def test_total_work_of_allowed_constructors_is_bounded(tmp_path, monkeypatch, fn):
    monkeypatch.setattr(safe_pickle, "MAX_BUILD", 10**6)  # the real bound is 32 Mi: same rule, less memory
    arg = ("x" * 10**4,) if fn is not bytes else ("x" * 10**4, "latin1")
    path = _file(tmp_path, pickle.dumps([_Call(fn, *arg) for _ in range(200)], protocol=3))  # each call re-reads
    with pytest.raises(UnsafePickleError, match=f"call {fn.__name__}\\(\\): refused.*1,000,000"):
        safe_load(path)
    within = _file(tmp_path, pickle.dumps([_Call(fn, *arg) for _ in range(50)], protocol=3), "ok.pkl")
    assert len(safe_load(within)) == 50


@pytest.mark.parametrize("data,fragment", [
    (b"\x80\x04\x8e" + BIG.to_bytes(8, "little") + b".", "not a readable pickle"),          # BINBYTES8 of 16 TiB
    (b"\x80\x04\x96" + BIG.to_bytes(8, "little") + b".", "not a readable pickle"),          # BYTEARRAY8
    (b"\x80\x02Nr" + (2**31).to_bytes(4, "little") + b".", "memo index 2147483648"),        # LONG_BINPUT 2**31
    (b"\x80\x04\x95" + BIG.to_bytes(8, "little") + b"N.", "frame of 17592186044416 bytes"),  # FRAME
    (b"\x80\x02N" + b"\x85" * (MAX_DEPTH + 5) + b".", "nested deeper than"),              # (((None,),),)...
    (b"\x80\x02]2\x86.", "opcode DUP"),                                                     # ([], []) one list
    (b"\x80\x02N\x82\x01.", "opcode EXT1"),
])
def test_hostile_opcode_streams_are_refused_before_loading(tmp_path, data, fragment):
    path = _file(tmp_path, data)
    with pytest.raises(AnnotationError) as err:
        safe_load(path)
    assert str(path) in str(err.value) and fragment in str(err.value)


def test_shared_containers_are_refused(tmp_path):
    inner = [1, 2]
    path = _file(tmp_path, pickle.dumps([inner, inner]))
    with pytest.raises(UnsafePickleError, match="second reference to a list, dict, set"):
        safe_load(path)
    t = (1, 2)
    for _ in range(40):  # 3**40 elements once expanded: hashing it would never end
        t = (t, t, t)
    with pytest.raises(UnsafePickleError, match="tuple of more than 64 elements"):
        safe_load(_file(tmp_path, pickle.dumps(t), "tuples.pkl"))


def test_shared_small_tuples_and_strings_still_load(tmp_path):
    box, vid = (1.0, 2.0, 30.0, 40.0), "-1okAudsnAc"
    value = {vid: {1: box, 2: box}, "segments": {(vid, 1, 2)}, "pairs": [(vid, 1, 2), (vid, 1, 2)],
             "b": [b"ab", bytearray(b"cd"), 1j]}
    for protocol in (0, 1, 2, 3, 4, 5):
        assert safe_load(_file(tmp_path, pickle.dumps(value, protocol=protocol), f"ok{protocol}.pkl")) == value


def test_codecs_encode_only_as_protocol_2_uses_it(tmp_path):
    path = _file(tmp_path, pickle.dumps(_Call(codecs.encode, "abc", "rot13"), protocol=2))
    with pytest.raises(UnsafePickleError, match="encoding 'rot13'"):
        safe_load(path)


def test_file_size_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(safe_pickle, "MAX_PICKLE_BYTES", 1_000)
    path = _file(tmp_path, pickle.dumps(list(range(1_000))))
    with pytest.raises(UnsafePickleError, match="may be at most 1,000"):
        safe_load(path)


def test_real_pickles_still_load(benchmarks_dir):
    root = benchmarks_dir / "youcook2_interactions"
    for name in ("final_dataset_segments.pkl", "final_dataset_annotations.pkl"):
        with open(root / name, "rb") as f:
            assert safe_load(root / name) == pickle.load(f)  # trusted here: the released files
