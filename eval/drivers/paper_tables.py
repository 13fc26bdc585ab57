"""`python -m eval.drivers.paper_tables` (`make paper-tables`): the STG paper's ablation grids (Tables 5, 6, 8, 9,
10, 12 and 13) trained and scored on one world, each table written in the paper's layout next to the numbers
the paper reports (eval/drivers/paper_numbers.py).

    python -m eval.drivers.paper_tables [--out data/paper-tables] [--steps 250] [--tables 5,6,8,9,10,12,13]
        [world flags as make demo] [key=value ...]

Every row is a `trainer.train` run of the `demo` preset with the paper's full model (FULL_MODEL: Sinkhorn on
words against frames and regions averaged, both losses, CA-SA-CA, [CLS]) and the row's overrides, stopped after `--steps` steps, then `eval.run` gyt (spatio-temporal), mining (temporal) and youcook
(spatial) on the held-out videos. Rows whose settings coincide share one run (the full model is a row of five
tables). The demo's world (same seed and videos) is generated with 14-s training windows, so Table 9 can
widen the candidate window to 28 frames at 2 fps; the paper's sizes map onto the world's (U 80 -> 16, T 16 -> 4).

Resumable: a finished run keeps its figures in runs/<run>/paper-tables.json with the settings that made it and
is skipped when the same settings come again; delete it (or the out folder) to redo it. Output: tables/table-N.md
per table and paper-tables.json (every row: our figures, the paper's, the run); the last stdout line is a JSON
summary.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from eval.drivers.config import WorldConfig, add_world_flags, config_from_flags
from eval.drivers.demo import prepare_data
from eval.drivers.experiment import Entry, Stages, command_main, evaluate, last_json, train_entry
from eval.drivers.paper_numbers import GYT, MYT, PAPER, YC
from pipeline.config import ConfigError, to_dict
from trainer.methods import load_train_config

TASKS = ("gyt", "mining", "youcook")
TABLE_IDS = ("5", "6", "8", "9", "10", "12", "13")
TRAIN_WINDOW = 14.0  # seconds of features stored around each narration: up to 28 candidates at 2 fps
SWEEP = (0.1, 0.05, 0.01, 0.005, 0.001)  # Table 12's thresholds


@dataclass(frozen=True)
class PaperTablesConfig:
    out: str = "data/paper-tables"
    steps: int = 250                      # optimiser steps per run (the demo trains 930)
    tables: tuple[str, ...] = TABLE_IDS
    world: WorldConfig = field(default_factory=WorldConfig)

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise ValueError("steps must be >= 1")
        bad = [t for t in self.tables if t not in TABLE_IDS]
        if bad or not self.tables:
            raise ValueError(f"tables: {bad or 'none'} not among {','.join(TABLE_IDS)}")


# The paper's full model on the demo preset: Table 5's "Average over last two" (the demo itself selects on frame
# vectors alone, which trains better on its world in its longer run: trainer/methods/stg/presets/tiny.yaml)
FULL_MODEL = ("stg.selection.video=both",)


@dataclass(frozen=True)
class Row:
    label: str                            # the paper's row (a key of PAPER[table])
    overrides: tuple[str, ...] = ()       # on the demo preset and FULL_MODEL
    preset: str = "demo"
    ours: str = ""                        # Tables 9, 10: the row's U or T on this world (the label is the paper's)

    @property
    def settings(self) -> tuple[str, ...]:
        return (*FULL_MODEL, *self.overrides) if self.preset == "demo" else self.overrides


def _table5() -> list[Row]:
    combos = (("Global T - Global V", "sentence", "frames"), ("Global T - Local V", "sentence", "regions"),
              ("Local T - Global V", "words", "frames"), ("Local T - Local V", "words", "regions"),
              ("Average over last two", "words", "both"))
    rows = [Row("None", ("stg.selection.method=none",))]
    for method, block in (("topk", "top-k"), ("sinkhorn", "Sinkhorn")):
        rows += [Row(f"{name} / {block}", (f"stg.selection.method={method}", f"stg.selection.text={text}",
                                           f"stg.selection.video={video}")) for name, text, video in combos]
    return rows


TABLES: dict[str, list[Row]] = {
    "5": _table5(),
    "6": [Row("only Local loss", ("stg.loss.global_weight=0",)), Row("only Global loss", ("stg.loss.local_weight=0",)),
          Row("w/ Both loss")],
    "8": [Row("Self+Cross", ("stg.head.layers=[self,cross]",)), Row("Cross+Self", ("stg.head.layers=[cross,self]",)),
          Row("Cross+Cross", ("stg.head.layers=[cross,cross]",)), Row("Cross+Self+Cross")],
    # U 60 ... 140 of 80 at 5 fps -> 12 ... 28 of 16 at 2 fps (the window widens with U, as the paper's)
    "9": [Row(str(u), (f"data.candidates={c}", f"data.window_s={c / 2}"), ours=str(c))
          for u, c in ((60, 12), (80, 16), (100, 20), (120, 24), (140, 28))],
    # T 1 ... 24 of 80 -> 1 ... 6 of 16, in the same order (the paper's T = 16 is the demo's 4)
    "10": [Row(str(t), (f"stg.selection.keep={k}",), ours=str(k))
           for t, k in ((1, 1), (4, 2), (8, 3), (16, 4), (24, 6))],
    "12": [Row("CoMMA† (CLIP)", preset="comma-demo"), Row("Ours (CLIP)")],
    "13": [Row("Mean-pooling", ("stg.head.global_feature=grid_mean",)), Row("[CLS]")],
}
TITLES = {"5": "Frame selection (top-k = w/o Sinkhorn)", "6": "Loss ablations", "8": "Attention architecture",
          "9": "Candidate frames U used for selection", "10": "Frames T used for training",
          "12": "Mask threshold, GroundingYT mAP@0.4", "13": "Global representation"}


def run_key(row: Row, steps: int, world: list[str]) -> tuple[str, dict]:
    """(run folder name, the settings that define it): rows whose resolved training configs agree share it."""
    cfg = to_dict(load_train_config(row.preset, (*row.settings, f"optim.max_steps={steps}")))
    settings = {"config": cfg, "steps": steps, "world": world}
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:10]
    return f"{cfg['method']}-{digest}", settings


def figures(metrics: dict[str, dict]) -> dict[str, float | None]:
    """Our figures in the paper's units (percent): gyt mAP@0.4 and IoU+Pointing, mining IoU, youcook pointing."""
    def get(task, key, scale=1.0):
        v = metrics.get(task, {}).get(key)
        return None if v is None else round(float(v) * scale, 2)
    return {GYT: get("gyt", "map@0.4", 100), "iou_pointing": get("gyt", "iou_pointing"),
            MYT: get("mining", "iou", 100), YC: get("youcook", "pointing_accuracy")}


