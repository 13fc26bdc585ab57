"""Align per-frame log-probabilities to a grammar exactly as Kuehne et al.'s published MiningYouTube aligner
(`video_alignment/src/alignment.py`) does, frame for frame; see eval/ALIGN.md for how that was checked.

    python -m eval.align --log-probs P.txt --grammar G.grammar --dict weakYouTube_dict.txt \\
        --lengths weakYouTube_length.txt --out labels.txt [--gt G.gt]
        [--frame-sampling 20] [--max-hypotheses 50000] [--max-length 5000]

Inputs, as the published code reads them:
- P.txt: whitespace-separated text, one row per frame, one column per dictionary class (dictionary order),
  log-probabilities; read as float32, and shifted by -2 x max when some value is > 0.
- G.grammar: one transcript per line (class names separated by spaces); several lines = a grammar whose
  paths are the lines.
- the dictionary: one class name per line (surrounding spaces stripped); line i = class id i.
- the lengths file: one mean segment length (frames) per dictionary class, for the Poisson length model.
- G.gt (optional): one class name per frame; lines beyond the frames are ignored, as published.
Output: labels.txt gets one class *name* per frame, as the published code writes its .res file. stdout's last
line is JSON: `frames`, `score` (the best path's score) and, with --gt, `correct` and `mof` = correct / frames
(a fraction: frames whose label equals the gt line, both stripped, over all frames, as published).

The decoder's parameters default to the published ones (hypotheses every 20 frames, a beam of 50,000, lengths
below 5,000 frames). Bad input prints one line `error: FILE: problem` on stderr and exits 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

from eval.metrics.alignment import (PUBLISHED_FRAME_SAMPLING, PUBLISHED_MAX_HYPOTHESES, PUBLISHED_MAX_LENGTH,
                                    NoAlignmentError, align_published, check_mean_lengths, path_grammar)


class InputError(ValueError):
    def __init__(self, path, problem: str):
        super().__init__(f"{path}: {problem}")


def read_lines(path: Path) -> list[str]:
    """Lines split on newlines (trailing blank lines dropped), UTF-8."""
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(path, "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, f"cannot be read as UTF-8 text ({exc})") from None
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def read_dictionary(path: Path) -> list[str]:
    names = [line.strip() for line in read_lines(path)]
    if not names:
        raise InputError(path, "no class names")
    for no, name in enumerate(names, 1):
        if not name:
            raise InputError(path, f"line {no} is empty")
    if len(set(names)) != len(names):
        raise InputError(path, f"duplicate class names {sorted({n for n in names if names.count(n) > 1})[:5]}")
    return names


def read_grammar(path: Path, names: list[str]) -> list[list[int]]:
    index = {name: i for i, name in enumerate(names)}
    lines = read_lines(path)
    if not lines:
        raise InputError(path, "no transcript")
    out = []
    for no, line in enumerate(lines, 1):
        if not line.split():
            raise InputError(path, f"line {no} is empty")
        unknown = [label for label in line.split() if label not in index]
        if unknown:
            raise InputError(path, f"line {no}: label {unknown[0]!r} is not in the dictionary")
        out.append([index[label] for label in line.split()])
    return out


def read_lengths(path: Path, n_classes: int) -> np.ndarray:
    means = []
    for no, line in enumerate(read_lines(path), 1):
        try:
            (value,) = [float(v) for v in line.split()]
        except ValueError:
            raise InputError(path, f"line {no}: expected one number, got {line.strip()!r}") from None
        if not np.isfinite(value) or not np.round(value) >= 1:
            raise InputError(path, f"line {no}: mean length must be a number of frames above 0.5, got {line.strip()}")
        means.append(value)
    if len(means) != n_classes:
        raise InputError(path, f"{len(means)} mean lengths for the dictionary's {n_classes} classes")
    check_mean_lengths(np.array(means))
    return np.array(means)


def read_log_probs(path: Path, n_classes: int) -> np.ndarray:
    """float32 [frames, classes]: text parsed as float64, then rounded to float32 as numpy 1.x's loadtxt did."""
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # an empty file: reported below
            table = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as exc:
        raise InputError(path, f"not a numeric table: {str(exc).splitlines()[0]}") from None
    if table.shape[0] == 0:
        raise InputError(path, "no frames")
    if table.shape[1] != n_classes:
        raise InputError(path, f"{table.shape[1]} columns, the dictionary has {n_classes} classes")
    with np.errstate(over="ignore"):
        values = table.astype(np.float32)
    bad = np.argwhere(~np.isfinite(values))
    if len(bad):
        row, col = bad[0]
        raise InputError(path, f"row {row + 1} column {col + 1}: {float(table[row, col])!r} is not a finite "
                               f"float32")
    return values


