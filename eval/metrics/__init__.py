"""Metrics as pure functions over numpy arrays (no files, no annotations, no model).

- `heatmaps`: upsampling to the frame size exactly like the reference (torch bilinear, align_corners=False),
  first-maximum pointing, thresholded masks and their overlap with boxes.
- `boxes`: box pixel sets (paper and reference conventions), pointing hits, IoU, uniform-prior expectations.
- `video_ap`: ACT-style video AP over spatio-temporal tubes (voxel IoU or temporal x mean spatial IoU).
- `spatiotemporal`: the IoU+Pointing game of untrimmed spatio-temporal grounding.
- `alignment`: ordered (transcript) alignment of per-second class scores with a Poisson length model.
- `temporal`: segments of a per-second labelling, per-segment IoU / IoD, mean over frames (MoF).
"""
