"""Device choice and numeric precision shared by the frozen encoders.

On CUDA the encoders run under autocast (bf16 where the GPU supports it, else fp16), which is how the
authors ran CLIP (fp16); on CPU they run in float32 because CPU autocast is slow and changes values.
Outputs always come back to the caller as float32 numpy arrays.
"""
from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator

import numpy as np
import torch


def resolve_device(device: str | None) -> torch.device:
    """`None` picks cuda when available, else cpu; an explicit cuda device must exist."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"unsupported device {device!r}: use 'cpu', 'cuda' or 'cuda:N'") from error
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch sees no CUDA device")
    if chosen.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {device!r}: use 'cpu', 'cuda' or 'cuda:N'")
    return chosen


@functools.cache
def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype used on `device`, or None for plain float32."""
    if device.type != "cuda":
        return None
    with torch.cuda.device(device):
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def precision_name(device: torch.device) -> str:
    dtype = autocast_dtype(device)
    return "float32" if dtype is None else f"autocast-{str(dtype).removeprefix('torch.')}"


@contextlib.contextmanager
def inference(device: torch.device) -> Iterator[None]:
    """No-grad inference, under autocast on CUDA."""
    dtype = autocast_dtype(device)
    with torch.inference_mode():
        if dtype is None:
            yield
        else:
            with torch.autocast(device_type="cuda", dtype=dtype):
                yield


def to_numpy(tensor: torch.Tensor) -> np.ndarray:
    """Compact float32 host array (autocast outputs may be bf16/fp16). Views are copied so a returned
    slice never keeps its whole parent activation buffer alive."""
    return np.ascontiguousarray(tensor.detach().to(device="cpu", dtype=torch.float32).numpy())


def frames_to_device(frames: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 frames as a tensor on `device`, without a host copy where numpy allows it.

    Flipped views (negative strides) are copied; read-only buffers (np.frombuffer of ffmpeg output) are
    wrapped without the not-writable warning: callers only ever read them (the first op casts to float).
    """
    if any(stride < 0 for stride in frames.strides):
        frames = np.ascontiguousarray(frames)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(frames).to(device, non_blocking=True)


def check_uint8_frames(frames: np.ndarray, shape_tail: tuple[int, ...], what: str) -> None:
    """Raise ValueError unless `frames` is uint8 with the given trailing shape."""
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        kind = frames.dtype if isinstance(frames, np.ndarray) else type(frames).__name__
        raise ValueError(f"{what}: expected a uint8 numpy array, got {kind}")
    expected_ndim = len(shape_tail) + 1
    if frames.ndim != expected_ndim or tuple(frames.shape[1:]) != shape_tail:
        raise ValueError(
            f"{what}: expected shape [N, {', '.join(map(str, shape_tail))}], got {list(frames.shape)}"
        )
