"""The trainer: grounding heads learned from cached frozen features (the store), never running an encoder.

Commands
    python -m trainer.train --store STORE --out RUN_DIR --preset NAME [key=value ...]   (trainer.train)
    python -m trainer.train --out RUN_DIR --resume [runtime.KEY=VALUE ...]
    python -m trainer.bench                                                            (trainer.bench)

What evaluation uses
    trainer.checkpoint.load_trained(run_dir_or_checkpoint, device) -> TrainedHead(head, config, encoder_spec, step)
    head.video_embedding(frame_vectors [..., Dg]) -> [..., d]      per-frame global embeddings (stg)
    head.global_video(frame_vectors [B, F, Dg], frame_mask [B, F]) -> [B, d]   pooled clip embedding (stg)
    head.global_text(sentence [B, Ds], words [B, W, Dw], word_mask [B, W]) -> [B, d]              (stg)
    head.rollout(grid [C, F, *cells, Dg], words [W, Dw], word_mask [W], frame_mask [C, F]) -> [C, F, *cells]
    head.attention_maps(grid, words, word_mask, frame_mask) -> per layer: CA region->word [C, R, W],
        CA word->region [C, W, R], text self-attention [C, W, W]  (eval-mode attention, the rollout's inputs)
    head.local_scores(grid, words, word_mask, frame_mask) -> [C]   local (CoMMA) similarity per chunk
    trainer.config.load_config(cls, preset, overrides, preset_dir)  the generic typed-config mechanism

Modules: config (generic configs), train_config (the train command's fields), method_config (the coot and
wsra sections), data (samples, sampler, loader), video_data (whole-video items of coot and wsra), selection
(Sinkhorn frame selection), heads (registry: stg, comma, coot, wsra), losses, coot_losses, wsra_losses, model,
coot_model, wsra_model (one step's computation per head family), distributed (DDP gathers), optim,
checkpoint, rundir, summary, synthetic (generated stores).
"""
