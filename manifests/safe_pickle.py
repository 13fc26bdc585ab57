"""A restricted unpickler for annotation pickles (YouCook2-Interactions ships two).

`pickle.load` runs whatever callables a file names, so a downloaded pickle can execute code. `safe_load`
resolves only builtin container and scalar types; any other global (os.system, a class, a function) raises
`UnsafePickleError` naming the file before anything is called.

Allowed types can still be made to build huge values from a tiny file (`bytearray(2**44)`, a declared 2**63-byte
string, a memo index of 2**32, `str()` of a list that holds one big string a million times, a tuple nested a
million deep). So `safe_load` also bounds what a file may build:
- the file is at most MAX_PICKLE_BYTES and is scanned before it is loaded (`pickletools.genops`): every counted
  string and frame must be present in the file, memo indices are dense, DUP/EXT*/persistent ids/out-of-band
  buffers are refused, and nesting is at most MAX_DEPTH;
- only scalars, globals and small tuples (at most MAX_SHARED elements in all, nested ones included) may be
  referenced twice; a memo GET of a list, dict, set or larger tuple is refused, so hashing, comparing or printing
  the built value costs at most MAX_SHARED times the file's opcodes, never exponential work;
- the allowed constructors share one budget of MAX_BUILD units (an element visited or a byte/character built)
  for their arguments and what they allocate: `bytearray(2**44)` is refused before anything is allocated.
"""
from __future__ import annotations

import builtins
import codecs
import io
import os
import pickle
import pickletools
from typing import Any, Callable

from manifests.errors import AnnotationError, UnsafePickleError

# Constructors that only build plain values. Protocol <= 3 pickles name `set`/`frozenset` as globals (with
# REDUCE); Python 2 pickles spell the module `__builtin__`.
ALLOWED_BUILTINS = frozenset({
    "set", "frozenset", "dict", "list", "tuple", "str", "bytes", "bytearray", "int", "float", "complex", "bool",
})
_BUILTIN_MODULES = frozenset({"builtins", "__builtin__"})
# Protocol 2 spells a bytes value as _codecs.encode(str, "latin1"): it only turns text into bytes.
_ALLOWED_OTHER = frozenset({("_codecs", "encode")})
_LATIN1 = frozenset({"latin1", "latin-1"})

MAX_PICKLE_BYTES = 16 * 2**20  # the released annotation pickles are under 100 KB
MAX_DEPTH = 100  # annotations nest a few levels; a deep value overflows C recursion when hashed or compared
MAX_BUILD = 2 * MAX_PICKLE_BYTES  # two passes over the largest file: legitimate constructor calls (set(list),
#                                   protocol 2's bytes) only re-read what the file holds
MAX_SHARED = 64  # Python shares equal constant tuples (a box, a (video, start, end) key); 64 covers those

_SCALARS = frozenset({  # opcodes that push a scalar or a global: size 1, fine to reference many times
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "STRING", "BINSTRING", "SHORT_BINSTRING",
    "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "NONE", "NEWTRUE", "NEWFALSE", "UNICODE", "SHORT_BINUNICODE",
    "BINUNICODE", "BINUNICODE8", "FLOAT", "BINFLOAT", "GLOBAL", "STACK_GLOBAL",
})
_IN_PLACE = frozenset({"APPEND", "APPENDS", "SETITEM", "SETITEMS", "ADDITEMS", "BUILD"})  # fill the value below
_IMMUTABLE = frozenset({"EMPTY_TUPLE", "TUPLE", "TUPLE1", "TUPLE2", "TUPLE3", "FROZENSET"})  # size fixed when built
_PUT = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"})
_GET = frozenset({"GET", "BINGET", "LONG_BINGET"})
_REFUSED = {
    "DUP": "a second reference to any value", "EXT1": "the extension registry", "EXT2": "the extension registry",
    "EXT4": "the extension registry", "PERSID": "persistent ids", "BINPERSID": "persistent ids",
    "NEXT_BUFFER": "out-of-band buffers", "READONLY_BUFFER": "out-of-band buffers",
}


