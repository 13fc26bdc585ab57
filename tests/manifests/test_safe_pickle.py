"""The restricted unpickler: builtins load, anything else is refused before it runs."""
from __future__ import annotations

import os
import pickle

import pytest

from manifests.errors import AnnotationError, UnsafePickleError
from manifests.safe_pickle import safe_load


class _RunsCommand:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Plain:
    pass


def test_builtin_values_round_trip(tmp_path):
    value = {"a": {1: (1.5, 2, 3, 4.0)}, "s": {("v", 1, 2)}, "f": frozenset({1}), "l": [None, True, b"x"]}
    for protocol in (2, 3, pickle.HIGHEST_PROTOCOL):
        path = tmp_path / f"ok{protocol}.pkl"
        path.write_bytes(pickle.dumps(value, protocol=protocol))
        assert safe_load(path) == value


def test_python2_builtin_module_name_is_accepted(tmp_path):
    # Python 2 pickles name sets as __builtin__.set (protocol 2 written by Python 3 with fix_imports does too)
    path = tmp_path / "py2.pkl"
    path.write_bytes(pickle.dumps({1, 2}, protocol=2, fix_imports=True))
    assert b"__builtin__" in path.read_bytes()
    assert safe_load(path) == {1, 2}


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"x": _RunsCommand(marker)}))
    with pytest.raises(UnsafePickleError) as err:
        safe_load(path)
    assert not marker.exists()
    message = str(err.value)
    assert str(path) in message and "system" in message and "refused" in message
    assert isinstance(err.value, AnnotationError)


def test_class_instances_are_refused(tmp_path):
    path = tmp_path / "obj.pkl"
    path.write_bytes(pickle.dumps([_Plain()]))
    with pytest.raises(UnsafePickleError, match="_Plain"):
        safe_load(path)


@pytest.mark.parametrize("content", [b"", b"not a pickle", pickle.dumps([1, 2, 3])[:-3]])
def test_unreadable_pickles_name_the_file(tmp_path, content):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(AnnotationError, match="broken.pkl.*not a readable pickle"):
        safe_load(path)
