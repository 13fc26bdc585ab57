"""Writing a whole world to disk: videos, captions, benchmark annotations, manifests, world.json (last)."""
from __future__ import annotations

import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from manifests import builders
from manifests.build import assemble
from manifests.segments import WindowSpec
from manifests.synth.config import WorldConfig
from manifests.synth.render import render_video
from manifests.synth.sampling import make_world
from manifests.synth.world import World
from manifests.synth.writers import write_captions, write_gyt, write_mining, write_world, write_yc_interactions

OWNED = ("train", "test", "world.json")  # what --overwrite may delete inside the output directory


@dataclass(frozen=True)
class SynthPaths:
    root: Path
    world: Path
    train_videos: Path
    train_captions: Path
    train_manifest: Path
    test_videos: Path
    test_captions: Path
    benchmarks: Path  # --benchmark-dir for `python -m eval.score` (holds the three folders below)
    gyt: Path
    mining: Path
    yc_interactions: Path
    gyt_manifest: Path
    mining_manifest: Path
    yc_interactions_manifest: Path

    @classmethod
    def under(cls, root: str | Path) -> "SynthPaths":
        r = Path(root).absolute()
        bench = r / "test" / "benchmarks"
        return cls(root=r, world=r / "world.json", train_videos=r / "train" / "videos",
                   train_captions=r / "train" / "captions", train_manifest=r / "train" / "manifest",
                   test_videos=r / "test" / "videos", test_captions=r / "test" / "captions", benchmarks=bench,
                   gyt=bench / "groundingyoutube", mining=bench / "miningyoutube",
                   yc_interactions=bench / "youcook2_interactions", gyt_manifest=r / "test" / "manifests" / "gyt",
                   mining_manifest=r / "test" / "manifests" / "mining",
                   yc_interactions_manifest=r / "test" / "manifests" / "yc-interactions")

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class GenerationReport:
    paths: SynthPaths
    config: WorldConfig
    train_videos: int
    test_videos: int
    video_seconds: int
    frames: int
    timings: dict[str, float]  # seconds per phase and "total"

    def as_dict(self) -> dict:
        return {"out": str(self.paths.root), "train_videos": self.train_videos, "test_videos": self.test_videos,
                "video_seconds": self.video_seconds, "frames": self.frames,
                "timings": {k: round(v, 2) for k, v in self.timings.items()}, "seed": self.config.seed,
                "paths": self.paths.as_dict()}

    def summary(self) -> str:
        p, t = self.paths, self.timings
        lines = [f"synthetic world  {p.root}  (seed {self.config.seed})",
                 f"videos           {self.train_videos} train + {self.test_videos} test, {self.video_seconds} s, "
                 f"{self.frames} frames at {self.config.fps} fps, {self.config.width}x{self.config.height}",
                 f"time             {t['total']:.1f} s (render+encode {t['render']:.1f} s, annotations "
                 f"{t['annotations']:.1f} s, manifests {t['manifests']:.1f} s)",
                 f"ground truth     {p.world}"]
        if self.train_videos:
            lines.append(f"train            {p.train_videos}  captions {p.train_captions}  manifest {p.train_manifest}")
        if self.test_videos:
            lines += [f"test             {p.test_videos}",
                      f"benchmarks       {p.benchmarks}  (groundingyoutube/, miningyoutube/, youcook2_interactions/)",
                      f"eval manifests   {p.gyt_manifest.parent}  (gyt, mining, yc-interactions: the same whole "
                      f"videos at 1 fps)"]
        return "\n".join(lines)