class _Unreadable(Exception):
    """The scan found a malformed pickle (reported as 'not a readable pickle')."""


_Item = tuple  # (size: int | None, depth: int); size = elements in all, None when unknown or mutable


def _pop(stack: list, op: pickletools.OpcodeInfo) -> list[_Item]:
    """Pop what `op` consumes from the scan stack (items are _Item, None is a MARK); the deepest popped item
    comes last."""
    before = op.stack_before
    popped = []
    if pickletools.stackslice in before:
        below = before.index(pickletools.markobject)  # e.g. the list under APPENDS' mark
        while stack and stack[-1] is not None:
            popped.append(stack.pop())
        if not stack:
            raise _Unreadable(f"{op.name} without a MARK")
        stack.pop()
    else:
        below = len(before)
    for _ in range(below):
        if not stack or stack[-1] is None:
            raise _Unreadable(f"{op.name} on an empty stack")
        popped.append(stack.pop())
    return popped


def _pushed(name: str, popped: list[_Item]) -> _Item:
    if name in _SCALARS:
        return (1, 1)
    if name in _IN_PLACE:  # the container keeps its depth unless an item is deeper
        return (None, max([popped[-1][1]] + [d + 1 for _, d in popped[:-1]]))
    known = name in _IMMUTABLE and all(size is not None for size, _ in popped)
    return (1 + sum(size for size, _ in popped) if known else None, 1 + max((d for _, d in popped), default=0))


def _scan(data: bytes, path: str) -> None:
    """Check the opcode stream (see the module docstring) without building anything."""
    stack: list[_Item | None] = []
    memo: dict[int, _Item] = {}
    for op, arg, pos in pickletools.genops(data):
        name = op.name
        if name in _REFUSED:
            raise UnsafePickleError(path, f"byte {pos}", f"refused: opcode {name} ({_REFUSED[name]})")
        if name == "FRAME" and arg > len(data) - pos - 9:
            raise _Unreadable(f"frame of {arg} bytes at byte {pos}, only {len(data) - pos - 9} follow")
        if name in _PUT:
            index = len(memo) if name == "MEMOIZE" else arg
            if index > len(memo) or not stack or stack[-1] is None:
                raise _Unreadable(f"memo index {index} at byte {pos} (memo holds {len(memo)})")
            memo[index] = stack[-1]
            continue
        if name in _GET:
            if arg not in memo:
                raise _Unreadable(f"memo index {arg} at byte {pos} was never stored")
            size = memo[arg][0]
            if size is None or size > MAX_SHARED:
                raise UnsafePickleError(path, f"byte {pos}", "refused: a second reference to a list, dict, set or "
                                        f"a tuple of more than {MAX_SHARED} elements (shared values can cost "
                                        "exponential work)")
            stack.append(memo[arg])
            continue
        popped = _pop(stack, op)
        for item in op.stack_after:
            value = None if item is pickletools.markobject else _pushed(name, popped)
            if value is not None and value[1] > MAX_DEPTH:
                raise UnsafePickleError(path, f"byte {pos}", f"refused: values nested deeper than {MAX_DEPTH}")
            stack.append(value)


def _cost(value: Any, limit: int) -> int:
    """Elements, bytes and characters in `value` (what hashing, copying or printing it visits); counting
    stops past `limit`."""
    total, todo = 0, [value]
    while todo and total <= limit:
        x = todo.pop()
        total += 1
        if isinstance(x, (str, bytes, bytearray)):
            total += len(x)
        elif isinstance(x, dict):
            todo.extend(x.keys())
            todo.extend(x.values())
        elif isinstance(x, (list, tuple, set, frozenset)):
            todo.extend(x)
    return total


