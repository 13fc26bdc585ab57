"""trainer/README.md's source table of the STG presets lists every field of paper-clip, paper-s3d and reference
with the values the presets really hold, and a source for each."""
from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import to_dict
from trainer.methods import load_train_config

README = Path(__file__).resolve().parents[2] / "trainer" / "README.md"
PRESETS = ("paper-clip", "paper-s3d", "reference")
DESCRIBED = {"data.expect"}  # a spec, described in words


def flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and k != "expect":
            out.update(flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out


def shown(v) -> str:
    """A value as the table writes it."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(shown(x) for x in v) + "]"
    return str(v)


def table_rows() -> dict[str, list[str]]:
    text = README.read_text()
    section = text[text.index("## Where the STG presets' values come from"):]
    section = section[:section.index("\n## ", 5)]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`") and cells[0] != "key":
            rows[cells[0].strip("`")] = cells[1:]
    return rows


@pytest.fixture(scope="module")
def presets():
    return {name: flat(to_dict(load_train_config(name))) for name in PRESETS}


def test_every_field_has_a_row_and_a_source(presets):
    rows = table_rows()
    fields = {k for k in presets["paper-clip"] if not k.startswith("runtime.")}
    assert fields <= set(rows), f"fields without a row: {sorted(fields - set(rows))}"
    assert "runtime.*" in rows
    assert set(rows) - fields <= {"runtime.*"}, f"rows of no field: {sorted(set(rows) - fields - {'runtime.*'})}"
    assert all(cells[3] for cells in rows.values())


def test_the_table_shows_the_presets_values(presets):
    rows = table_rows()
    wrong = [(key, name, cells[i], shown(presets[name][key])) for key, cells in rows.items()
             if key not in DESCRIBED and key != "runtime.*"
             for i, name in enumerate(PRESETS) if cells[i] != shown(presets[name][key])]
    assert not wrong, wrong
