"""`python -m eval.align` against the published MiningYouTube aligner: per-frame labels, MoF and final score equal
what Kuehne et al.'s video_alignment code produced on the same inputs (tests/eval/data/align, eval/ALIGN.md);
bad input gives one `error: FILE: problem` line and exit 2."""
from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from eval import align

DATA = Path(__file__).parent / "data" / "align"
REPO = Path(__file__).resolve().parents[2]
PUBLISHED_SCORES = json.loads((DATA / "published_scores.json").read_text())


def unzip(src: Path, dst: Path) -> Path:
    with gzip.open(src, "rb") as f_in, open(dst, "wb") as f_out:
        shutil.copyfileobj(f_in, f_out)
    return dst


def run_align(capsys, *args) -> tuple[int, str, str]:
    code = align.main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def published(case: str) -> tuple[list[str], str]:
    """The published code's output labels (its .res file) and the accuracy line of its .acc file."""
    with gzip.open(DATA / f"{case}.res.gz", "rt") as f:
        labels = f.read().split("\n")[:-1]
    return labels, (DATA / f"{case}.acc").read_text().split("\n")[1]


def check_against_published(capsys, case: str, args: list, out: Path) -> None:
    code, stdout, err = run_align(capsys, *args, "--out", out)
    assert code == 0, err
    summary = json.loads(stdout.strip().splitlines()[-1])
    labels, accuracy = published(case)
    assert out.read_text().split("\n")[:-1] == labels  # frame for frame
    assert summary["frames"] == len(labels)
    assert "%.12g" % summary["mof"] == accuracy  # Python 2's str(float) of the published MoF
    assert summary["score"] == PUBLISHED_SCORES[case]  # bit for bit


@pytest.fixture()
def okaud(benchmarks_dir):
    return benchmarks_dir / "miningyoutube"


@pytest.mark.parametrize("case", ["okaud_informative", "okaud_noise"])
def test_real_grammar_matches_the_published_code(okaud, tmp_path, capsys, case):
    """-1okAudsnAc.grammar/.gt, the real dictionary and lengths; published defaults (okaud_noise's class 0 is
    positive, so the published shift by -2 max applies)."""
    probs = unzip(DATA / f"{case}.probs.gz", tmp_path / "p.txt")
    args = ["--log-probs", probs, "--grammar", okaud / "-1okAudsnAc.grammar", "--dict",
            okaud / "weakYouTube_dict.txt", "--lengths", okaud / "weakYouTube_length.txt",
            "--gt", okaud / "-1okAudsnAc.gt"]
    check_against_published(capsys, case, args, tmp_path / "labels.txt")


@pytest.mark.parametrize("case, beam, max_length", [("toy_prune_maxlen", 600, 400), ("toy_beam30", 30, 5000)])
def test_toy_grammar_with_pruning_matches_the_published_code(tmp_path, capsys, case, beam, max_length):
    """A 3-line grammar (prefix tree), non-integer means, hypotheses every 7 frames (900 frames: the last step is
    short), a beam that prunes at every step (ties at the cut included) and a length limit that binds."""
    toy = DATA / "toy"
    probs = unzip(toy / "toy.probs.gz", tmp_path / "p.txt")
    args = ["--log-probs", probs, "--grammar", toy / "toy.grammar", "--dict", toy / "dict.txt", "--lengths",
            toy / "lengths.txt", "--gt", toy / "toy.gt", "--frame-sampling", 7, "--max-hypotheses", beam,
            "--max-length", max_length]
    check_against_published(capsys, case, args, tmp_path / "labels.txt")


def test_command_line_contract(tmp_path):
    """The exact interface outside checks use, as a subprocess: labels file plus a JSON last line."""
    toy = DATA / "toy"
    probs = unzip(toy / "toy.probs.gz", tmp_path / "p.txt")
    cmd = [sys.executable, "-m", "eval.align", "--log-probs", probs, "--grammar", toy / "toy.grammar",
           "--dict", toy / "dict.txt", "--lengths", toy / "lengths.txt", "--out", tmp_path / "labels.txt",
           "--gt", toy / "toy.gt"]
    done = subprocess.run([str(c) for c in cmd], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    labels = (tmp_path / "labels.txt").read_text().split("\n")[:-1]
    truth = (toy / "toy.gt").read_text().split("\n")[:-1]
    assert summary["frames"] == len(labels) == 900
    assert summary["mof"] == sum(a == b for a, b in zip(labels, truth)) / 900
    assert set(labels) <= set((toy / "dict.txt").read_text().split())


@pytest.fixture()
def toy_inputs(tmp_path):
    toy = DATA / "toy"
    files = {"probs": unzip(toy / "toy.probs.gz", tmp_path / "p.txt"), "grammar": toy / "toy.grammar",
             "dict": toy / "dict.txt", "lengths": toy / "lengths.txt", "gt": toy / "toy.gt"}
    return tmp_path, files


def run_with(capsys, tmp_path, files, **replace) -> tuple[int, str]:
    f = {**files, **replace}
    code, _, err = run_align(capsys, "--log-probs", f["probs"], "--grammar", f["grammar"], "--dict", f["dict"],
                             "--lengths", f["lengths"], "--gt", f["gt"], "--out", tmp_path / "labels.txt")
    return code, err


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("which, content, problem", [
    ("probs", None, "no such file"),
    ("probs", "0 -1 -2\n-1 -1 -1\n", "3 columns, the dictionary has 6 classes"),
    ("probs", "0 -1 -2 -3 -4 -5\n-1 -1 nan -1 -1 -1\n", "row 2 column 3: nan is not a finite float32"),
    ("probs", "0 -1 -2 -3 -4 -5\n-1 -1 -1\n", "not a numeric table"),
    ("probs", "-1 -2 -3 -4 -5 -1e39\n" * 30, "row 1 column 6: -1e+39 is not a finite float32"),
    ("probs", "-1 -2 -3 -4 -5 -6\n" * 3, "3 frames cannot be aligned"),
    ("grammar", "background a_x stir background\n", "line 1: label 'stir' is not in the dictionary"),
    ("grammar", "background a_x\n\nbackground\n", "line 2 is empty"),
    ("dict", "a_x\n\nb_x\n", "line 2 is empty"),
    ("lengths", "37.6\n12.2\n0\n45.5\n150\n60.4\n", "line 3: mean length must be a number of frames above 0.5"),
    ("lengths", "37.6\n12.2\n-80\n45.5\n150\n60.4\n", "line 3: mean length must be a number of frames above 0.5"),
    ("lengths", "37.6\nnan\n80\n45.5\n150\n60.4\n", "line 2: mean length must be a number of frames above 0.5"),
    ("lengths", "37.6\n12.2\n80\n45.5\n150\n", "5 mean lengths for the dictionary's 6 classes"),
    ("lengths", "37.6\n12.2\n80 1\n45.5\n150\n60.4\n", "line 3: expected one number"),
    ("gt", "background\n" * 10, "10 frame labels for 900 frames"),
])
def test_bad_input_is_one_error_line(toy_inputs, capsys, which, content, problem):
    tmp_path, files = toy_inputs
    path = tmp_path / f"bad-{which}"
    if content is not None:
        write(path, content)
    code, err = run_with(capsys, tmp_path, files, **{which: path})
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"error: {path}: ") and problem in err, err