class _Budget:
    def __init__(self, path: str):
        self.path, self.limit = path, MAX_BUILD
        self.left = self.limit

    def charge(self, what: str, args: tuple, kwargs: dict, allocates: int = 0) -> None:
        if allocates > self.left:
            raise UnsafePickleError(self.path, f"call {what}()", f"refused: it would allocate {allocates:,} bytes; "
                                    f"an annotation pickle may build at most {self.limit:,} in all")
        cost = allocates + _cost((args, kwargs), self.left - allocates)
        if cost > self.left:
            raise UnsafePickleError(self.path, f"call {what}()", "refused: its arguments exceed what is left of the "
                                    f"budget of {self.limit:,} elements/bytes an annotation pickle may build")
        self.left -= cost


def _guarded_type(base: type, budget: _Budget) -> type:
    """A subclass of `base` whose construction (REDUCE calls it, NEWOBJ calls its __new__) is charged to the
    budget and returns a plain `base` value."""
    def __new__(cls, *args, **kwargs):
        sized = base in (bytes, bytearray) and args and isinstance(args[0], int)  # bytes(n): n zero bytes
        budget.charge(base.__name__, args, kwargs, max(args[0], 0) if sized else 0)
        return base(*args, **kwargs)

    return type(f"checked_{base.__name__}", (base,), {"__new__": __new__})


def _guarded_encode(budget: _Budget) -> Callable:
    def encode(obj: Any, encoding: str = "utf-8", errors: str = "strict") -> Any:
        if encoding not in _LATIN1:
            raise UnsafePickleError(budget.path, "call _codecs.encode()",
                                    f"refused: encoding {encoding!r} (protocol 2 writes bytes as latin1 only)")
        budget.charge("_codecs.encode", (obj,), {})
        return codecs.encode(obj, encoding, errors)

    return encode


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file, path: str):
        super().__init__(file)
        self._path = path
        budget = _Budget(path)
        self._types = {name: _guarded_type(getattr(builtins, name), budget) for name in ALLOWED_BUILTINS
                       if name != "bool"}  # bool cannot be subclassed, and bool(x) builds nothing
        self._types["bool"] = bool
        self._encode = _guarded_encode(budget)

    def find_class(self, module: str, name: str) -> Any:
        if module in _BUILTIN_MODULES and name in ALLOWED_BUILTINS:
            return self._types[name]
        if (module, name) in _ALLOWED_OTHER:
            return self._encode
        raise UnsafePickleError(
            self._path, f"global {module}.{name}",
            "refused: annotation pickles may hold only builtin containers and scalars "
            f"({', '.join(sorted(ALLOWED_BUILTINS))}, None)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(self._path, f"persistent id {pid!r}", "refused: persistent ids are not allowed")


def _read(path: str) -> bytes:
    size = os.path.getsize(path)
    if size > MAX_PICKLE_BYTES:
        raise UnsafePickleError(path, "", f"refused: {size:,} bytes; annotation pickles may be at most "
                                          f"{MAX_PICKLE_BYTES:,}")
    with open(path, "rb") as f:
        data = f.read(MAX_PICKLE_BYTES + 1)
    if len(data) > MAX_PICKLE_BYTES:  # grew since the size was read
        raise UnsafePickleError(path, "", f"refused: more than {MAX_PICKLE_BYTES:,} bytes")
    return data


def safe_load(path: str | os.PathLike) -> Any:
    """Load a pickle of builtin values only, within the bounds above. Raises UnsafePickleError for anything
    else and AnnotationError when the file is not a readable pickle; both name the file."""
    path = str(path)
    data = _read(path)
    try:
        _scan(data, path)
        return _RestrictedUnpickler(io.BytesIO(data), path).load()
    except UnsafePickleError:
        raise
    except (_Unreadable, pickle.UnpicklingError, EOFError, ValueError, TypeError, IndexError, KeyError,
            AttributeError, OverflowError, RecursionError) as exc:
        raise AnnotationError(path, "", f"not a readable pickle ({type(exc).__name__}: {exc})") from exc
