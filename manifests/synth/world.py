"""The world model: what is in each video and where everything is at any time.

A video is a static table with objects at rest. Steps happen one at a time over whole-second intervals
[start, end): during a step one object (the actor) is handled — a hand grips it and lifts it (drawn LIFT
times larger) — and it moves, spins, grows, shakes or flips; the others stay still. After a "move" the actor
rests at its new place. Outside steps nothing is handled, except "idle hands" that hover over empty table
(a background distractor).
`VideoSpec.object_pose`, `hand_pose` and `object_box` are pure functions of time, shared by the renderer
and the annotation writers.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from manifests.synth.config import WorldConfig
from manifests.synth.geometry import Pose, hand_sprite, object_box
from manifests.synth.vocab import RGB, step_label, step_name, step_sentence

Box = tuple[int, int, int, int]
SPLITS = ("train", "test")
BACKGROUND = "background"
IDLE_WIGGLE = 0.15  # how far an idle hand drifts, in object radii
LIFT = 1.8  # a handled object is lifted towards the camera: drawn this much larger (and so, like a
#            demonstrated object in a real video, it fills more of the frame while it is handled)
GROW = 0.3  # "grow" swells the lifted object by this much more at the middle of its step


@dataclass(frozen=True)
class SceneObject:
    name: str  # "red circle"
    colour: str
    shape: str
    rgb: RGB
    x: float  # initial rest position (pixels)
    y: float


@dataclass(frozen=True)
class Step:
    index: int
    verb: str
    obj: int  # index into VideoSpec.objects
    object_name: str
    start: int  # seconds; the action lasts [start, end)
    end: int
    from_xy: tuple[float, float]  # rest position before the step
    to_xy: tuple[float, float]  # rest position after it (differs only for "move")

    @property
    def name(self) -> str:
        return step_name(self.verb, self.object_name)

    @property
    def label(self) -> str:
        return step_label(self.verb, self.object_name)

    @property
    def sentence(self) -> str:
        return step_sentence(self.verb, self.object_name)

    @property
    def seconds(self) -> range:
        """Whole seconds s whose frame (at t = s) shows the action."""
        return range(self.start, self.end)


@dataclass(frozen=True)
class IdleHand:
    start: int  # seconds, [start, end)
    end: int
    x: float
    y: float


@dataclass(frozen=True)
class Narration:
    start: float
    end: float
    text: str
    kind: str  # "step" (names a step), "follow_up" (said during a step, names nothing), "distractor"
    step: int | None  # the step it belongs to (step and follow_up kinds)


@dataclass(frozen=True)
class VideoSpec:
    video_id: str
    split: str
    task: int
    task_name: str
    duration: int  # seconds
    fps: int
    width: int
    height: int
    radius: float  # object radius, pixels
    table_rgb: RGB
    skin_rgb: RGB
    hand_angle: float  # direction the forearm points, radians (screen coordinates, y down)
    texture_seed: int
    objects: tuple[SceneObject, ...]
    steps: tuple[Step, ...]
    idle_hands: tuple[IdleHand, ...]
    narrations: tuple[Narration, ...] = ()

    @property
    def n_frames(self) -> int:
        return self.duration * self.fps

    def step_at(self, t: float) -> Step | None:
        return next((s for s in self.steps if s.start <= t < s.end), None)

    def background_spans(self) -> list[tuple[int, int]]:
        """Whole-second [a, b) stretches without a step: before, between and after the steps."""
        bounds = [0] + [t for s in self.steps for t in (s.start, s.end)] + [self.duration]
        return [(bounds[i], bounds[i + 1]) for i in range(0, len(bounds), 2)]

    def label_at_second(self, second: int) -> str:
        step = self.step_at(second)
        return BACKGROUND if step is None else step.name

    def object_pose(self, obj: int, t: float) -> Pose:
        x, y = self.objects[obj].x, self.objects[obj].y
        for step in self.steps:
            if step.obj != obj or t < step.start:
                continue
            if t < step.end:
                return action_pose(step, t, self.radius)
            x, y = step.to_xy
        return Pose(x, y)

    def hand_pose(self, t: float) -> tuple[float, float] | None:
        """Where the palm is at time t (None: no hand on screen)."""
        step = self.step_at(t)
        if step is not None:
            pose = self.object_pose(step.obj, t)
            reach = 0.8 * self.radius * max(pose.sx, pose.sy)  # the palm grips the actor's edge
            return pose.x + reach * math.cos(self.hand_angle), pose.y + reach * math.sin(self.hand_angle)
        for idle in self.idle_hands:
            if idle.start <= t < idle.end:
                dt = t - idle.start
                wiggle = IDLE_WIGGLE * self.radius
                return idle.x + wiggle * math.sin(2 * math.pi * 0.7 * dt), idle.y + wiggle * math.sin(2 * math.pi * dt)
        return None

    def object_box(self, obj: int, t: float) -> Box | None:
        return object_box(self.objects[obj].shape, self.object_pose(obj, t), self.radius, self.width, self.height)

    def hand_box(self, t: float) -> Box | None:
        palm = self.hand_pose(t)
        sprite = None if palm is None else hand_sprite(*palm, self.hand_angle, self.radius, self.width, self.height)
        return None if sprite is None else sprite.box()

    def step_boxes(self, step: Step) -> list[tuple[int, Box]]:
        """(second, box of the actor in the frame at t = second) for every second of the step."""
        return [(s, self.object_box(step.obj, float(s))) for s in step.seconds]


def _smoothstep(p: float) -> float:
    return p * p * (3 - 2 * p)


def action_pose(step: Step, t: float, radius: float) -> Pose:
    """The actor's pose at time t during its step (phase p runs from 0 at the start towards 1 at the end).
    A handled object is lifted: drawn LIFT times larger, with a shadow (see render)."""
    p = (t - step.start) / (step.end - step.start)
    (x0, y0), (x1, y1) = step.from_xy, step.to_xy
    if step.verb == "move":
        k = _smoothstep(p)
        return Pose(x0 + (x1 - x0) * k, y0 + (y1 - y0) * k, sx=LIFT, sy=LIFT)
    if step.verb == "spin":
        return Pose(x0, y0, angle=2 * math.pi * p, sx=LIFT, sy=LIFT)
    if step.verb == "grow":
        scale = LIFT * (1 + GROW * math.sin(math.pi * p))
        return Pose(x0, y0, sx=scale, sy=scale)
    if step.verb == "shake":
        dt, amp = t - step.start, 0.28 * radius
        return Pose(x0 + amp * math.sin(2 * math.pi * 2.5 * dt), y0 + 0.6 * amp * math.sin(2 * math.pi * 3.7 * dt),
                    angle=0.25 * math.sin(2 * math.pi * 3 * dt), sx=LIFT, sy=LIFT)
    if step.verb == "flip":
        return Pose(x0, y0, sx=LIFT * max(0.3, abs(math.cos(math.pi * p))), sy=LIFT)  # never thinner than 30 %
    raise ValueError(f"unknown verb {step.verb!r}")


@dataclass(frozen=True)
class World:
    config: WorldConfig
    videos: tuple[VideoSpec, ...]

    def split(self, name: str) -> tuple[VideoSpec, ...]:
        return tuple(v for v in self.videos if v.split == name)

    def video(self, video_id: str) -> VideoSpec:
        for v in self.videos:
            if v.video_id == video_id:
                return v
        raise KeyError(f"no video {video_id!r} in this world")


def video_to_dict(video: VideoSpec) -> dict:
    return asdict(video)


def video_from_dict(d: dict) -> VideoSpec:
    """Inverse of `video_to_dict` (extra keys, such as derived annotations in world.json, are ignored)."""
    objects = tuple(SceneObject(o["name"], o["colour"], o["shape"], tuple(o["rgb"]), o["x"], o["y"])
                    for o in d["objects"])
    steps = tuple(Step(s["index"], s["verb"], s["obj"], s["object_name"], s["start"], s["end"], tuple(s["from_xy"]),
                       tuple(s["to_xy"])) for s in d["steps"])
    idle = tuple(IdleHand(h["start"], h["end"], h["x"], h["y"]) for h in d["idle_hands"])
    narrations = tuple(Narration(n["start"], n["end"], n["text"], n["kind"], n["step"]) for n in d["narrations"])
    scalars = {k: d[k] for k in ("video_id", "split", "task", "task_name", "duration", "fps", "width", "height",
                                 "radius", "hand_angle", "texture_seed")}
    return VideoSpec(**scalars, table_rgb=tuple(d["table_rgb"]), skin_rgb=tuple(d["skin_rgb"]), objects=objects,
                     steps=steps, idle_hands=idle, narrations=narrations)