def run_row(stages: Stages, setup, row: Row, cfg: PaperTablesConfig, world: list[str], sweep: bool) -> dict:
    """Train and score one row's run unless a finished one with the same settings exists; its record."""
    name, settings = run_key(row, cfg.steps, world)
    run = setup.out / "runs" / name
    record_path = run / "paper-tables.json"
    if record_path.is_file():
        record = json.loads(record_path.read_text())
        if record.get("settings") == json.loads(json.dumps(settings, default=str)):
            if sweep and "sweep" not in record:  # trained for another table: only Table 12's scoring is missing
                record["sweep"] = threshold_sweep(stages, setup, name, run)
                record_path.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
            return record
    entry = Entry(name, row.preset, (*row.settings, f"optim.max_steps={cfg.steps}"))
    train_entry(stages, setup, entry)
    # the generated videos are not 640x360, youcook's default frame size: their sizes are in gyt's id2wh file
    sizes = ["--sizes", Path(setup.benchmarks) / "groundingyoutube" / "id2wh_new.json"]
    metrics = evaluate(stages, setup, entry, run, TASKS, {"youcook": sizes})
    record = {"run": name, "settings": settings, "metrics": metrics, "figures": figures(metrics)}
    if sweep:
        record["sweep"] = threshold_sweep(stages, setup, name, run)
    record_path.write_text(json.dumps(record, indent=1, sort_keys=True, default=str))
    return json.loads(record_path.read_text())


def threshold_sweep(stages: Stages, setup, name: str, run: Path) -> list[dict]:
    """Table 12: mAP@0.4 of the run's gyt predictions per threshold, on max-normalised maps (ours) and on the
    raw rollout mass (the paper's scale), in one scoring pass."""
    metrics = last_json(stages.run(f"sweep-{name}", "eval.score", [
        "gyt", "--predictions", run / "eval" / "gyt-paper" / "predictions.h5", "--benchmark-dir", setup.benchmarks,
        "--mask-threshold", ",".join(map(str, SWEEP)), "--mask-normalise", "max,none", "--area-split", "0"]))
    return [{"scale": r["mask_normalise"], "threshold": r["mask_threshold"], "map@0.4": r["map@0.4"] * 100,
             "map_mean": r["map_mean"] * 100} for r in metrics["thresholds"]]


# ---- rendering ----------------------------------------------------------------------------------------------
def _cell(ours, paper) -> str:
    left = "-" if ours is None else f"{ours:.2f}"
    return left if paper is None else f"{left} ({paper:g})"


def _sweep_cell(ours: dict | None, paper) -> str:
    left = "-" if ours is None else f"{ours['map@0.4']:.2f} / {ours['map_mean']:.2f}"
    return left if paper is None else f"{left} ({paper:g})"


