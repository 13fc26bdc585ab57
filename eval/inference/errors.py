"""The typed errors of inference (the command lines turn them into exit code 2 with the message)."""
from __future__ import annotations


class InferenceError(ValueError):
    """Inputs that cannot make predictions together (the message says which and why)."""
