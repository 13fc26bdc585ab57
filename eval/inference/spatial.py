"""Heatmaps of a span of seconds for one text: rows cut into chunks (16 like the released code), each chunk
mapped by the grounder, then one map per second (the row of the second and, for S3D, its temporal cell).

Chunking and padding (`spatial.padding`):
- `mask` (paper preset): the rows of seconds start..end in chunks of `spatial.chunk` from the first; the last
  chunk is filled with masked rows, which are neither attention queries nor keys, so they change nothing.
- `black` (reference preset): as the published loaders, which decode seconds start..end-1, cut them into
  16-frame clips and zero-pad the last clip: those rows in chunks from the first, the last chunk filled with
  the features of black frames as real inputs. The map of the first black row is the segment's `padding`
  map (the reference scorer scores the last second on it); when the rows fill whole chunks there is no padded
  frame and no `padding` map (the scorer then reuses the previous second's map, as the scripts do). The last
  second's own map (read only by the paper scorer) is computed in the chunk it falls in, with it in place of
  the first black row.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from eval.inference.config import SpatialConfig
from eval.inference.encoder import TextFeatures
from eval.inference.features import VideoFeatures
from eval.inference.grounders import Grounder


@dataclass(frozen=True)
class Chunk:
    rows: np.ndarray   # store rows, at most spatial.chunk
    text: int          # index of the query in the TextFeatures


@dataclass(frozen=True)
class SpanRequest:
    start: int         # first second (inclusive)
    end: int           # last second (inclusive)
    text: int          # index of the query in the TextFeatures
    reference: bool    # chunk as the published loaders (the segment tasks under `padding: black`)


Maps = np.ndarray  # [chunk, T', gh, gw] maps of one chunk's rows (padding rows included)
Assemble = Callable[[list[Maps]], tuple[np.ndarray, np.ndarray | None]]


def _chunks(lo: int, hi: int, size: int, text: int) -> list[Chunk]:
    return [Chunk(np.arange(a, min(a + size, hi)), text) for a in range(lo, hi, size)]


def _gather(maps: list[Maps], lo: int, rows: np.ndarray, cells: np.ndarray, size: int) -> np.ndarray:
    """Per-second maps [n, gh, gw] of rows (>= lo) from the chunks that start at lo."""
    k, j = np.divmod(rows - lo, size)
    return np.stack([maps[a][b, c] for a, b, c in zip(k.tolist(), j.tolist(), cells.tolist())])


def _plan_span(video: VideoFeatures, req: SpanRequest, size: int) -> tuple[list[Chunk], Assemble]:
    rows, cells = video.locate(np.arange(req.start, req.end + 1))
    lo = int(rows[0])
    chunks = _chunks(lo, int(rows[-1]) + 1, size, req.text)
    return chunks, lambda maps: (_gather(maps, lo, rows, cells, size), None)


def _plan_reference(video: VideoFeatures, req: SpanRequest, size: int) -> tuple[list[Chunk], Assemble]:
    """Seconds start..end-1 as the published loaders chunk them, then the last second in its own chunk."""
    rows, cells = video.locate(np.arange(req.start, req.end + 1))
    lo, body_rows = int(rows[0]), rows[:-1]
    hi = int(body_rows[-1]) + 1 if len(body_rows) else lo
    body = _chunks(lo, hi, size, req.text)
    last_row, last_cell = int(rows[-1]), int(cells[-1])
    extra = [] if last_row < hi else [Chunk(np.arange(lo + (last_row - lo) // size * size, last_row + 1), req.text)]
    padded = (hi - lo) % size != 0

    def assemble(maps: list[Maps]) -> tuple[np.ndarray, np.ndarray | None]:
        body_maps = maps[:len(body)]
        head = _gather(body_maps, lo, body_rows, cells[:-1], size) if len(body_rows) else None
        if extra:
            last = maps[-1][len(extra[0].rows) - 1, last_cell]
        else:
            last = _gather(body_maps, lo, rows[-1:], cells[-1:], size)[0]
        heat = last[None] if head is None else np.concatenate([head, last[None]])
        padding = body_maps[-1][(hi - lo) % size, 0] if padded else None
        return heat, padding

    return body + extra, assemble


def _run_chunks(grounder: Grounder, video: VideoFeatures, chunks: list[Chunk], texts: TextFeatures,
                cfg: SpatialConfig, black: dict | None, device: torch.device) -> list[Maps]:
    out: list[Maps] = []
    cells = video.grid.shape[1:-1]
    for lo in range(0, len(chunks), cfg.batch_chunks):
        batch = chunks[lo:lo + cfg.batch_chunks]
        grid = np.zeros((len(batch), cfg.chunk, *video.grid.shape[1:]), np.float32)
        mask = np.zeros((len(batch), cfg.chunk), bool)
        for b, chunk in enumerate(batch):
            n = len(chunk.rows)
            grid[b, :n] = video.grid[chunk.rows]
            mask[b, :n] = True
            if black is not None and n < cfg.chunk:
                grid[b, n:] = black["grid"]
                mask[b, n:] = True
        maps = grounder.maps(torch.from_numpy(grid).to(device), torch.from_numpy(mask).to(device),
                             texts.take([c.text for c in batch]))
        maps = maps.reshape(len(batch), cfg.chunk, -1, *cells[-2:]).cpu().numpy().astype(np.float32)
        out.extend(maps)
    return out


def span_heatmaps(grounder: Grounder, video: VideoFeatures, requests: list[SpanRequest], texts: TextFeatures,
                  cfg: SpatialConfig, black: dict | None, device: torch.device) \
        -> list[tuple[np.ndarray, np.ndarray | None]]:
    """(heatmaps [end - start + 1, gh, gw], padding map or None) of every request, chunks of all requests
    batched together. `black` (the black row's features) is needed by `padding: black`."""
    if cfg.padding == "black" and black is None:
        raise ValueError("spatial.padding=black needs the features of a black frame")
    fill = black if cfg.padding == "black" else None
    plans = [(_plan_reference if r.reference and fill is not None else _plan_span)(video, r, cfg.chunk)
             for r in requests]
    maps = _run_chunks(grounder, video, [c for chunks, _ in plans for c in chunks], texts, cfg, fill, device)
    out, at = [], 0
    for chunks, assemble in plans:
        out.append(assemble(maps[at:at + len(chunks)]))
        at += len(chunks)
    return out
