"""The one configuration of a synthetic world (every knob of the generator, with the demo's defaults)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from manifests.synth.vocab import TABLE_COLOURS

IntRange = tuple[int, int]
FloatRange = tuple[float, float]


@dataclass(frozen=True)
class WorldConfig:
    seed: int = 0
    train_videos: int = 24
    test_videos: int = 8
    seconds: IntRange = (40, 60)  # video length, whole seconds, drawn per video
    width: int = 320
    height: int = 240
    fps: int = 10  # whole number, so the frame at every whole second exists (second s = frame s * fps)
    object_size: float = 0.26  # object diameter as a fraction of the frame's short side
    distractors: IntRange = (1, 2)  # objects in the scene that no step acts on (as many as are left)
    step_seconds: IntRange = (4, 8)  # length of one action
    min_gap: int = 2  # shortest background stretch before, between and after actions
    skip_step: float = 0.15  # chance that a video skips a step of its task (at least 2 steps are kept)
    idle_hands: float = 0.3  # chance that a background stretch shows a hand touching nothing
    crop_safe: bool = True  # keep objects inside the centred square a 224 centre crop sees
    table_colours: int = 1  # table colours the videos draw from (vocab.TABLE_COLOURS); every video has its own
    #                         grain. One colour by default: a table colour that changes from video to video
    #                         dominates random encoders' frame features and drowns the objects in them
    # narrations (ASR imitation)
    narration_bias: FloatRange = (-1.0, 2.0)  # per-video lag of speech behind the action, seconds
    narration_jitter: float = 1.5  # plus uniform(-jitter, jitter) per narration
    narration_drop: float = 0.1  # chance a step is never narrated
    follow_up: float = 0.35  # chance of a vague second line during a step ("keep going a little more")
    synonym: float = 0.2  # chance the speaker uses another verb ("rotate" for "spin")
    partial_name: float = 0.15  # chance the object is named partly ("the circle", "the red one")
    distractor_narrations: IntRange = (1, 3)  # lines about nothing visible, per video

    def __post_init__(self) -> None:
        for name in ("seconds", "distractors", "step_seconds", "distractor_narrations", "narration_bias"):
            lo, hi = getattr(self, name)
            if lo > hi:
                raise ValueError(f"{name}: range {lo}..{hi} is empty")
        checks = [
            (self.train_videos >= 0 and self.test_videos >= 0, "video counts must be >= 0"),
            (self.train_videos + self.test_videos > 0, "a world needs at least one video"),
            (self.width % 2 == 0 and self.height % 2 == 0 and min(self.width, self.height) >= 64,
             "width and height must be even and at least 64 (H.264 4:2:0)"),
            (self.fps >= 1, "fps must be a whole number >= 1"),
            (1 <= self.table_colours <= len(TABLE_COLOURS), f"table_colours must lie in 1..{len(TABLE_COLOURS)}"),
            (0.08 <= self.object_size <= 0.34, "object_size must lie in [0.08, 0.34] of the short side"),
            (self.step_seconds[0] >= 1 and self.min_gap >= 1, "steps and gaps last at least 1 s"),
            (self.seconds[0] >= self.step_seconds[0] + 2 * self.min_gap,
             f"videos of {self.seconds[0]} s cannot hold one step of {self.step_seconds[0]} s between two "
             f"gaps of {self.min_gap} s"),
            (self.distractors[0] >= 0 and self.distractor_narrations[0] >= 0, "counts must be >= 0"),
            (self.narration_jitter >= 0, "narration_jitter must be >= 0"),
        ]
        for p in ("skip_step", "idle_hands", "narration_drop", "follow_up", "synonym", "partial_name"):
            checks.append((0.0 <= getattr(self, p) <= 1.0, f"{p} is a probability"))
        for ok, message in checks:
            if not ok:
                raise ValueError(message)

    @property
    def radius(self) -> float:
        """Object radius in pixels."""
        return self.object_size * min(self.width, self.height) / 2

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "WorldConfig":
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown world config keys {unknown}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def parse_range(text: str, kind: type = int) -> tuple:
    """'40-60' -> (40, 60); '50' -> (50, 50)."""
    lo, sep, hi = text.partition("-")
    try:
        a = kind(lo)
        b = kind(hi) if sep else a
    except ValueError as exc:
        raise ValueError(f"expected a number or a range like 40-60, got {text!r}") from exc
    return (a, b)


def parse_size(text: str) -> tuple[int, int]:
    """'320x240' -> (320, 240)."""
    w, sep, h = text.lower().partition("x")
    if not (sep and w.isdigit() and h.isdigit()):
        raise ValueError(f"size must look like 320x240, got {text!r}")
    return int(w), int(h)
