"""The feature store: the contract between extraction, training and evaluation.

    from pipeline.store import open_store
    store = open_store("features.zarr")
    f = store.frames("VIDEO_ID", encoder="clip")        # times [N], global [N, D], grid [N, 7, 7, D]
    c = store.captions("VIDEO_ID", encoder="clip")      # sentence, words, mask, text, start, end
    store.failures()                                     # failure records (video, segment, stage, reason)

Layout and naming: `pipeline.store.layout`. Writing: `pipeline.store.writer.ShardWriter`. The index:
`pipeline.store.index` (opening), `pipeline.store.consolidate` (folding new shards in).
"""
from pipeline.store.consolidate import consolidate
from pipeline.store.errors import (NotInStoreError, SpecMismatchError, StoreCorruptError, StoreError,
                                   StoreLockedError)
from pipeline.store.reader import FailureRecord, FeatureStore, open_store
from pipeline.store.root import WriterLock, init_store
from pipeline.store.writer import ShardWriter

__all__ = ["open_store", "FeatureStore", "FailureRecord", "NotInStoreError", "ShardWriter", "init_store",
           "consolidate", "WriterLock", "StoreError", "SpecMismatchError", "StoreLockedError", "StoreCorruptError"]