def render(table: str, records: dict[str, dict]) -> str:
    """The table in the paper's layout; each cell `ours (paper)`; gyt also as IoU+Pointing (ours only)."""
    paper, rows = PAPER[table], TABLES[table]
    head = [f"**Table {table}. {TITLES[table]}** — each cell: ours (paper)", ""]
    if table == "12":
        head[0] = f"**Table {table}. {TITLES[table]}** — each cell: ours mAP@0.4 / ours mAP@.1:.5 (paper mAP@0.4)"
        cols = [str(t) for t in SWEEP]
        lines = ["| model | scale | " + " | ".join(f"τ = {c}" for c in cols) + " |", "|---|---|" + "---:|" * len(cols)]
        for label in paper:
            row = next((r for r in rows if r.label == label), None)
            sweep = records[row.label]["sweep"] if row else []
            for scale, name in (("none", "raw mass (paper)"), ("max", "max-normalised (ours)")):
                ours = {f"{r['threshold']:g}": r for r in sweep if r["scale"] == scale}
                cells = [_sweep_cell(ours.get(c), paper[label].get(c)) for c in cols]
                lines.append(f"| {label}{'' if row else ' (not on this world)'} | {name} | " + " | ".join(cells) + " |")
        return "\n".join(head + lines)
    if table in ("9", "10"):
        what = "U (paper / ours)" if table == "9" else "T (paper / ours)"
        lines = [f"| {what} | " + " | ".join(f"{r.label} / {r.ours}" for r in rows) + " |",
                 "|---|" + "---:|" * len(rows)]
        for key, name in ((GYT, "GYT spatio-temporal mAP@0.4"), ("iou_pointing", "GYT IoU+Pointing (ours)"),
                          (YC, "YC-Inter. pointing")):
            cells = [_cell(records[r.label]["figures"][key], paper[r.label].get(key)) for r in rows]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        return "\n".join(head + lines)
    blocks = (("top-k", " / top-k"), ("Sinkhorn", " / Sinkhorn")) if table == "5" else (("", ""),)
    labels = list(dict.fromkeys(r.label.split(" / ")[0] for r in rows))
    cols = ((GYT, "GYT mAP@0.4"), ("iou_pointing", "GYT IoU+Pt (ours)"), (MYT, "MYT IoU"), (YC, "YC-Inter."))
    header = " | ".join(f"{b} {c}".strip() for b, _ in blocks for _, c in cols)
    lines = [f"| row | {header} |", "|---|" + "---:|" * (len(cols) * len(blocks))]
    for label in labels:
        cells = []
        for _, suffix in blocks:
            key = label + suffix if label != "None" else (label if suffix == blocks[0][1] else "")
            if key not in records:
                cells += ["" for _ in cols]
                continue
            cells += [_cell(records[key]["figures"][k], paper[key].get(k)) for k, _ in cols]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(head + lines)


# ---- driver -------------------------------------------------------------------------------------------------
def parse_args(argv: list[str] | None) -> PaperTablesConfig:
    p = argparse.ArgumentParser(prog="python -m eval.drivers.paper_tables", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", help="output folder (default data/paper-tables)")
    p.add_argument("--steps", type=int, help="optimiser steps per run (default 250)")
    p.add_argument("--tables", type=lambda s: tuple(x.strip() for x in s.split(",") if x.strip()),
                   help="which tables, e.g. 5,6 (default all: 5,6,8,9,10,12,13)")
    add_world_flags(p)
    return config_from_flags(PaperTablesConfig, p.parse_intermixed_args(argv), ("out", "steps", "tables"))


def run_tables(cfg: PaperTablesConfig) -> dict:
    out = Path(cfg.out).absolute()
    stages = Stages(out / "logs")
    t0 = time.perf_counter()
    print(f"STG paper tables {','.join(cfg.tables)} -> {out} ({cfg.steps} steps per run)", flush=True)
    for table in cfg.tables:  # refuse a bad row before any work
        for row in TABLES[table]:
            try:
                load_train_config(row.preset, row.settings)
            except ConfigError as exc:
                raise ValueError(f"table {table}, row {row.label!r}: {exc}") from exc
    _, setup = prepare_data(stages, cfg.world, out, train_window=TRAIN_WINDOW)
    world = json.loads((out / "world.argv.json").read_text())
    (out / "tables").mkdir(parents=True, exist_ok=True)
    results: dict = {}
    for table in cfg.tables:
        records = {}
        for row in TABLES[table]:
            records[row.label] = run_row(stages, setup, row, cfg, world, sweep=table == "12")
            print(f"table {table:>2}  {row.label:<34} run {records[row.label]['run']}  "
                  f"{json.dumps(records[row.label]['figures'])}", flush=True)
        text = render(table, records)
        (out / "tables" / f"table-{table}.md").write_text(text + "\n")
        print("\n" + text + "\n", flush=True)
        results[table] = {"title": TITLES[table], "rows": [
            {"label": r.label, "ours_setting": r.ours, "overrides": list(r.settings), "preset": r.preset,
             "run": records[r.label]["run"], "figures": records[r.label]["figures"],
             "sweep": records[r.label].get("sweep"), "paper": PAPER[table].get(r.label)} for r in TABLES[table]]}
    summary = {"out": str(out), "steps": cfg.steps, "tables": list(cfg.tables),
               "runs": len({row["run"] for t in results.values() for row in t["rows"]}),
               "seconds": round(time.perf_counter() - t0, 1)}
    (out / "paper-tables.json").write_text(json.dumps({**summary, "results": results, "paper": PAPER,
                                                       "stage_seconds": stages.seconds}, indent=1, default=str))
    return summary


def main(argv: list[str] | None = None) -> int:
    return command_main("paper-tables", parse_args, run_tables, argv)


if __name__ == "__main__":
    sys.exit(main())