def prepare_output(root: Path, overwrite: bool) -> None:
    """Refuse to write into a non-empty directory unless `overwrite` and it holds only a world's files."""
    if root.exists() and not root.is_dir():
        raise FileExistsError(f"{root}: exists and is not a directory")
    entries = sorted(p.name for p in root.iterdir()) if root.exists() else []
    if not entries:
        return
    foreign = [e for e in entries if e not in OWNED]
    if not overwrite or foreign:
        why = f"holds files that are not a synthetic world's ({foreign[:5]})" if foreign else "is not empty"
        raise FileExistsError(f"{root}: {why}; pass overwrite=True (--overwrite) to replace a generated world")
    for name in entries:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def render_all(world: World, paths: SynthPaths, jobs: int, progress: bool) -> None:
    """Render and encode every video, `jobs` at a time (each ffmpeg runs one thread)."""
    targets = {"train": paths.train_videos, "test": paths.test_videos}
    for split, directory in targets.items():
        if world.split(split):
            directory.mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool, \
            tqdm(total=len(world.videos), desc="rendering", unit="video", disable=not progress) as bar:
        futures = [pool.submit(render_video, v, targets[v.split] / f"{v.video_id}.mp4") for v in world.videos]
        for future in futures:
            future.result()
            bar.update()


def write_annotations(world: World, paths: SynthPaths) -> None:
    train, test = world.split("train"), world.split("test")
    if train:
        write_captions(train, paths.train_captions)
    if test:
        write_captions(test, paths.test_captions)
        write_gyt(test, paths.gyt)
        write_mining(test, paths.mining)
        write_yc_interactions(test, paths.yc_interactions, train=train)


def build_manifests(world: World, paths: SynthPaths, jobs: int, train_windows: WindowSpec | None = None) -> None:
    """The training manifest (HowTo100M builder: caption windows, by default 16 s at 5 fps) and the three
    evaluation manifests (GYT, YouCook2-Interactions, MiningYouTube builders: whole videos at 1 fps), with the
    real builders."""
    drafts = []
    if world.split("train"):
        drafts.append(("howto100m", paths.train_manifest,
                       builders.build_howto100m(paths.train_captions, paths.train_videos, dataset="synth-howto100m")))
    if world.split("test"):
        drafts += [
            ("gyt", paths.gyt_manifest, builders.build_gyt(paths.gyt, paths.test_videos, dataset="synth-gyt")),
            ("yc-interactions", paths.yc_interactions_manifest, builders.build_yc_interactions(
                paths.yc_interactions, paths.test_videos, dataset="synth-youcook2-interactions")),
            ("mining", paths.mining_manifest, builders.build_mining(
                paths.mining / "annotations", paths.test_videos, dataset="synth-miningyoutube")),
        ]
    for kind, out, draft in drafts:
        window = train_windows if kind == "howto100m" else None
        manifest = assemble(draft, window=window, jobs=jobs, progress=False, builder=kind,
                            args={"kind": kind, "generator": "manifests.synth", "seed": world.config.seed})
        manifest.write(out)


def generate(out: str | Path, config: WorldConfig = WorldConfig(), *, jobs: int = 2, manifests: bool = True,
             overwrite: bool = False, progress: bool = True, train_windows: WindowSpec | None = None
             ) -> GenerationReport:
    """Generate a world under `out` (see the package docstring for the layout); world.json is written last,
    so its presence marks a complete world. `train_windows` sets the training manifest's caption windows."""
    paths = SynthPaths.under(out)
    prepare_output(paths.root, overwrite)
    paths.root.mkdir(parents=True, exist_ok=True)
    clock = {"start": time.perf_counter()}
    world = make_world(config)
    clock["sample"] = time.perf_counter()
    render_all(world, paths, jobs, progress)
    clock["render"] = time.perf_counter()
    write_annotations(world, paths)
    clock["annotations"] = time.perf_counter()
    if manifests:
        build_manifests(world, paths, jobs, train_windows)
    clock["manifests"] = time.perf_counter()
    write_world(world, paths.world)
    clock["world"] = time.perf_counter()
    names = list(clock)
    timings = {b: clock[b] - clock[a] for a, b in zip(names, names[1:])}
    timings["total"] = clock["world"] - clock["start"]
    return GenerationReport(paths, config, len(world.split("train")), len(world.split("test")),
                            sum(v.duration for v in world.videos), sum(v.n_frames for v in world.videos), timings)
