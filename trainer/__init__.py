"""The trainer: methods learned from cached frozen features (the store), never running an encoder.

Commands
    python -m trainer.train --store STORE --out RUN_DIR --preset NAME [key=value ...]   (trainer.train)
    python -m trainer.train --out RUN_DIR --resume [runtime.KEY=VALUE ...]
    python -m trainer.methods.stg.bench                                                (stg's benchmark)
    python -m trainer.bench_narrations --store STORE                                   (the index at scale)

What evaluation uses
    trainer.checkpoint.load_trained(run_dir_or_checkpoint, device) -> TrainedHead(head, config, encoder_spec, step)
    trainer.methods.METHODS[config.method].inference(trained, device, **options) -> the method's adapter
    (grounding: similarity + maps; retrieval: item + embed; snippets: snippets + scores; see each method's
    inference.py)

Layout: methods/ (one folder per method and the METHODS registry), train_config (the common config sections),
data and narrations (narration samples, sampler, loader), video_frames (whole-video items), attention (attention
blocks), losses (contrastive losses), distributed (DDP gathers), optim, checkpoint, rundir, summary, train (the
loop), synthetic (generated stores), bench_narrations. It imports pipeline (the store, the config mechanism) and
manifests, never eval.
"""
