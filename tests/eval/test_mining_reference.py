"""The mining scorer's reference protocol runs the published aligner (the `python -m eval.align` decoder) on the
per-second scores at 30 frames per second, with frame-level ground truth as the published .gt files have it;
and the scorer refuses a lengths file with a zero, negative or NaN mean (issue 12)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from eval import align, score
from eval.metrics.alignment import log_softmax
from eval.predictions import BACKGROUND, PredictionsMeta, PredictionsWriter, read_predictions
from eval.scorers import mining
from manifests.benchmarks.mining import load_srt

SRT = {"a": "1\n00:00:02,000 --> 00:00:05,000\ncrack_egg\n\n2\n00:00:05,000 --> 00:00:07,400\nstir\n\n"
            "3\n00:00:09,100 --> 00:00:09,120\nsalt\n",
       "b": "1\n00:00:00,000 --> 00:00:03,000\nstir\n\n2\n00:00:04,500 --> 00:00:08,250\ncrack_egg\n"}
POOL = [BACKGROUND, "crack_egg", "stir", "salt"]
LENGTHS = {"crack_egg": 90.0, "stir": 60.0, BACKGROUND: 150.0}  # salt: absent, so the mean of all (100)


@pytest.fixture()
def bench(tmp_path):
    root = tmp_path / "bench" / "miningyoutube"
    (root / "annotations").mkdir(parents=True)
    for vid, text in SRT.items():
        (root / "annotations" / f"{vid}.srt").write_text(text)
    (root / "weakYouTube_dict.txt").write_text("".join(f"{name} \n" for name in LENGTHS))
    (root / "weakYouTube_length.txt").write_text("".join(f"{m}\n" for m in LENGTHS.values()))
    return tmp_path / "bench"


@pytest.fixture()
def predictions(tmp_path):
    rng = np.random.default_rng(12)
    path = tmp_path / "p.h5"
    with PredictionsWriter(path, PredictionsMeta("mining", "test")) as writer:
        for vid, seconds in (("a", 12), ("b", 10)):
            writer.add_temporal(vid, POOL, rng.normal(0, 2, (seconds, len(POOL))).astype(np.float32))
    return path


def test_frame_ground_truth_follows_the_published_gt_files(benchmarks_dir):
    """-1okAudsnAc.gt (29.97 fps) starts and ends its first five actions on exactly these frames."""
    folder = benchmarks_dir / "miningyoutube"
    segments = load_srt(folder / "annotations" / "-1okAudsnAc.srt")[:5]
    truth = [line.strip() for line in (folder / "-1okAudsnAc.gt").read_text().splitlines()]
    tr = mining.frame_transcript(segments, len(truth), 29.97, "-1okAudsnAc")
    changes = [0] + [i for i in range(1, len(truth)) if truth[i] != truth[i - 1]] + [len(truth)]
    assert tr.bounds.tolist() == changes
    assert [name == BACKGROUND for name in tr.labels] == [name == "background" for name in
                                                          [truth[i] for i in changes[:-1]]]


def test_frame_ground_truth_by_hand(tmp_path):
    (tmp_path / "v.srt").write_text("1\n00:00:02,000 --> 00:00:05,000\ncrack_egg\n\n"
                                    "2\n00:00:09,100 --> 00:00:09,120\nsalt\n")
    segments = load_srt(tmp_path / "v.srt")
    tr = mining.frame_transcript(segments, 300, 30, "a")
    # [round(60) - 1, round(150)) = [59, 150); salt: round(273) - 1 = 272 .. round(273.6) = 274
    assert tr.labels == (BACKGROUND, "crack_egg", BACKGROUND, "salt", BACKGROUND)
    assert tr.bounds.tolist() == [0, 59, 150, 272, 274, 300] and tr.not_sampled == 0


def aligner_by_command_line(tmp_path, capsys, bench, vid: str, scores: np.ndarray) -> tuple[list[str], list[str]]:
    """What `python -m eval.align` gives for one video: the scores as 30-fps log-probabilities over the pool,
    the frame transcript as the grammar, the pool's mean lengths. Returns (labels, ground truth per frame)."""
    n_frames = 30 * len(scores)
    tr = mining.frame_transcript(load_srt(bench / "miningyoutube" / "annotations" / f"{vid}.srt"), n_frames, 30,
                                 vid)
    frames = np.repeat(log_softmax(scores).astype(np.float32), 30, axis=0)
    folder = tmp_path / vid
    folder.mkdir()
    np.savetxt(folder / "p.txt", frames, fmt="%.9g")  # float32 round-trips through 9 digits
    (folder / "g.grammar").write_text(" ".join(tr.labels) + "\n")
    (folder / "dict.txt").write_text("".join(f"{name}\n" for name in POOL))
    fallback = float(np.mean(list(LENGTHS.values())))
    (folder / "lengths.txt").write_text("".join(f"{LENGTHS.get(name, fallback)!r}\n" for name in POOL))
    args = ["--log-probs", folder / "p.txt", "--grammar", folder / "g.grammar", "--dict", folder / "dict.txt",
            "--lengths", folder / "lengths.txt", "--out", folder / "labels.txt"]
    assert align.main([str(a) for a in args]) == 0
    capsys.readouterr()
    truth = np.repeat(np.array(tr.labels), np.diff(tr.bounds)).tolist()
    return (folder / "labels.txt").read_text().split("\n")[:-1], truth


