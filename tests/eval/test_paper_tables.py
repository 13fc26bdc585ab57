"""`make paper-tables` (eval.drivers.paper_tables) on a tiny grid: Tables 6, 12 and 13 on a small generated
world, a few steps per run. The tables come out in the paper's layout with the paper's numbers beside ours,
rows with equal settings share one run, a second call reuses every finished run, and bad options are one
error line."""
from __future__ import annotations

import contextlib
import io
import json

import pytest

from eval.drivers import paper_tables
from eval.drivers.paper_numbers import PAPER

pytestmark = pytest.mark.slow
ARGS = ["--steps", "2", "--tables", "6,12,13", "--train-videos", "6", "--test-videos", "2", "--seconds", "16-18"]


def call(argv):
    text = io.StringIO()
    with contextlib.redirect_stdout(text):
        code = paper_tables.main(argv)
    return code, text.getvalue()


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("paper-tables")
    code, stdout = call(["--out", str(out), *ARGS])
    assert code == 0, stdout
    return out, json.loads(stdout.strip().splitlines()[-1]), stdout


def test_each_table_in_the_papers_layout_with_its_numbers(made):
    out, summary, stdout = made
    assert summary["tables"] == ["6", "12", "13"]
    for table in ("6", "12", "13"):
        text = (out / "tables" / f"table-{table}.md").read_text()
        assert text in stdout
        for label in PAPER[table]:
            assert f"| {label}" in text, (table, label)
    six = (out / "tables" / "table-6.md").read_text()
    assert "(7.29)" in six and "(58.35)" in six                       # paper's numbers beside ours
    twelve = (out / "tables" / "table-12.md").read_text()
    assert "raw mass (paper)" in twelve and "max-normalised (ours)" in twelve and "(17.1)" in twelve


def test_rows_with_equal_settings_share_a_run_and_the_json_has_every_row(made):
    out, summary, _ = made
    full = json.loads((out / "paper-tables.json").read_text())
    rows = {(t, r["label"]): r for t, table in full["results"].items() for r in table["rows"]}
    # the full model is Table 6's "both", Table 12's "Ours (CLIP)" and Table 13's "[CLS]"
    assert rows[("6", "w/ Both loss")]["run"] == rows[("12", "Ours (CLIP)")]["run"] == rows[("13", "[CLS]")]["run"]
    assert rows[("13", "Mean-pooling")]["run"] != rows[("13", "[CLS]")]["run"]
    assert summary["runs"] == len({r["run"] for r in rows.values()}) == 5  # 3 + comma + mean-pooling
    assert rows[("6", "only Local loss")]["paper"] == PAPER["6"]["only Local loss"]
    sweep = rows[("12", "Ours (CLIP)")]["sweep"]
    assert {(r["scale"], r["threshold"]) for r in sweep} == {(s, t) for s in ("max", "none")
                                                              for t in paper_tables.SWEEP}
    for r in rows.values():
        assert set(r["figures"]) == {"gyt", "iou_pointing", "myt", "yc"}
        assert all(v is not None for v in r["figures"].values())


def test_a_second_call_reuses_the_finished_runs(made):
    out, summary, _ = made
    records = sorted((out / "runs").glob("*/paper-tables.json"))
    before = {p: p.stat().st_mtime_ns for p in records}
    code, stdout = call(["--out", str(out), *ARGS])
    assert code == 0
    assert {p: p.stat().st_mtime_ns for p in records} == before
    assert "train-" not in "".join(p.name for p in (out / "logs").glob("*") if p.stat().st_mtime_ns >
                                   max(before.values()))
    assert json.loads(stdout.strip().splitlines()[-1])["runs"] == summary["runs"]


def test_table_5_9_and_10_layouts():
    """Rendered from records without training: Table 5's two blocks (None only without Sinkhorn), Tables 9 and
    10 with the paper's setting and ours per column."""
    figures = {"gyt": 1.0, "iou_pointing": 2.0, "myt": 3.0, "yc": 4.0}
    for table in ("5", "9", "10"):
        records = {r.label: {"figures": figures} for r in paper_tables.TABLES[table]}
        text = paper_tables.render(table, records)
        if table == "5":
            none = next(line for line in text.splitlines() if line.startswith("| None |"))
            assert none.count("(") == 3 and none.rstrip().endswith("|  |  |  |  |")
            assert "| Average over last two | 1.00 (18.36)" in text
        else:
            assert ("80 / 16" if table == "9" else "16 / 4") in text and "4.00 (57.1)" in text


@pytest.mark.parametrize("argv, message", [(["--tables", "5,7"], "tables"), (["--steps", "0"], "steps")])
def test_bad_options_are_one_error_line(argv, message, tmp_path, capsys):
    assert paper_tables.main(["--out", str(tmp_path), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
