"""SpikingGNN: a drop-in spiking alternative to PyG's ``BasicGNN`` models (GCN, SAGE, GAT)."""
from __future__ import annotations

from typing import List, Optional

import torch
from torch import Tensor, nn

from ..functional import readout_kernel
from ..functional.surrogate import SurrogateLike
from .conv import SpikingDelayConv

__all__ = ["SpikingGNN"]


class SpikingGNN(nn.Module):
    r"""A stack of :class:`SpikingDelayConv` circuits with learnable synaptic delays, in
    the conventions of PyG's ``BasicGNN`` models.

    Node features become constant input currents (a linear encoder); in every layer the
    current drives a spiking circuit on the graph for ``time_steps`` steps, spikes travel
    along the edges with integer delays learned per relation and neuron, and a temporal
    readout :math:`h_v = \sum_t \kappa_t s_v[t]` (earlier spikes weigh more) decodes the
    spike trains; a linear layer turns :math:`h` into the next layer's current, and the
    last :math:`h` into the output.

    Args:
        in_channels (int): input feature size (``-1`` for lazy initialisation).
        hidden_channels (int): neurons per node and layer.
        num_layers (int): number of spiking layers.
        out_channels (int, optional): output size (``None``: return the last readout).
        dropout (float): dropout on every readout (default ``0``).
        time_steps (int): steps per layer (default ``8``).
        num_relations (int): edge types for ``edge_type`` (default ``1``).
        tau, v_threshold, delay_bound, linear_scale: circuit constants (see
            :class:`SpikingDelayConv`).
        readout_decay (float): :math:`\rho` of the readout kernel (default ``0.95``).
        surrogate: surrogate spike function (default ``Sigmoid(4.0)``).
        **kwargs: further :class:`SpikingDelayConv` arguments (``relation_weight``,
            ``self_connection``, ``layer_norm``, ``aggregate``, ``delay``, ``fused``,
            ``compiled``).

    Shapes:
        - **input:** ``x`` :math:`(N, F_{in})`, ``edge_index`` :math:`(2, E)` or a sparse
          adjacency, ``edge_type`` :math:`(E)`, ``edge_weight`` :math:`(E)`
        - **output:** :math:`(N, F_{out})`

    Example:
        >>> model = SpikingGNN(16, 32, num_layers=2, out_channels=7)
        >>> x, edge_index = torch.randn(10, 16), torch.randint(0, 10, (2, 40))
        >>> model(x, edge_index).shape
        torch.Size([10, 7])
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 out_channels: Optional[int] = None, dropout: float = 0.0,
                 time_steps: int = 8, num_relations: int = 1, tau: float = 4.0,
                 v_threshold: float = 2.0, delay_bound: int = 4, linear_scale: float = 1.0,
                 readout_decay: float = 0.95, surrogate: SurrogateLike = None,
                 **kwargs) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.num_layers, self.out_channels, self.dropout = num_layers, out_channels, dropout
        self.encoder = nn.LazyLinear(hidden_channels) if in_channels == -1 else \
            nn.Linear(in_channels, hidden_channels)
        self.convs = nn.ModuleList([
            SpikingDelayConv(hidden_channels, num_relations, time_steps=time_steps, tau=tau,
                             v_threshold=v_threshold, delay_bound=delay_bound,
                             linear_scale=linear_scale, surrogate=surrogate, **kwargs)
            for _ in range(num_layers)])
        self.mixers = nn.ModuleList([nn.Linear(hidden_channels, hidden_channels)
                                     for _ in range(num_layers - 1)])
        self.lin = nn.Linear(hidden_channels, out_channels) if out_channels else None
        self.register_buffer("kappa", readout_kernel(time_steps, readout_decay),
                             persistent=False)

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        if not isinstance(self.encoder, nn.LazyLinear):
            self.encoder.reset_parameters()
        for mod in (*self.convs, *self.mixers):
            mod.reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()

    def _run(self, x: Tensor, edge_index, edge_type, edge_weight, trains=None) -> Tensor:
        current = self.encoder(x)
        h = current
        for i, conv in enumerate(self.convs):
            frames = conv.simulate(current, edge_index, edge_type, edge_weight=edge_weight)
            if trains is not None:
                trains.append(torch.stack(frames).detach().bool())
            h = sum(k * s for k, s in zip(self.kappa.tolist(), frames))
            h = nn.functional.dropout(h, p=self.dropout, training=self.training)
            if i < len(self.mixers):
                current = self.mixers[i](h)
        return self.lin(h) if self.lin is not None else h

    def forward(self, x: Tensor, edge_index, edge_type: Optional[Tensor] = None,
                edge_weight: Optional[Tensor] = None) -> Tensor:
        """Node outputs ``[N, out_channels]`` (or ``[N, hidden_channels]``)."""
        return self._run(x, edge_index, edge_type, edge_weight)

    @torch.no_grad()
    def spike_trains(self, x: Tensor, edge_index, edge_type: Optional[Tensor] = None,
                     edge_weight: Optional[Tensor] = None) -> List[Tensor]:
        """Spike trains of every layer, ``[T, N, hidden_channels]`` booleans (eval mode
        semantics of the current ``training`` flag; no gradient), for analysis."""
        trains: List[Tensor] = []
        self._run(x, edge_index, edge_type, edge_weight, trains)
        return trains

    def __repr__(self) -> str:
        out = self.out_channels or self.hidden_channels
        return (f"{self.__class__.__name__}({self.in_channels}, {out}, "
                f"num_layers={self.num_layers}, time_steps={self.convs[0].time_steps})")
