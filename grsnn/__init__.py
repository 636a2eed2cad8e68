"""grsnn: graph reasoning with temporal spiking neural networks and learnable synaptic delays.

The subpackages and the names below load on first use (``import grsnn`` alone does not
import torch, so that ``grsnn --help`` answers at once).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, List

__version__ = "0.1.0"

# name -> module that defines it (relative to this package)
_LAZY = {
    "functional": ".functional",
    "nn": ".nn",
    "GRSNN": ".nn",
    "SpikingDelayConv": ".nn",
    "SpikingGNN": ".nn",
    "shortest_path_lengths": ".paths",
    "shortest_paths": ".paths",
}

__all__ = ["functional", "nn", "GRSNN", "SpikingDelayConv", "SpikingGNN",
           "shortest_path_lengths", "shortest_paths", "__version__"]

if TYPE_CHECKING:
    from . import functional, nn
    from .nn import GRSNN, SpikingDelayConv, SpikingGNN
    from .paths import shortest_path_lengths, shortest_paths


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'grsnn' has no attribute {name!r}")
    module = importlib.import_module(_LAZY[name], __name__)
    value = module if module.__name__ == f"{__name__}.{name}" else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
