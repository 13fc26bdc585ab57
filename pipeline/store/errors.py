"""Errors of the store. Every message names the store (or file) and says what to do."""
from __future__ import annotations


class StoreError(RuntimeError):
    """The store cannot be used as asked (see the message)."""


class SpecMismatchError(StoreError):
    """The store was written with other encoder settings than the ones asked for."""


class StoreLockedError(StoreError):
    """Another extraction is writing this store (or a dead one left its lock)."""


class StoreCorruptError(StoreError):
    """Stored data is missing or does not match its checksum: never served, always reported."""


class NotInStoreError(KeyError):
    """The store holds no features for what was asked (a video id, an encoder)."""

    def __str__(self) -> str:  # KeyError quotes its message; say it plainly
        return str(self.args[0])
