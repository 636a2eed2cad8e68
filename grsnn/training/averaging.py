"""An exponential moving average of a model's parameters (``train.ema_decay``).

After every optimizer step the average moves towards the new parameters,
``a <- d a + (1 - d) p``, with the decay warmed up as ``d = min(decay, (1 + n) / (10 + n))``
at the n-th update (n = 1, 2, ...), so that the first updates are not dominated by the
initial weights. Validation, ``best.pt`` and the final test see the average; training
goes on with the optimizer's own parameters. The update itself is PyTorch's
(:func:`torch.optim.swa_utils.get_ema_multi_avg_fn`); the average is kept as a shadow of
the parameters and swapped in for evaluation, rather than as the deep copy of the module
that :class:`~torch.optim.swa_utils.AveragedModel` keeps (the model holds compiled steps
and per-forward caches that a copy would duplicate).

Example:
    >>> lin = torch.nn.Linear(1, 1, bias=False)
    >>> _ = lin.weight.data.fill_(1.0)
    >>> avg = ParameterAverage(lin, decay=0.5)
    >>> _ = lin.weight.data.fill_(3.0); avg.update(lin)      # d = min(0.5, 2/11)
    >>> round(avg.shadow["weight"].item(), 4)
    2.6364
    >>> with avg.applied(lin):
    ...     round(lin.weight.item(), 4)
    2.6364
    >>> lin.weight.item()
    3.0
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Dict, Iterator

import torch
from torch.optim.swa_utils import get_ema_multi_avg_fn

__all__ = ["ParameterAverage"]


class ParameterAverage:
    """The moving average of ``model``'s parameters, starting from their current values.

    Args:
        model: the module whose parameters are averaged (the same module is passed to
            :meth:`update` and :meth:`applied`).
        decay: the decay after warm-up, in ``[0, 1)``.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay must be in [0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.shadow: Dict[str, torch.Tensor] = {
            name: p.detach().clone() for name, p in model.named_parameters()}

    def current_decay(self) -> float:
        """The decay of the next update (warmed up)."""
        n = self.updates + 1
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s parameters (after an optimizer step)."""
        names = list(self.shadow)
        params = dict(model.named_parameters())
        if set(params) != set(names):
            raise ValueError("the model's parameters are not the averaged ones")
        update = get_ema_multi_avg_fn(self.current_decay())
        update([self.shadow[n] for n in names], [params[n].detach() for n in names],
               torch.tensor(self.updates + 1))
        self.updates += 1

    @contextmanager
    def applied(self, model: torch.nn.Module) -> Iterator[None]:
        """Within the block ``model`` holds the averaged parameters; its own come back
        afterwards, exactly, whatever the block raises."""
        params = dict(model.named_parameters())
        kept = {n: params[n].detach().clone() for n in self.shadow}
        with torch.no_grad():
            for n, value in self.shadow.items():
                params[n].copy_(value)
        try:
            yield
        finally:
            with torch.no_grad():
                for n, value in kept.items():
                    params[n].copy_(value)

    def state_dict(self) -> Dict[str, Any]:
        """Plain tensors and numbers, for a checkpoint."""
        return {"updates": self.updates, "shadow": dict(self.shadow)}

    def load_state_dict(self, state: Dict[str, Any]) -> None:
        if set(state["shadow"]) != set(self.shadow):
            raise ValueError("the checkpoint's averaged parameters are not this model's")
        for n, value in state["shadow"].items():
            self.shadow[n].copy_(value)
        self.updates = int(state["updates"])
