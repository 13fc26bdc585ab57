"""Typed errors of the manifests package.

Every message names the file, where in it (key, row, column) and the problem, so a user can fix the input
without reading our code."""
from __future__ import annotations

import os


class AnnotationError(ValueError):
    """An annotation file does not match its documented schema."""

    def __init__(self, path: str | os.PathLike, where: str, problem: str):
        self.path = str(path)
        self.where = where
        self.problem = problem
        super().__init__(f"{self.path}: {where}: {problem}" if where else f"{self.path}: {problem}")


class UnsafePickleError(AnnotationError):
    """A pickle asks for something other than builtin containers and scalars; it was not executed."""


class ManifestError(ValueError):
    """A manifest directory or one of its tables does not match the manifest schema."""
