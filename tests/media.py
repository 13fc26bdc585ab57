"""Generated test videos (ffmpeg through the project's wrapper): we know exactly what each frame shows."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from manifests.ffmpeg import run

# Distinct, saturated colours: frame content during second k is PALETTE[k % len(PALETTE)].
PALETTE = np.array(
    [[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [255, 0, 255], [0, 255, 255],
     [255, 255, 255], [0, 0, 0], [255, 128, 0], [128, 0, 255]], dtype=np.uint8)


def colour_index(frame: np.ndarray) -> int:
    """Index of the palette colour closest to the mean colour of a decoded frame."""
    mean = frame.reshape(-1, 3).astype(np.float64).mean(0)
    return int(np.argmin(((PALETTE.astype(np.float64) - mean) ** 2).sum(1)))


def colour_per_second_frames(seconds: float, fps: float, width: int, height: int) -> np.ndarray:
    n = int(round(seconds * fps))
    idx = (np.arange(n) / fps).astype(np.int64) % len(PALETTE)  # floor(t) for frame time t = i/fps
    return np.broadcast_to(PALETTE[idx][:, None, None, :], (n, height, width, 3)).copy()


def write_frames(path: Path, frames: np.ndarray, fps: float, *, codec: str = "libx264",
                 extra: tuple[str, ...] = (), audio: bool = False) -> Path:
    """Encode uint8 RGB frames [N,H,W,3] to `path` at a constant `fps`."""
    n, h, w, _ = frames.shape
    args = ["-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps}",
            "-i", "pipe:0"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:duration={n / fps}"]
    args += ["-c:v", codec]
    if codec == "libx264":
        args += ["-pix_fmt", "yuv444p" if (w % 2 or h % 2) else "yuv420p", "-crf", "12", "-g", "30"]
    if audio:
        args += ["-c:a", "aac", "-shortest"]
    run([*args, *extra, str(path)], what=f"writing test video {path}", stdin=frames.tobytes())
    return Path(path)


def colour_video(path: Path, seconds: float = 6, fps: float = 25, width: int = 160, height: int = 120,
                 **kw) -> Path:
    """A video whose colour changes every second (see PALETTE)."""
    return write_frames(path, colour_per_second_frames(seconds, fps, width, height), fps, **kw)


def rotate_metadata(src: Path, dst: Path, degrees: int) -> Path:
    """Copy `src` to `dst` adding a display-rotation side datum (as phones write it)."""
    run(["-y", "-loglevel", "error", "-display_rotation", str(degrees), "-i", str(src), "-c", "copy", str(dst)],
        what="adding rotation metadata")
    return Path(dst)


def audio_only(path: Path, seconds: float = 2) -> Path:
    run(["-y", "-loglevel", "error", "-f", "lavfi", "-i", f"sine=duration={seconds}", "-c:a", "aac", str(path)],
        what="writing audio-only file")
    return Path(path)


# Frame-index videos: frame n shows the bits of n as 8 black/white bars, so a decoded frame says which
# source frame it is (robust to compression and to resizing in y).
INDEX_BITS = 8
INDEX_BAR = 20


def index_frames(n: int, height: int = 16) -> np.ndarray:
    frames = np.zeros((n, height, INDEX_BITS * INDEX_BAR, 3), np.uint8)
    for i in range(n):
        for b in range(INDEX_BITS):
            if i >> b & 1:
                frames[i, :, b * INDEX_BAR:(b + 1) * INDEX_BAR] = 255
    return frames


def read_index(frame: np.ndarray) -> int:
    """The source frame number shown by a decoded index frame (any height, width 160 or scaled)."""
    w = frame.shape[1] / (INDEX_BITS * INDEX_BAR)
    bits = [frame[:, int((b + 0.3) * INDEX_BAR * w):int((b + 0.7) * INDEX_BAR * w)].mean() > 127
            for b in range(INDEX_BITS)]
    return sum(int(x) << b for b, x in enumerate(bits))


def index_video(path: Path, seconds: float = 10, fps: float = 25, extra: tuple[str, ...] = ()) -> Path:
    return write_frames(path, index_frames(int(round(seconds * fps))), fps, extra=extra)
