"""Partial results of a long evaluation, kept on disk so that it resumes where it stopped.

A filtered ranking of FB15k-237's test set runs the circuit for some 27,000 queries: most
of an hour on a CPU with the plain configuration, hours with PNA. :class:`EvalProgress`
saves the rankings done so far every ``interval`` seconds (atomically: a crash leaves the
previous file) under a key naming the split, the exact queries and the model's weights;
an evaluation started again with the same key continues after the last saved chunk, any
other key starts over. The file is removed once the evaluation is complete.
"""
from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import torch
from torch import Tensor

from .checkpoints import save_checkpoint  # atomic write (temporary file + rename)

__all__ = ["EvalProgress", "model_fingerprint", "tensor_fingerprint", "SAVE_INTERVAL"]

#: seconds between two saves of an evaluation's partial results
SAVE_INTERVAL = 60.0


def tensor_fingerprint(*tensors: Tensor) -> str:
    """SHA-1 of the tensors' dtypes, shapes and bytes."""
    h = hashlib.sha1()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(f"{t.dtype}{tuple(t.shape)}".encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def model_fingerprint(model: torch.nn.Module) -> str:
    """SHA-1 of a model's state (names, shapes and values), its printed constants (the
    circuit's horizon, time constant, threshold) and its evaluation horizon: equal for
    the same weights run the same way."""
    h = hashlib.sha1()
    h.update(repr(model).encode())
    h.update(str(getattr(model, "eval_steps", "")).encode())
    for name, value in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor_fingerprint(value).encode())
    return h.hexdigest()


class EvalProgress:
    """Saves and restores the partial state of one evaluation.

    Args:
        path: the partial-results file (``None``: keep nothing, resume nothing).
        key: what the state belongs to (split, queries, model); a file with another key
            is ignored and replaced.
        interval: seconds between saves (default :data:`SAVE_INTERVAL`).
    """

    def __init__(self, path: Optional[Path], key: Dict[str, str],
                 interval: Optional[float] = None):
        self.path = None if path is None else Path(path)
        self.key = dict(key)
        self.interval = float(SAVE_INTERVAL if interval is None else interval)
        self._last = time.monotonic()

    def load(self) -> Optional[Dict[str, Any]]:
        """The saved state if the file exists and belongs to this evaluation, else None."""
        if self.path is None or not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception:   # truncated or foreign: start over (it is rewritten)
            return None
        if not isinstance(state, dict) or state.get("key") != self.key:
            return None
        return state

    def maybe_save(self, make_state: Callable[[], Dict[str, Any]], force: bool = False
                   ) -> bool:
        """Save ``make_state()`` (plus the key) if ``interval`` seconds have passed since
        the last save (or ``force``); returns whether it saved."""
        if self.path is None:
            return False
        now = time.monotonic()
        if not force and now - self._last < self.interval:
            return False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            save_checkpoint(self.path, {**make_state(), "key": self.key})
        except OSError as err:   # e.g. a read-only checkpoint folder: evaluate on, unsaved
            warnings.warn(f"{self.path}: cannot keep partial evaluation results "
                          f"({err.strerror or err}); the evaluation goes on without them",
                          stacklevel=2)
            self.path = None
            return False
        self._last = now
        return True

    def finish(self) -> None:
        """The evaluation is complete: remove the partial file."""
        if self.path is not None and self.path.is_file():
            self.path.unlink()
