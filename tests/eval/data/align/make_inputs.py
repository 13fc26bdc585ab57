"""Writes the seeded inputs of the aligner fixtures (how the committed files in this folder were made).

    python tests/eval/data/align/make_inputs.py BENCHMARKS_DIR OUT_DIR

- okaud_informative.probs: 3,374 frames x 513 classes for -1okAudsnAc.grammar/.gt (dictionary order): the five
  grammar classes get log-softmax(noise + 0.3 at the ground-truth class), 3 decimals; every other class -12.
- okaud_noise.probs: the same shape, the grammar classes pure noise (4 decimals), class 0 (add_apple, not in
  the grammar) +0.25 so that the published "shift by -2 max when a value is > 0" applies.
- toy/: a 6-class dictionary, non-integer mean lengths, a 3-line grammar (a prefix tree), 900 frames; the
  published code ran on it with frame_sampling 7, max_hypotheses 30 (pruning at every step), max_length 200
  (segments longer than 200 frames are impossible).
The published code's outputs on these inputs are in *.res.gz / *.acc (see eval/ALIGN.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

TOY_CLASSES = ["a_x", "b_x", "c_x", "d_x", "e_x", "background"]
TOY_LENGTHS = [37.6, 12.2, 80.0, 45.5, 150.0, 60.4]
TOY_GRAMMAR = ["background a_x background b_x background", "background a_x c_x background",
               "background d_x b_x e_x background"]
TOY_TRUTH = [("background", 150), ("a_x", 170), ("background", 160), ("b_x", 190), ("background", 230)]


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(axis=1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=1, keepdims=True))


def write_table(path: Path, values: np.ndarray, fmt: str) -> None:
    np.savetxt(path, values, fmt=fmt, delimiter=" ")


def grammar_scores(rng, truth: list[str], names: list[str], bonus: float) -> tuple[list[int], np.ndarray]:
    """log-softmax over the grammar classes of noise + `bonus` at each frame's true class."""
    cols = [names.index(n) for n in sorted(set(truth))]
    logits = rng.normal(0.0, 1.0, (len(truth), len(cols)))
    logits[np.arange(len(truth)), [cols.index(names.index(t)) for t in truth]] += bonus
    return cols, log_softmax(logits)


def okaud(bench: Path, out: Path) -> None:
    names = [line.strip() for line in (bench / "weakYouTube_dict.txt").read_text().splitlines()]
    truth = [line.strip() for line in (bench / "-1okAudsnAc.gt").read_text().splitlines()]
    for name, seed, bonus, fmt, extra in (("okaud_informative", 14, 0.3, "%.3f", None),
                                          ("okaud_noise", 15, 0.0, "%.4f", 0.25)):
        rng = np.random.default_rng(seed)
        cols, scores = grammar_scores(rng, truth, names, bonus)
        table = np.full((len(truth), len(names)), -12.0)
        table[:, cols] = scores
        if extra is not None:
            table[:, 0] = extra
        write_table(out / f"{name}.probs", table, fmt)


def toy(out: Path) -> None:
    folder = out / "toy"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "dict.txt").write_text("".join(f"{n} \n" for n in TOY_CLASSES))
    (folder / "lengths.txt").write_text("".join(f"{m}\n" for m in TOY_LENGTHS))
    (folder / "toy.grammar").write_text("".join(f"{line}\n" for line in TOY_GRAMMAR))
    truth = [label for label, n in TOY_TRUTH for _ in range(n)]
    (folder / "toy.gt").write_text("".join(f"{t}\n" for t in truth))
    rng = np.random.default_rng(16)
    logits = rng.normal(0.0, 1.5, (len(truth), len(TOY_CLASSES)))
    logits[np.arange(len(truth)), [TOY_CLASSES.index(t) for t in truth]] += 0.4
    table = log_softmax(logits)
    table[rng.random(len(truth)) < 0.01, 4] = 0.5  # a few positive values: the published shift applies
    write_table(folder / "toy.probs", table, "%.5f")


if __name__ == "__main__":
    bench_dir, out_dir = Path(sys.argv[1]) / "miningyoutube", Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    okaud(bench_dir, out_dir)
    toy(out_dir)
