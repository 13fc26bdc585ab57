"""The `train` command's common config sections: `data`, `optim`, `runtime`, and the `TrainConfig` that holds
them plus exactly one method section (`trainer.methods`: `stg.*`, `comma.*`, `coot.*` or `wsra.*`).
Defaults follow the STG paper (Chen et al. CVPR 2024, CLIP backbone); where the paper is silent they take the
released code's value; each method's presets set its own paper's values.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipeline.config import ConfigError, above, at_least


@dataclass(frozen=True)
class DataConfig:
    encoder: Literal["clip", "s3d"] = "clip"        # which store features train the head
    expect: dict = field(default_factory=dict)      # partial encoder spec the store must match (else refused)
    store_fps: float | None = None                  # read only segments extracted at this rate (None: all)
    window_s: float = 16.0                          # candidate window length (paper: 16 s)
    anchor: Literal["center", "start"] = "center"   # window centred on the narration, or from its start (code)
    fps: float | None = 5.0                         # candidate rate; None: every stored row (s3d windows)
    candidates: int = 80                            # U, padded + masked past the video edges
    sampling: Literal["per_video", "per_narration"] = "per_video"  # one random narration per video per epoch
    kinds: tuple[str, ...] = ()                     # caption kinds to train on (empty: all timed captions)
    batch_size: int = 64                            # global batch over all ranks
    workers: int = 4                                # DataLoader worker processes
    prefetch: int = 4                               # batches prefetched per worker
    caption_cache: int = 32                         # videos whose captions a worker keeps in memory
    sample_cache_mb: float = 0.0                    # assembled samples each process keeps for later epochs
                                                    # (MB; 0: off); small stores then train from memory

    def __post_init__(self) -> None:
        at_least("data", 1, candidates=self.candidates, prefetch=self.prefetch)
        at_least("data", 2, batch_size=self.batch_size)  # contrastive: a batch needs negatives
        at_least("data", 0, workers=self.workers, caption_cache=self.caption_cache,
                 sample_cache_mb=self.sample_cache_mb)
        above("data", 0, window_s=self.window_s, fps=self.fps, store_fps=self.store_fps)
        if self.encoder == "s3d" and self.fps is not None:
            raise ValueError("data.fps must be null for s3d: its candidates are the stored windows")


@dataclass(frozen=True)
class OptimConfig:
    name: Literal["adam", "adamw", "radam"] = "adam"  # paper: Adam; code: AdamW (0.01); COOT: RAdam
    lr: float = 1e-4
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    schedule: Literal["cosine", "constant", "plateau"] = "cosine"  # after warmup, per step; plateau: constant,
                                                    # reduced on a validation plateau (COOT appendix A.1)
    warmup_steps: int = 5000                        # linear warmup from 0 (code: 5000)
    warmup_epochs: float = 0.0                      # warmup in epochs (x steps per epoch); excludes warmup_steps
                                                    # (CoMMA Sec. 4: "an epoch equivalent of steps"; COOT Table 7)
    clip_grad: float = 0.0                          # max global grad norm (0: off)
    epochs: int = 10
    max_steps: int = 0                              # stop after this many steps (0: epochs x steps per epoch)
    val_videos: int = 0                             # training-store videos held out for validation (0: none)
    monitor: str = "loss"                           # validation value the plateau and early stop watch
    monitor_mode: Literal["min", "max"] = "min"     # lower (loss) or higher (recall) is better
    plateau_factor: float = 0.1                     # lr x factor on a plateau (COOT A.1: "by a factor of 10")
    plateau_patience: int = 5                       # bad epochs tolerated (COOT Table 7, YouCook2: 5)
    plateau_cooldown: int = 3                       # epochs after a reduction without counting (Table 7: 3)
    plateau_threshold: float = 1e-4                 # relative improvement that counts (torch ReduceLROnPlateau)
    early_stop: int = 0                             # stop after this many epochs without improvement (0: off;
                                                    # COOT A.1: 15)

    def __post_init__(self) -> None:
        above("optim", 0, eps=self.eps)
        # lr 0 is allowed: a run that keeps its initial weights (the untrained baseline of tests and tables)
        at_least("optim", 0, lr=self.lr, weight_decay=self.weight_decay, warmup_steps=self.warmup_steps,
                 clip_grad=self.clip_grad, max_steps=self.max_steps, epochs=self.epochs,
                 warmup_epochs=self.warmup_epochs, val_videos=self.val_videos, early_stop=self.early_stop,
                 plateau_patience=self.plateau_patience, plateau_cooldown=self.plateau_cooldown,
                 plateau_threshold=self.plateau_threshold)
        if self.epochs == 0 and self.max_steps == 0:
            raise ConfigError("optim.epochs must be >= 1 when optim.max_steps is 0 (the run would take no step)")
        if not all(0 <= b < 1 for b in self.betas):  # also false for NaN
            raise ConfigError(f"optim.betas must each lie in [0, 1), got {list(self.betas)}")
        self._check_schedule()

    def _check_schedule(self) -> None:
        if self.warmup_steps > 0 and self.warmup_epochs > 0:
            raise ConfigError(f"optim.warmup_steps ({self.warmup_steps}) and optim.warmup_epochs "
                              f"({self.warmup_epochs:g}) are both set: set one of them to 0")
        if not 0 < self.plateau_factor < 1:  # also false for NaN
            raise ConfigError(f"optim.plateau_factor must lie in (0, 1), got {self.plateau_factor}")
        if (self.schedule == "plateau" or self.early_stop) and not self.val_videos:
            raise ConfigError("optim.schedule=plateau and optim.early_stop need a validation split: set "
                              "optim.val_videos > 0 (videos of the training store held out)")
        if not self.monitor:
            raise ConfigError("optim.monitor must name a validation value (e.g. loss)")


@dataclass(frozen=True)
class RuntimeConfig:
    """Settings that do not change the numbers; the only ones `--resume` accepts as overrides."""
    device: str = "auto"                            # auto: cuda:LOCAL_RANK when available, else cpu
    workers: int | None = None                      # overrides data.workers
    log_every: int = 10                             # steps between metrics lines
    checkpoint_every: int = 0                       # steps between checkpoints (0: each epoch end)
    keep_checkpoints: int = 2                       # newest step checkpoints kept (0: all)
    progress: bool = True                           # tqdm bar

    def __post_init__(self) -> None:
        at_least("runtime", 0, workers=self.workers, checkpoint_every=self.checkpoint_every,
                 keep_checkpoints=self.keep_checkpoints)
        at_least("runtime", 1, log_every=self.log_every)


@dataclass(frozen=True)
class TrainConfig:
    """The common sections; `trainer.methods.config_class(method)` adds the method's own section, named after it."""

    method: str = "stg"                             # trainer.methods.METHODS: stg, comma, coot, wsra
    seed: int = 1
    precision: Literal["auto", "float32", "bf16"] = "auto"  # auto: bf16 autocast on GPU, float32 on CPU
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    def __post_init__(self) -> None:
        if not 0 <= self.seed < 2 ** 32:  # numpy's seed range
            raise ConfigError(f"seed must lie in [0, 2**32), got {self.seed}")
        section = getattr(self, self.method, None)
        if section is None:
            raise ConfigError(f"no section {self.method!r} for method {self.method!r}: build the config with "
                              f"trainer.methods.load_train_config")
        if hasattr(section, "check"):
            section.check(self)

    @property
    def section(self):
        """The method's own section (`cfg.stg`, `cfg.coot`, ...)."""
        return getattr(self, self.method)