def read_truth(path: Path) -> list[str]:
    return [line.strip() for line in read_lines(path)]


def mean_over_frames(labels: list[str], truth: list[str], gt_path: Path) -> dict:
    """As published: frames whose label equals the gt line (both stripped) over the labelled frames."""
    if len(truth) < len(labels):
        raise InputError(gt_path, f"{len(truth)} frame labels for {len(labels)} frames")
    correct = sum(a == b for a, b in zip(labels, truth))
    return {"correct": correct, "mof": correct / len(labels)}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m eval.align", description=__doc__.split("\n\n")[0])
    p.add_argument("--log-probs", required=True, type=Path, help="frames x classes log-probabilities (text)")
    p.add_argument("--grammar", required=True, type=Path, help="one transcript per line")
    p.add_argument("--dict", required=True, type=Path, help="class names, one per line (class id = line)")
    p.add_argument("--lengths", required=True, type=Path, help="mean length (frames) per class")
    p.add_argument("--out", required=True, type=Path, help="written: one class name per frame")
    p.add_argument("--gt", type=Path, help="one class name per frame: report the mean over frames")
    p.add_argument("--frame-sampling", type=int, default=PUBLISHED_FRAME_SAMPLING, help="hypothesis spacing")
    p.add_argument("--max-hypotheses", type=int, default=PUBLISHED_MAX_HYPOTHESES, help="beam after each step")
    p.add_argument("--max-length", type=int, default=PUBLISHED_MAX_LENGTH,
                   help="segments this long (frames) are impossible; 0: no limit")
    return p


def run(args: argparse.Namespace) -> dict:
    if args.frame_sampling < 1 or args.max_hypotheses < 1 or args.max_length < 0:
        raise InputError("options", "--frame-sampling and --max-hypotheses must be >= 1, --max-length >= 0")
    names = read_dictionary(args.dict)
    transcripts = read_grammar(args.grammar, names)
    means = read_lengths(args.lengths, len(names))
    truth = read_truth(args.gt) if args.gt is not None else None
    log_probs = read_log_probs(args.log_probs, len(names))
    try:
        result = align_published(log_probs, path_grammar(transcripts), means, args.frame_sampling,
                                 args.max_hypotheses, args.max_length)
    except NoAlignmentError as exc:
        limit = f"under {args.max_length} frames" if args.max_length else "of any length"
        raise InputError(args.log_probs, f"{len(log_probs)} frames cannot be aligned to {args.grammar}: {exc} "
                                         f"(segments of {args.frame_sampling} frames or more, {limit})") from None
    except ValueError as exc:
        raise InputError(args.log_probs, str(exc)) from None
    labels = [names[c] for c in result.frame_classes]
    try:
        args.out.write_text("".join(f"{label}\n" for label in labels))
    except OSError as exc:
        raise InputError(args.out, f"cannot be written ({exc.strerror})") from None
    summary = {"frames": len(labels), "score": result.score}
    if truth is not None:
        summary.update(mean_over_frames(labels, truth, args.gt))
    return summary


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        summary = run(args)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(summary, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
