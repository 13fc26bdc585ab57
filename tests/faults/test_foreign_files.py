"""Files a user put inside a real store (in `shards/`, and in `inflight/` under a name that is not a shard's) are
never deleted: not by an extraction rerun, `--repair` (which does delete a damaged shard), `pipeline.verify` nor
`pipeline.upgrade`. Only debris the project itself made (a shard listed in `inflight/` without its marker) goes."""
from __future__ import annotations

import json

import pytest

from pipeline.extract import main as extract_main
from pipeline.store import ShardWriter, layout, open_store
from pipeline.upgrade import main as upgrade_main
from pipeline.verify import main as verify_main
from tests.faults.conftest import extract_args
from tests.pipeline.helpers import assert_same_features

pytestmark = pytest.mark.slow

FOREIGN = {
    f"{layout.SHARDS_DIR}/notes.txt": b"my notes",
    f"{layout.SHARDS_DIR}/my-backup/data.bin": b"\x00mine\xff",
    f"{layout.SHARDS_DIR}/sh-mine/_COMPLETE.json.bak": b"named like a shard, but nobody's in-flight shard",
    f"{layout.INFLIGHT_DIR}/README": b"not a shard name",
}


def _foreign(store) -> dict:
    return {rel: (store / rel).read_bytes() for rel in FOREIGN if (store / rel).exists()}


def _summary(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_foreign_files_in_a_store_survive_rerun_repair_verify_and_upgrade(reference, damaged, capsys):
    manifest, store = damaged
    for rel, data in FOREIGN.items():
        (store / rel).parent.mkdir(parents=True, exist_ok=True)
        (store / rel).write_bytes(data)
    # debris of ours: a shard a killed run had begun (listed in inflight/, some chunks, no marker)
    ours = layout.new_shard_name()
    ShardWriter(str(store), ours, open_store(str(store)).encoders)
    (store / layout.shard_path(ours) / "clip" / "grid" / "c").mkdir(parents=True)
    (store / layout.shard_path(ours) / "clip" / "grid" / "c" / "0").write_bytes(b"half a chunk")
    assert (store / layout.inflight_path(ours)).exists()

    capsys.readouterr()
    assert extract_main(extract_args(manifest, store)) == 0
    summary = _summary(capsys)
    assert summary["incomplete_shards_removed"] == 1 and summary["segments"] == 0
    assert not (store / layout.shard_path(ours)).exists() and not (store / layout.inflight_path(ours)).exists()
    assert _foreign(store) == FOREIGN

    # --repair deletes the damaged shard it replaces, and nothing else
    damaged_shard = sorted(p.name for p in (store / layout.SHARDS_DIR).iterdir() if p.name.startswith("sh-")
                           and (p / layout.MARKER).exists())[0]
    chunks = store / layout.shard_path(damaged_shard) / "s3d" / "global" / "c"
    next(p for p in sorted(chunks.rglob("*")) if p.is_file()).unlink()
    assert extract_main(extract_args(manifest, store, "--repair")) == 0
    assert _summary(capsys)["damaged_shards"] == 1
    assert not (store / layout.shard_path(damaged_shard)).exists()
    assert extract_main(extract_args(manifest, store, "--repair", "--deep")) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert _foreign(store) == FOREIGN

    assert verify_main(["--store", str(store), "--manifest", str(manifest), "--deep"]) == 0
    assert upgrade_main(["--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "sh-mine" in out and "not part of the store" in out  # listed for the user, not deleted
    assert _foreign(store) == FOREIGN
    assert_same_features(reference[1], store)
