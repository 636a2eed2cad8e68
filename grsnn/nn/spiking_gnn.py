"""SpikingGNN: a drop-in spiking alternative to PyG's ``BasicGNN`` models (GCN, SAGE, GAT)."""
from __future__ import annotations

import math
import warnings
from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from torch_geometric.nn import GCNConv

from ..functional import readout_kernel
from ..functional.surrogate import SurrogateLike
from .conv import SpikingDelayConv, as_edge_index

__all__ = ["SpikingGNN"]


class SpikingGNN(nn.Module):
    r"""A stack of :class:`SpikingDelayConv` circuits with learnable synaptic delays, in
    the conventions of PyG's ``BasicGNN`` models.

    Node features become constant input currents (by default a graph convolution of the
    node's and its neighbours' features, ``input_conv="gcn"``); in every layer the
    current drives a spiking circuit on the graph for ``time_steps`` steps, spikes travel
    along the edges with integer delays learned per relation and neuron, and a temporal
    readout :math:`h_v = \sum_t \kappa_t s_v[t]` (earlier spikes weigh more) decodes the
    spike trains; a linear layer turns :math:`h` into the next layer's current, and another
    turns the mean of the layers' readouts (``jk="mean"``; the last one with ``jk="last"``)
    into the output.

    Args:
        in_channels (int): input feature size (``-1`` for lazy initialisation).
        hidden_channels (int): neurons per node and layer.
        num_layers (int): number of spiking layers.
        out_channels (int, optional): output size (``None``: return the last readout).
        dropout (float): dropout on the readout of every layer but the last, as in PyG's
            models (default ``0``).
        time_steps (int): steps per layer (default ``8``).
        num_relations (int): edge types for ``edge_type`` (default ``1``).
        tau, v_threshold, delay_bound, linear_scale: circuit constants (see
            :class:`SpikingDelayConv`; ``v_threshold`` default ``1.0``).
        input_norm (bool): scale every layer's input current by a gain set once, from the
            first batch the model sees (kept in the ``input_gain`` buffer, saved and loaded
            with the weights), so that its root mean square brings a neuron to
            ``input_scale * v_threshold`` at steady state: the operating point does not
            depend on the scale of the input features (once the encoder's bias is
            negligible next to its weights' response), the width or the depth; the
            circuits' biases then span at least :math:`\pm V_{th}/8` whatever the width
            (default ``True``).
        input_scale (float): that fraction of the threshold (default ``0.3``: a sparse
            start, a few percent of the neurons firing at initialisation).
        edge_norm (str, optional): edge weights the circuits use: ``"mean"`` (default)
            divides every edge weight by the target's (weighted) in-degree, so a node's
            synaptic input does not grow with its degree; ``"sym"`` the symmetric
            :math:`1/\sqrt{d_u d_v}` of GCN; ``None`` the weights as given.
        jk (str, optional): what the output layer reads: ``"mean"`` (default), the mean
            of every layer's readout, so that the first layer's spikes reach the output
            directly whatever the depth (a jumping-knowledge sum); ``"last"`` (or ``None``)
            the last layer's readout only.
        input_residual (bool): every layer after the first also receives the first
            layer's input current (the encoder's projection of the node features, times
            that layer's gain), added to the current its mixer makes of the previous
            layer's readout, with ``dropout`` on it as on the readouts: the encoded
            features (with ``input_conv="gcn"`` their neighbourhood mean) reach every
            circuit as a current, not only through the first layer's spikes; the layers
            still communicate by spikes only, and the output layer reads spikes only
            (default ``True``).
        input_conv (str, optional): how the node features become the first layer's input
            current: ``"gcn"`` (default), PyG's :class:`~torch_geometric.nn.conv.GCNConv`,
            the projected features of the node and its neighbours averaged with GCN's
            weights (self-loops added; edge types are not told apart), so that a neuron
            starts from its neighbourhood's features rather than its own alone; ``None``, a
            linear layer on each node's own features.
        readout_decay (float): :math:`\rho` of the readout kernel (default ``0.95``).
        surrogate: surrogate spike function (default ``Sigmoid(4.0)``).
        **kwargs: further :class:`SpikingDelayConv` arguments (``relation_weight``,
            ``self_connection``, ``layer_norm``, ``aggregate``, ``delay``, ``fused``,
            ``compiled``).

    On its first forward pass the model checks its spike trains and warns once if a
    layer is silent or its firing neurons fire at every step, naming the argument to
    change.

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

    SILENT_RATE = 1e-4       # the guard: a layer below this firing rate is silent
    SATURATED_SHARE = 0.75   # ... and one whose firing neurons fire at every step this often

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int,
                 out_channels: Optional[int] = None, dropout: float = 0.0,
                 time_steps: int = 8, num_relations: int = 1, tau: float = 4.0,
                 v_threshold: float = 1.0, delay_bound: int = 4, linear_scale: float = 1.0,
                 readout_decay: float = 0.95, surrogate: SurrogateLike = None,
                 input_norm: bool = True, input_scale: float = 0.3,
                 edge_norm: Optional[str] = "mean", jk: Optional[str] = "mean",
                 input_residual: bool = True, input_conv: Optional[str] = "gcn",
                 **kwargs) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        if edge_norm not in (None, "mean", "sym"):
            raise ValueError(f"edge_norm must be 'mean', 'sym' or None, got {edge_norm!r}")
        if jk not in (None, "last", "mean"):
            raise ValueError(f"jk must be 'mean', 'last' or None, got {jk!r}")
        if input_conv not in (None, "gcn"):
            raise ValueError(f"input_conv must be 'gcn' or None, got {input_conv!r}")
        self.jk = "last" if jk is None else jk
        self.input_conv = input_conv
        self.input_residual = bool(input_residual)
        self.input_scale, self.edge_norm = float(input_scale), edge_norm
        self.v_threshold = float(v_threshold)
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.num_layers, self.out_channels, self.dropout = num_layers, out_channels, dropout
        if input_conv == "gcn":
            self.encoder = GCNConv(in_channels, hidden_channels)
        else:
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
        self.input_norm = bool(input_norm)
        # per-layer gain of the input current, set from the first batch (NaN: not yet)
        self.register_buffer("input_gain", torch.full((num_layers,), float("nan")))
        self.register_load_state_dict_post_hook(SpikingGNN._after_load)
        self._gain_ready = False
        self._checked = False
        self.register_buffer("kappa", readout_kernel(time_steps, readout_decay),
                             persistent=False)
        self._scale_biases()

    BIAS_SCALE = 0.125   # with input_norm: synaptic biases span at least +-this * v_threshold

    @torch.no_grad()
    def _scale_biases(self) -> None:
        r"""With ``input_norm``, widen every circuit's bias from PyTorch's
        :math:`U(\pm 1/\sqrt{fan_{in}})` to at least :math:`U(\pm V_{th}/8)` (the draw
        itself is kept): the bias drives every neuron at every step, and the default range
        shrinks with the width until wide layers are silent at initialisation."""
        if not self.input_norm:
            return
        for conv in self.convs:
            lin = conv.lin
            if lin.bias is not None:
                bound = max(self.BIAS_SCALE * abs(self.v_threshold),
                            1.0 / math.sqrt(lin.in_features))
                lin.bias.mul_(bound * math.sqrt(lin.in_features))

    def reset_parameters(self) -> None:
        """Re-initialise every layer."""
        if not isinstance(self.encoder, nn.LazyLinear):
            self.encoder.reset_parameters()   # GCNConv: its lazy weight waits for a first call
        for mod in (*self.convs, *self.mixers):
            mod.reset_parameters()
        if self.lin is not None:
            self.lin.reset_parameters()
        self._scale_biases()
        self.input_gain.fill_(float("nan"))
        self._gain_ready = False
        self._checked = False

    @staticmethod
    def _after_load(module: "SpikingGNN", _keys) -> None:
        module._gain_ready = not bool(torch.isnan(module.input_gain).any())

    @torch.no_grad()
    def _calibrate(self, index: int, current: Tensor) -> None:
        """Set the gain of layer ``index`` from its first input current: its root mean
        square (over nodes and channels) becomes ``input_scale * v_threshold * (1 - a)``,
        ``a = exp(-1 / tau)``, so that a neuron driven that much settles at
        ``input_scale * v_threshold`` (whatever the scale of the input features)."""
        tau = self.convs[index].tau
        target = self.input_scale * abs(self.v_threshold) * (1.0 - math.exp(-1.0 / tau))
        std = float(current.detach().float().pow(2).mean().sqrt())
        self.input_gain[index] = target / std if std > 0 and math.isfinite(std) else 1.0

    def _edges(self, edge_index, edge_weight, dtype: torch.dtype
               ) -> Tuple[Tensor, Optional[Tensor]]:
        """``edge_index`` (from a sparse adjacency too) and the edge weights as given: an
        adjacency's values where none are given and the edges have one type."""
        edge_index, adj_weight = as_edge_index(edge_index)
        if adj_weight is not None and edge_weight is None and self.convs[0].num_relations == 1:
            edge_weight = adj_weight.to(dtype)
        return edge_index, edge_weight

    def _graph(self, edge_index: Tensor, edge_weight: Optional[Tensor], num_nodes: int,
               dtype: torch.dtype) -> Tuple[Tensor, Optional[Tensor]]:
        """The edge weights the circuits use: those of :meth:`_edges` with ``edge_norm``
        applied."""
        if self.edge_norm is None:
            return edge_index, edge_weight
        w = (torch.ones(edge_index.size(1), dtype=dtype, device=edge_index.device)
             if edge_weight is None else edge_weight)
        src, dst = edge_index[0], edge_index[1]
        deg = torch.zeros(num_nodes, dtype=w.dtype, device=w.device).index_add_(
            0, dst, w.detach().abs())
        inv = deg.clamp(min=torch.finfo(w.dtype).tiny)
        if self.edge_norm == "mean":
            return edge_index, w / inv.index_select(0, dst)
        inv = inv.rsqrt()
        return edge_index, w * inv.index_select(0, dst) * inv.index_select(0, src)

    def _run(self, x: Tensor, edge_index, edge_type, edge_weight, trains=None) -> Tensor:
        edge_index, edge_weight = self._edges(edge_index, edge_weight, x.dtype)
        current = (self.encoder(x, edge_index, edge_weight) if self.input_conv == "gcn"
                   else self.encoder(x))
        edge_index, edge_weight = self._graph(edge_index, edge_weight, x.size(0), current.dtype)
        h = first = current
        problems: List[str] = []
        readouts: List[Tensor] = []
        for i, conv in enumerate(self.convs):
            if self.input_norm:
                if not self._gain_ready:
                    self._calibrate(i, current)
                current = current * self.input_gain[i].clone()   # (later layers set theirs)
            if i == 0:
                first = current
            frames = conv.simulate(current, edge_index, edge_type, edge_weight=edge_weight)
            if not self._checked:
                problem = self._check_layer(frames)
                if problem:
                    problems.append(f"layer {i + 1} of {self.num_layers} is {problem}")
            if trains is not None:
                trains.append(torch.stack(frames).detach().bool())
            h = sum(k * s for k, s in zip(self.kappa.tolist(), frames))
            if i < self.num_layers - 1:   # as in PyG's models: not on the last layer
                h = nn.functional.dropout(h, p=self.dropout, training=self.training)
            readouts.append(h)
            if i < len(self.mixers):
                current = self.mixers[i](h)
                if self.input_residual:
                    current = current + nn.functional.dropout(
                        first, p=self.dropout, training=self.training)
        if self.jk == "mean" and len(readouts) > 1:
            h = torch.stack(readouts).mean(0)
        if self.input_norm and not self._gain_ready:
            self._gain_ready = True
        if not self._checked:
            self._checked = True
            if problems:
                self._warn(problems)
        return self.lin(h) if self.lin is not None else h

    @torch.no_grad()
    def _check_layer(self, frames: List[Tensor]) -> Optional[str]:
        """The guard of the first forward pass: what is wrong with a layer's spike trains
        (silent, or its firing neurons fire at every step), or ``None``."""
        train = torch.stack([f.detach() for f in frames]) > 0        # [T, N, D]
        rate = float(train.float().mean())
        if rate < self.SILENT_RATE:
            return f"silent (firing rate {rate:.4f})"
        firing = float(train.any(0).float().mean())
        always = float(train.all(0).float().mean()) / firing
        if always > self.SATURATED_SHARE:
            return (f"firing at every step ({always:.0%} of its firing neurons fire at all "
                    f"{len(frames)} steps)")
        return None

    def _warn(self, problems: List[str]) -> None:
        silent = any(" is silent" in p for p in problems)
        if self.input_norm:
            hint = (f"raise input_scale (now {self.input_scale:g})" if silent else
                    f"lower input_scale (now {self.input_scale:g})")
        else:
            hint = (f"lower v_threshold (now {self.v_threshold:g}), scale the input features "
                    "up or set input_norm=True" if silent else
                    f"raise v_threshold (now {self.v_threshold:g}), scale the input features "
                    "down or set input_norm=True")
        warnings.warn("SpikingGNN at initialisation on this input: " + "; ".join(problems)
                      + f". Its spikes carry little and it will learn poorly: {hint}.",
                      UserWarning, stacklevel=4)

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