def test_reference_protocol_is_the_published_aligner(bench, predictions, tmp_path, capsys):
    preds = read_predictions(predictions)
    metrics = mining.score(mining.MiningConfig(bench, protocol="reference"), preds)
    correct = frames = 0
    for vid in ("a", "b"):
        labels, truth = aligner_by_command_line(tmp_path, capsys, bench, vid, preds.temporal[vid].scores)
        correct += sum(x == y for x, y in zip(labels, truth))
        frames += len(labels)
        result = mining.score_video(mining.MiningConfig(bench, protocol="reference"),
                                    mining.length_model(mining.MiningConfig(bench), in_frames=True), vid,
                                    load_srt(bench / "miningyoutube" / "annotations" / f"{vid}.srt"),
                                    preds.temporal[vid])
        assert result.units == len(labels) and result.correct == sum(x == y for x, y in zip(labels, truth))
    assert metrics["frames"] == frames == 30 * 22 and metrics["frame_rate"] == 30
    assert metrics["mof"] == pytest.approx(100 * correct / frames)
    assert metrics["seconds"] == 22 and metrics["labels_with_fallback_length"] == 1  # salt


def test_reference_blocks_give_iou_and_iod_in_frames(bench, tmp_path, capsys):
    """Scores that name each second's true label: the aligned blocks sit on hypothesis steps (20 frames)."""
    path = tmp_path / "oracle.h5"
    with PredictionsWriter(path, PredictionsMeta("mining", "oracle")) as writer:
        seconds = np.array([2] * 3 + [0] + [1] * 4 + [0] * 2)  # b: stir 0-3 s, crack_egg 4.5-8.25 s
        scores = np.zeros((10, len(POOL)), np.float32)
        scores[np.arange(10), seconds] = 8.0
        writer.add_temporal("b", POOL, scores)
    metrics = mining.score(mining.MiningConfig(bench, protocol="reference", missing="miss"), read_predictions(path))
    per_video = metrics["per_video"]["b"]
    assert per_video["segments"] == 2 and 0.5 < per_video["iou"] <= 1.0 and per_video["iod"] > 0.5
    assert metrics["missing_videos"] == ["a"] and metrics["frames"] == 30 * 10 + 30 * 10  # a: up to 9.12 s


@pytest.mark.parametrize("protocol", ["paper", "reference"])
@pytest.mark.parametrize("bad", ["0", "-90", "nan"])
def test_scorer_refuses_bad_mean_lengths(bench, predictions, tmp_path, capsys, protocol, bad):
    lengths = tmp_path / "lengths.txt"
    lengths.write_text(f"90\n{bad}\n150\n")
    code = score.main(["mining", "--predictions", str(predictions), "--benchmark-dir", str(bench), "--protocol",
                       protocol, "--lengths", str(lengths)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"error: {lengths}: line 2: a mean length must be a positive number of frames"), err


def test_scorer_command_line_reference(bench, predictions, capsys):
    assert score.main(["mining", "--predictions", str(predictions), "--benchmark-dir", str(bench),
                       "--protocol", "reference"]) == 0
    metrics = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert metrics["protocol"] == "reference" and metrics["frames"] == 660 and metrics["segments"] == 5
