"""grsnn: graph reasoning with temporal spiking neural networks and learnable synaptic delays."""
__version__ = "0.1.0"

from . import functional, nn  # noqa: E402
from .paths import shortest_path_lengths, shortest_paths  # noqa: E402

__all__ = ["functional", "nn", "shortest_path_lengths", "shortest_paths", "__version__"]
