"""One table of many methods' metrics (rows) over the scorers' headline figures (columns), as text for the
terminal and as markdown for the README. Results are {row: {task: the scorer's metrics JSON}}; a column a row
has no figure for shows "-". Accuracies are percent, IoU / AP / mIoU fractions, as the scorers report them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    task: str
    key: str
    header: str
    percent: bool  # printed with one decimal (else three)


COLUMNS = (
    Column("gyt-spatial", "pointing_accuracy", "pointing %", True),
    Column("gyt-spatial", "mean_iou", "mIoU", False),
    Column("gyt", "temporal_accuracy", "temporal %", True),
    Column("gyt", "iou_pointing", "IoU+Pointing %", True),
    Column("gyt", "map_mean", "mAP .1:.5", False),
    Column("mining", "mof", "MoF %", True),
    Column("mining", "iou", "MYT IoU", False),
    Column("retrieval", "clip_t2v_r1", "t2v R@1 %", True),
    Column("retrieval", "video_t2v_r1", "par2vid R@1 %", True),
    Column("moments", "r1@0.5", "R1@0.5 %", True),
    Column("moments", "miou", "moment mIoU", False),
)


def value(results: dict, row: str, column: Column) -> float | None:
    got = results.get(row, {}).get(column.task, {}).get(column.key)
    return float(got) if isinstance(got, (int, float)) and not isinstance(got, bool) else None


def used_columns(results: dict) -> list[Column]:
    """The columns at least one row has a figure for."""
    return [c for c in COLUMNS if any(value(results, row, c) is not None for row in results)]


def _cell(v: float | None, column: Column) -> str:
    return "-" if v is None else f"{v:.1f}" if column.percent else f"{v:.3f}"


def text_table(results: dict) -> str:
    columns = used_columns(results)
    width = max(len(r) for r in results) if results else 6
    cells = [[_cell(value(results, row, c), c) for c in columns] for row in results]
    widths = [max(len(c.header), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = [f"{'method':<{width}}  " + "  ".join(f"{c.header:>{w}}" for c, w in zip(columns, widths))]
    lines.append("-" * len(lines[0]))
    for row, r in zip(results, cells):
        lines.append(f"{row:<{width}}  " + "  ".join(f"{v:>{w}}" for v, w in zip(r, widths)))
    return "\n".join(lines)


def markdown_table(results: dict) -> str:
    columns = used_columns(results)
    lines = ["| method | " + " | ".join(c.header for c in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    for row in results:
        lines.append(f"| {row} | " + " | ".join(_cell(value(results, row, c), c) for c in columns) + " |")
    return "\n".join(lines)


def headline(results: dict) -> dict:
    """{row: {task/key: value}} of the table's figures (the demo's and compare's JSON summary)."""
    return {row: {f"{c.task}/{c.key}": value(results, row, c) for c in used_columns(results)
                  if value(results, row, c) is not None} for row in results}
