"""The fixed vocabulary of the synthetic world: objects, verbs, the task grammar and the ASR phrase lists.

Everything here is a constant so that step names are the same for every seed: per-class metrics, learning
and the demo's tables can rely on them. Twelve objects, each with its own colour (far from the others, from
the skin tones of the hands and from the muted table colours); every shape is shared by two objects, so the
colour word matters. A video shows the few objects of its task plus distractors, about 5 of the 12, so a
narration's object words tell its video apart from most others, as ingredients do in real recipes.
"""
from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class ObjectKind:
    colour: str
    shape: str
    rgb: RGB

    @property
    def name(self) -> str:
        return f"{self.colour} {self.shape}"


OBJECTS: tuple[ObjectKind, ...] = (
    ObjectKind("red", "circle", (220, 30, 35)),
    ObjectKind("blue", "square", (35, 75, 225)),
    ObjectKind("green", "triangle", (30, 170, 55)),
    ObjectKind("yellow", "star", (245, 215, 25)),
    ObjectKind("purple", "hexagon", (140, 45, 195)),
    ObjectKind("cyan", "cross", (20, 200, 210)),
    ObjectKind("violet", "square", (180, 140, 255)),
    ObjectKind("pink", "circle", (250, 90, 170)),
    ObjectKind("white", "triangle", (245, 245, 240)),
    ObjectKind("black", "hexagon", (25, 25, 30)),
    ObjectKind("magenta", "star", (235, 20, 235)),
    ObjectKind("lime", "cross", (140, 230, 20)),
)
OBJECT_BY_NAME = {o.name: o for o in OBJECTS}

# Verb -> (-ing form, synonyms ASR speakers use instead of the step's own verb).
VERBS: dict[str, tuple[str, tuple[str, ...]]] = {
    "move": ("moving", ("slide", "push")),
    "spin": ("spinning", ("rotate", "turn")),
    "grow": ("growing", ("inflate", "enlarge")),
    "shake": ("shaking", ("wiggle", "jiggle")),
    "flip": ("flipping", ("flip over", "turn over")),
}

# Task grammar: each task is an ordered recipe of (verb, object name); a video follows one task, possibly
# skipping steps. Every object appears in several tasks with different verbs, and no task uses an object
# twice, so within one video the object names its step.
TASKS: tuple[tuple[str, tuple[tuple[str, str], ...]], ...] = (
    ("tidy the table", (("move", "red circle"), ("spin", "violet square"), ("grow", "green triangle"),
                        ("shake", "lime cross"))),
    ("decorate the board", (("spin", "purple hexagon"), ("flip", "pink circle"), ("move", "cyan cross"),
                            ("grow", "blue square"))),
    ("fold the shapes", (("flip", "white triangle"), ("shake", "cyan cross"), ("spin", "yellow star"),
                         ("move", "black hexagon"))),
    ("set the stage", (("grow", "magenta star"), ("move", "blue square"), ("flip", "purple hexagon"),
                       ("spin", "red circle"), ("shake", "white triangle"))),
    ("pack the box", (("move", "violet square"), ("spin", "pink circle"), ("shake", "green triangle"),
                      ("flip", "black hexagon"))),
    ("paint the set", (("grow", "yellow star"), ("flip", "lime cross"), ("move", "pink circle"),
                       ("spin", "blue square"))),
    ("sort the pieces", (("shake", "purple hexagon"), ("grow", "white triangle"), ("spin", "lime cross"),
                         ("move", "magenta star"), ("flip", "red circle"))),
    ("build the tower", (("flip", "violet square"), ("move", "green triangle"), ("grow", "cyan cross"),
                         ("shake", "yellow star"))),
)


def step_name(verb: str, obj: str) -> str:
    """GroundingYouTube-style step name: short, lower case, spaces ("spin red circle")."""
    return f"{verb} {obj}"


def step_label(verb: str, obj: str) -> str:
    """MiningYouTube-style label: the step name with underscores ("spin_red_circle")."""
    return step_name(verb, obj).replace(" ", "_")


def step_sentence(verb: str, obj: str) -> str:
    """YouCook2-style sentence: an imperative with the article ("spin the red circle")."""
    return f"{verb} the {obj}"


def all_step_names() -> list[str]:
    """Every step name of the grammar, sorted (the class vocabulary; "background" is not included)."""
    return sorted({step_name(v, o) for _, steps in TASKS for v, o in steps})


# ASR imitation. Fillers open a step narration; follow-ups are said during a step without naming it;
# distractors describe nothing visible.
FILLERS = ("so", "okay now", "um", "now", "and then", "alright so", "next", "uh")
STEP_TEMPLATES = (
    "{filler} we {verb} the {obj}",
    "{filler} let's {verb} the {obj}",
    "{filler} you want to {verb} the {obj}",
    "{filler} {verb} the {obj} like this",
    "{filler} i'm {verb_ing} the {obj}",
    "{filler} {verb} the {obj}",
)
PARTIAL_TEMPLATES = ("{filler} {verb} the {shape}", "{filler} {verb} the {colour} one",
                     "{filler} take the {obj}")
FOLLOW_UPS = ("just like that", "keep going a little more", "see how easy that is", "a bit more",
              "there we go", "make sure you do it slowly", "do it one more time")
DISTRACTORS = ("don't forget to subscribe", "this is my favourite recipe", "hi everyone welcome back to my channel",
               "thanks for watching", "let me know in the comments", "i got this board at the store last week",
               "my kids love this one", "hit the like button if you enjoyed it")

# Muted table colours (low saturation: objects and hands stand out) and hand skin tones.
TABLE_COLOURS: tuple[RGB, ...] = ((128, 128, 134), (168, 166, 156), (108, 124, 118), (96, 102, 118),
                                  (150, 138, 120))
SKIN_TONES: tuple[RGB, ...] = ((236, 192, 160), (208, 152, 116), (164, 108, 78))
