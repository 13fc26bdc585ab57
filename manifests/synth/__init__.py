"""A synthetic world of narrated "instructional" videos whose ground truth is known, written in the real
datasets' formats so that the real builders, extraction, training and scorers run on it unchanged.

    python -m manifests.synth --out DIR [--seed 0] [--train-videos 24] [--test-videos 8] [--seconds 40-60]
        [--size 320x240] [--fps 10] [--object-size 0.26] [--table-colours 1] [--idle-hands 0.3]
        [--train-window 16 --train-fps 5] [--jobs 2] [--overwrite] ...

    from manifests.synth import WorldConfig, generate, make_world, read_world
    report = generate("DIR", WorldConfig(seed=0))   # GenerationReport: .paths (SynthPaths), .timings
    world = read_world(report.paths.world)            # == make_world(config): the ground truth, no pixels

World model (modules: vocab, geometry, world, sampling, narration, render, writers, generate)
- Objects: twelve fixed kinds, each with its own colour, every shape shared by two (red circle, pink circle,
  blue square, violet square, green triangle, white triangle, yellow star, magenta star, purple hexagon, black
  hexagon, cyan cross, lime cross); a video shows about 5 of them. Diameter `object_size` x the short side
  (default 0.26: 62 px of 240, about 1.8 x 1.8 cells of the 7x7 grid of a 224 crop), with a darker stripe
  through the centre (so a rotation shows in one frame). They rest at random places on a textured table (a
  muted colour, by default the same in every video (`table_colours`), and each video's own wood-like grain;
  a table colour changing from video to video dominates random encoders' frame features), never touching;
  with `crop_safe` (default) object centres stay inside the centred square that a short-side resize + 224
  centre crop keeps, so `--resize center-crop` and `squash` both see every object.
- Tasks: a fixed grammar (`vocab.TASKS`) of 8 tasks with 4-5 ordered steps (verb + object); a video follows
  one task, skipping each step with `skip_step` (keeping at least 2) and dropping trailing steps that do
  not fit its length. Steps use distinct objects within a task, so within a video the object names the
  step. 34 step names in all (`vocab.all_step_names()`), e.g. "spin red circle".
- Steps happen one at a time over whole-second intervals [start, end) (`step_seconds`, default 4-8 s) with
  background stretches of at least `min_gap` s before, between and after them. During a step a hand (a
  palm about as large as the object, with a forearm of 3.5 radii) grips the actor, which is lifted (drawn
  1.8x larger, casting a shadow) and moves to a new free place (where it rests afterwards), spins one
  turn, grows to 1.3x more and back, shakes, or flips (narrows to 30 % and back): every verb shows in a
  single frame. The actor's place differs per video and moves, so a centre prior is beatable. With
  `idle_hands` a background stretch shows a hand over empty table for up to 3 s (a hand alone does not
  mean an action). 1-2 `distractors` are never acted on; objects at rest never move.
- Narrations (ASR imitation, `narration`): per step one lower-case line without punctuation that names
  it loosely ("um let's spin the red circle", sometimes a synonym: "rotate", or a partial name: "the
  circle", "the red one"), starting at step start + per-video bias U(-1, 2) s + U(-1.5, 1.5) s, 1.5-3.5 s
  long; 10 % of steps are never narrated; some steps get a vague follow-up ("keep going a little more");
  1-3 distractor lines per video describe nothing visible ("don't forget to subscribe"), the first in the
  intro. Times are rounded to 0.01 s and clipped to the video.

Time and box conventions (the pipeline's): frame i of a video is shown at t = i / fps; "second s" is the
frame at t = s (frame s * fps exactly, fps is a whole number). A step [start, end) covers seconds
start..end-1. The box of a step at second s is the actor's bounding box in that frame: inclusive pixel
indices [x1, y1, x2, y2] of the pixels the object's shape covers (coverage >= 0.5; the hand is not part
of it), in the video's own pixel coordinates. Boxes come from the same coverage the renderer paints
(`geometry.object_sprite`), so they match the pixels exactly.

Layout under DIR (world.json is written last: its presence marks a complete world)
    world.json                      config, vocabulary and every video's ground truth (below)
    train/videos/<vid>.mp4          H.264 (yuv420p, crf 18, one thread, bit-exact flags, no metadata)
    train/captions/<vid>.csv        HowTo100M narration CSV: header start,end,text; times with 2 decimals
    train/manifest/                 `manifests.build howto100m` (caption windows, merged: --train-window s at
                                    --train-fps, default 16 s at 5 fps)
    test/videos/<vid>.mp4, test/captions/<vid>.csv
    test/benchmarks/                --benchmark-dir for `python -m eval.score` and the gyt builder
      groundingyoutube/
        box_anno.json               {vid: [{"second", "box", "step_name"}]}: every second of every step
        id2xy_box.json              {vid: {"<second>": box}}: the same boxes without steps (reference protocol)
        ground_seg.json             {vid: [{"segment": [start, end - 1], "id", "sentence": step name}]}
                                    (whole seconds, inclusive: exactly the boxed seconds)
        ground_seg_3to20.json       the same kept at 3 <= e - s <= 20, ids renumbered (the default segments)
        seg.json                    underscore labels, spans from the .srt times by the released file's
                                    symmetric trimming (`writers.seg_json_span`)
        vid2step.json               {vid: [ordered step names of ground_seg_3to20, "background"]}
        id2wh.json, id2wh_new.json  {vid: [W, H]}: the rendered size (boxes are in it, no resizing)
      miningyoutube/
        annotations/<vid>.srt       one block per step, label "spin_red_circle", start/end = the step's
                                    [start, end) in ms; UTF-8 BOM and CRLF as released; background = gaps
        weakYouTube_dict.txt        every grammar label sorted, then "background" (class-id order)
        weakYouTube_length.txt      150 (frames at 30 fps) for every class, as released: no length prior
        videos_test.txt             the test video ids
      youcook2_interactions/
        final_dataset_segments.pkl  {(vid, start, end)} per step, protocol-3 pickle of builtins only
        final_dataset_annotations.pkl  {vid: {frame_id: (x1, y1, x2, y2)}}, frame_id = second + 1 (1-based)
                                    for every boxed second; boxes in the 640x360 frame when the video is
                                    larger than that in both dimensions (rounded to half pixels), else in
                                    the video's own pixels (the released rule)
        youcookii_annotations_trainval.json  YouCook2 schema: test videos as "validation", train videos as
                                    "training"; sentences "spin the red circle", segments [start, end]
    test/manifests/{gyt,yc-interactions,mining}/  the real builders' evaluation manifests (whole videos at
                                    1 fps; the same segments, so extracting one of them covers all three)

Scoring: `python -m eval.score {gyt,gyt-spatial,youcook,mining} --benchmark-dir DIR/test/benchmarks`; the
YouCook2-Interactions scorer assumes 640x360 frames unless told: pass `--sizes
DIR/test/benchmarks/groundingyoutube/id2wh_new.json` (or `--frame-size 320x240`).

world.json: {"format": "groundcache-synth-world", "version": 1, "config": WorldConfig fields,
"vocabulary": {"steps", "labels", "background", "objects", "verbs", "tasks"}, "videos": [VideoSpec fields
(objects with rgb and initial centre, steps with from_xy/to_xy, idle_hands, narrations with kind
"step" | "follow_up" | "distractor") + "annotations": {"labels": per-second step name or "background",
"steps": [{"index", "name", "label", "sentence", "seconds": [[s, x1, y1, x2, y2]], "frame_boxes":
[[frame, x1, y1, x2, y2]] at the video's fps}], "object_boxes": {object: per-second box ([] when off
screen)}, "hand_boxes": per-second hand box or []}]}. `read_world` rebuilds the `World` from it.

Determinism: one seed fixes everything; each video draws from its own stream (seed, split, index), so a
video does not change with the number of videos, and narrations draw from a separate stream. Same seed ->
byte-identical videos, captions, annotation files and world.json (sets are pickled sorted); manifests hold
absolute paths and a creation time.
"""
from manifests.synth.config import WorldConfig
from manifests.synth.generate import GenerationReport, SynthPaths, generate
from manifests.synth.render import render_frames, render_video
from manifests.synth.sampling import make_world
from manifests.synth.world import BACKGROUND, Narration, SceneObject, Step, VideoSpec, World
from manifests.synth.writers import read_world, write_world

__all__ = [
    "BACKGROUND", "GenerationReport", "Narration", "SceneObject", "Step", "SynthPaths", "VideoSpec", "World",
    "WorldConfig", "generate", "make_world", "read_world", "render_frames", "render_video", "write_world",
]
