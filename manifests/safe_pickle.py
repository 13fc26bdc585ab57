"""A restricted unpickler for annotation pickles (YouCook2-Interactions ships two).

`pickle.load` runs whatever callables a file names, so a downloaded pickle can execute code. `safe_load`
resolves only builtin container and scalar types; any other global (os.system, a class, a function) raises
`UnsafePickleError` naming the file before anything is called."""
from __future__ import annotations

import builtins
import codecs
import os
import pickle
from typing import Any

from manifests.errors import AnnotationError, UnsafePickleError

# Constructors that only build plain values. Protocol <= 3 pickles name `set`/`frozenset` as globals (with
# REDUCE); Python 2 pickles spell the module `__builtin__`.
ALLOWED_BUILTINS = frozenset({
    "set", "frozenset", "dict", "list", "tuple", "str", "bytes", "bytearray", "int", "float", "complex", "bool",
})
_BUILTIN_MODULES = frozenset({"builtins", "__builtin__"})
# Protocol 2 spells a bytes value as _codecs.encode(str, "latin1"): it only turns text into bytes.
_ALLOWED_OTHER = frozenset({("_codecs", "encode")})


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path

    def find_class(self, module: str, name: str) -> Any:
        if module in _BUILTIN_MODULES and name in ALLOWED_BUILTINS:
            return getattr(builtins, name)
        if (module, name) in _ALLOWED_OTHER:
            return codecs.encode
        raise UnsafePickleError(
            self._path, f"global {module}.{name}",
            "refused: annotation pickles may hold only builtin containers and scalars "
            f"({', '.join(sorted(ALLOWED_BUILTINS))}, None)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self._path, f"persistent id {pid!r}", "refused: persistent ids are not allowed")


def safe_load(path: str | os.PathLike) -> Any:
    """Load a pickle of builtin values only. Raises UnsafePickleError for anything else and AnnotationError
    when the file is not a readable pickle; both name the file."""
    path = str(path)
    with open(path, "rb") as f:
        try:
            return _RestrictedUnpickler(f, path).load()
        except UnsafePickleError:
            raise
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
                AttributeError) as exc:
            raise AnnotationError(path, "", f"not a readable pickle ({type(exc).__name__}: {exc})") from exc
