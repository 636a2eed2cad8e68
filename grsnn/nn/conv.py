"""SpikingDelayConv: delayed spiking message passing as a PyG ``MessagePassing`` layer."""
from __future__ import annotations

from typing import List, Optional, Union

import torch
from torch import Tensor
from torch.nn import LayerNorm, Linear, Parameter
from torch.utils.checkpoint import checkpoint
from torch_geometric.nn import MessagePassing

from ..functional import (PROPAGATIONS, DelayPlan, LIFParameters, SpikeWindow,
                          Synapses, build_plan, gather_spikes, history_dtype, neuron_init,
                          neuron_step, pna_aggregate, pna_scales, propagate_spikes,
                          resolve_surrogate)
from ..functional.aggregation import pna_extreme, pna_statistics
from ..functional.propagation import _spmm
from ..functional.surrogate import Surrogate, SurrogateLike
from .conv_helpers import _arrived, _current, _linear, _linear_reached
from .conv_helpers import _pair_key as _pair_key
from .conv_helpers import _Run as _Run
from .conv_helpers import as_edge_index

__all__ = ["SpikingDelayConv", "as_edge_index", "DRIVES"]

DRIVES = ("always", "reached")


class SpikingDelayConv(MessagePassing):
    r"""Recurrent spiking circuit with learnable integer synaptic delays, from
    `"Temporal Spiking Neural Networks with Synaptic Delay for Graph Reasoning"
    <https://arxiv.org/abs/2405.16851>`_ (ICML 2024).

    Every node holds ``channels`` current-based LIF neurons; a spike of node :math:`u`
    reaches node :math:`v` along edge :math:`(u \to v, \rho)` after the integer delay
    :math:`\delta_\rho = \mathrm{round}(K\,\sigma(z_\rho)) \in \{0..K\}` (per relation
    and neuron), and one shared weight matrix turns the arrived spikes into current:

    .. math::
        m_e[t] &= \omega_{\rho_e}\, w_e\, s_{u_e}[t - 1 - \delta_{\rho_e}]
            \quad (0 \text{ if } \delta \ge t) \\
        I_v[t] &= \lambda \left(\mathbf{W}\,\textstyle\bigoplus_{e \to v} m_e[t]
            + \mathbf{b}\right) \\
        c_v[t] &= a\,c_v[t-1] + \tfrac{e}{\tau} I_v[t], \qquad
        u_v[t] = a\,u_v[t-1] + c_v[t] + \beta_v \\
        s_v[t] &= H(u_v[t] - V_{th}), \quad u_v[t] \leftarrow u_v[t](1 - s_v[t])

    with :math:`a = e^{-1/\tau}`, :math:`\bigoplus` = sum (or PNA), and at ``t = 0``
    :math:`u = \beta`. Optional: a self connection (:math:`\mathbf{W}[s_v[t-1]; A_v]`),
    LayerNorm on :math:`I` and relation weights :math:`\omega`.

    The layer runs ``time_steps`` steps and returns the spike trains. Delays and
    relation weights are the layer's own parameters (``[num_relations, channels]``)
    unless ``delay_logits`` / ``relation_weights`` are passed to :meth:`forward` (for
    query-dependent delays, as in :class:`~grsnn.nn.GRSNN`).

    With ``fused=True`` (default) message passing goes through
    :meth:`message_and_aggregate` on grouped ``(source, relation)`` pairs, which saves only
    node-level tensors for backward; with ``fused=False``, or while a PyG explainer is
    active, messages are built per edge in :meth:`message` (edge masks, edge-weight
    gradients). Both give the same spikes and gradients.

    Args:
        channels (int): neurons per node ``D``.
        num_relations (int): number of edge types ``R`` (default ``1``).
        time_steps (int): simulation steps ``T`` (default ``10``).
        tau (float): membrane and synaptic time constant (default ``4.0``).
        v_threshold (float): firing threshold (default ``2.0``).
        delay_bound (int): largest delay ``K`` (default ``4``).
        linear_scale (float): scale :math:`\lambda` of the synaptic current (default ``1``).
        surrogate: surrogate spike function (default ``Sigmoid(alpha=4.0)``); any callable.
        self_connection (bool): feed :math:`s_v[t-1]` to the linear layer too.
        layer_norm (bool): LayerNorm on the current (after :math:`\lambda`).
        aggregate (str): ``"sum"`` or ``"pna"``.
        relation_weight (bool): learn relation weights :math:`\omega` (own parameter).
        delay (bool): learn delays (``False``: all delays 0, the ablation).
        bias (bool): bias of the linear layer.
        fused (bool): use the grouped, memory-lean message passing.
        drive (str): where the linear layer's bias :math:`\mathbf{b}` enters.
            ``"always"`` (default, the paper's circuit): every neuron at every step, so
            every neuron fires eventually whether or not the input reached it.
            ``"reached"`` (query-driven circuit): only the neurons of a node (per batch
            column) that has input current :math:`\beta` or has received at least one
            spike so far, :math:`I_v[t] = \lambda(\mathbf{W} \bigoplus m
            + g_v[t]\,\mathbf{b})` with :math:`g_v[t] = 1` from the first arrival on;
            a node the input has not reached stays silent at rest.
        relation_params (bool): create the ``[R, D]`` delay logits and relation weights
            as parameters of this layer (``False``: they are passed to :meth:`forward`).
        compiled (bool): run the neuron-level work of every step (LIF update, fire, reset,
            bit history, trace) and its backward as single ``torch.compile`` elementwise
            kernels (:func:`~grsnn.functional.lif_step_fused`; the first call compiles for a
            few seconds; needs a :class:`~grsnn.functional.Surrogate`), and form the
            pair messages (history bits, delays, relation weights) in one compiled pass.
            Same results up to float rounding.
        propagation (str): ``"dense"`` (default): every step reads every
            ``(source, relation)`` pair (pull). ``"event"``: every step forms and sends
            only the messages of the pairs whose source has a spike in the delay window
            (push, :func:`~grsnn.functional.delayed_propagate`). ``"auto"``: push while at
            most :data:`~grsnn.functional.AUTO_CROSSOVER` of the pairs are active, pull
            above, chosen per step. Same spikes, outputs and gradients bit for bit (the
            backward is the dense one: surrogate gradients reach silent neurons too).
            Without gradient and with ``drive="reached"`` (no LayerNorm, sum aggregation)
            the linear layer also skips the nodes the input has not reached (their input
            and state are exactly zero). Event-driven paths serve the fused sum
            aggregation; PNA and per-edge messages always run dense.

    Shapes:
        - **input:** ``beta`` :math:`(N, D)` or :math:`(N, B, D)`, ``edge_index``
          :math:`(2, E)` or a sparse adjacency, ``edge_type`` :math:`(E)`,
          ``edge_weight`` :math:`(E)`, ``delay_logits`` / ``relation_weights``
          :math:`(R, D)` or :math:`(R, B, D)`
        - **output:** spikes :math:`(T, N, D)` or :math:`(T, N, B, D)` (0/1 floats
          carrying surrogate gradients)

    Example:
        >>> conv = SpikingDelayConv(4, num_relations=2, time_steps=5)
        >>> edge_index = torch.tensor([[0, 1], [1, 2]])
        >>> beta = torch.zeros(3, 4); beta[0] = 3.0
        >>> conv(beta, edge_index, torch.tensor([0, 1])).shape
        torch.Size([5, 3, 4])
    """

    def __init__(self, channels: int, num_relations: int = 1, time_steps: int = 10,
                 tau: float = 4.0, v_threshold: float = 2.0, delay_bound: int = 4,
                 linear_scale: float = 1.0, surrogate: SurrogateLike = None,
                 self_connection: bool = False, layer_norm: bool = False,
                 aggregate: str = "sum", relation_weight: bool = False, delay: bool = True,
                 bias: bool = True, fused: bool = True, relation_params: bool = True,
                 compiled: bool = False, drive: str = "always",
                 propagation: str = "dense") -> None:
        if aggregate not in ("sum", "pna"):
            raise ValueError(f"aggregate must be 'sum' or 'pna', got {aggregate!r}")
        if drive not in DRIVES:
            raise ValueError(f"drive must be one of {DRIVES}, got {drive!r}")
        if propagation not in PROPAGATIONS:
            raise ValueError(f"propagation must be one of {PROPAGATIONS}, got {propagation!r}")
        if time_steps < 1:
            raise ValueError(f"time_steps must be >= 1, got {time_steps}")
        if tau <= 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        super().__init__(aggr="sum" if aggregate == "sum" else None, node_dim=0)
        self.channels = channels
        self.num_relations = num_relations
        self.time_steps = time_steps
        self.tau = float(tau)
        self.v_threshold = float(v_threshold)
        self.delay_bound = int(delay_bound)
        history_dtype(self.delay_bound)  # validates the bound
        self.linear_scale = float(linear_scale)
        self.surrogate = resolve_surrogate(surrogate)
        self.self_connection = self_connection
        self.aggregate_fn = aggregate
        self.use_delay = delay
        self.fused = fused
        self.compiled = bool(compiled)
        self.drive = drive
        self.propagation = propagation
        in_mult = (12 if aggregate == "pna" else 1) + (1 if self_connection else 0)
        self.lin = Linear(in_mult * channels, channels, bias=bias)
        self.norm = LayerNorm(channels) if layer_norm else None
        own = relation_params
        self.delay_logit = (Parameter(torch.empty(num_relations, channels))
                            if delay and own else None)
        self.relation_weight = (Parameter(torch.empty(num_relations, channels))
                                if relation_weight and own else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the linear layer, LayerNorm, delays (N(0,1) logits) and weights."""
        super().reset_parameters()
        self.lin.reset_parameters()
        if self.norm is not None:
            self.norm.reset_parameters()
        if self.delay_logit is not None:
            torch.nn.init.normal_(self.delay_logit)
        if self.relation_weight is not None:
            torch.nn.init.normal_(self.relation_weight)

    # ------------------------------------------------------------------ helpers
    def build_plan(self, edge_index: Tensor, num_nodes: int, edge_type: Optional[Tensor] = None,
                   edge_weight: Optional[Tensor] = None, fused: Optional[bool] = None
                   ) -> DelayPlan:
        """Graph structure for :meth:`forward` (cache it when the graph is reused)."""
        group = self.fused if fused is None else fused
        return build_plan(edge_index, num_nodes, edge_type, self.num_relations, edge_weight,
                          group=group, dtype=self.lin.weight.dtype)

    def integer_delays(self, delay_logits: Optional[Tensor] = None) -> Tensor:
        """Integer delays ``round(K * sigmoid(z))`` (same shape as the logits)."""
        z = self.delay_logit if delay_logits is None else delay_logits
        if z is None:
            raise ValueError("this layer has no delays (delay=False)")
        return torch.round(self.delay_bound * torch.sigmoid(z.detach())).long()

    def _columns(self, x: Optional[Tensor], batch: int) -> Optional[Tensor]:
        """``[R, D]`` or ``[R, B, D]`` -> ``[R, B * D]``."""
        if x is None:
            return None
        if x.dim() == 2:
            x = x.unsqueeze(1).expand(-1, batch, -1)
        return x.reshape(x.size(0), -1)

    # ------------------------------------------------------------------ forward
    def forward(self, beta: Tensor, edge_index: Union[Tensor, "object"],
                edge_type: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None,
                delay_logits: Optional[Tensor] = None,
                relation_weights: Optional[Tensor] = None,
                plan: Optional[DelayPlan] = None) -> Tensor:
        """Run the circuit for ``time_steps`` steps and return the spike trains."""
        frames = self.simulate(beta, edge_index, edge_type, edge_weight, delay_logits,
                               relation_weights, plan)
        return torch.stack(frames).view(self.time_steps, *beta.shape)

    def simulate(self, beta: Tensor, edge_index: Union[Tensor, "object"],
                 edge_type: Optional[Tensor] = None, edge_weight: Optional[Tensor] = None,
                 delay_logits: Optional[Tensor] = None,
                 relation_weights: Optional[Tensor] = None,
                 plan: Optional[DelayPlan] = None, return_state: bool = False,
                 drive: Optional[str] = None):
        """Same as :meth:`forward` but returns the ``T`` spike frames as a list of
        ``[N, B * D]`` tensors (a readout can consume them one by one, so the whole
        train is never stacked). ``return_state=True`` returns ``(frames, state)`` with the
        :class:`~grsnn.functional.LIFState` ``(c, u)`` after the last step: the synaptic
        current and the (reset) membrane potential, ``[N, B * D]`` each (differentiable).
        ``drive`` overrides the layer's ``drive`` for this run (``None``: the layer's)."""
        drive = self.drive if drive is None else drive
        if drive not in DRIVES:
            raise ValueError(f"drive must be one of {DRIVES}, got {drive!r}")
        if beta.dim() == 2:
            beta = beta.unsqueeze(1)
        num_nodes, batch, dim = beta.shape
        if dim != self.channels:
            raise ValueError(f"beta has {dim} channels, the layer {self.channels}")
        run = self._start(beta, edge_index, edge_type, edge_weight, plan)
        beta = beta.reshape(num_nodes, batch * dim)
        syn = self._synapses(delay_logits, relation_weights, batch, beta.device)
        need_trace = (syn.delay is not None and syn.delay.requires_grad
                      and torch.is_grad_enabled())
        params = self.lif_parameters
        s, state = neuron_init(beta, params, history_dtype(self.delay_bound), need_trace)
        spikes: List[Tensor] = [s]
        # spike traces, newest step first: step t lives in row T - 1 - t, so the frames a
        # step reads (tr[t-1], tr[t-2], ...) are one contiguous slice
        steps, width = self.time_steps, self.delay_bound + 1
        traces = beta.new_empty(steps, num_nodes, batch * dim) if need_trace else None
        if traces is not None and state.trace is not None:
            traces[steps - 1].copy_(state.trace.frame)
        # query-driven drive: the nodes (per batch column) the input has reached so far
        reached = ((beta.view(num_nodes, batch, dim) != 0).any(-1)
                   if drive == "reached" else None)
        for t in range(1, steps):
            window = SpikeWindow(state.hist, spikes[::-1][:width],
                                 None if traces is None else traces[steps - t: steps - t + width])
            agg = self._propagate(run, window, syn)
            if reached is not None:
                reached = reached | self._arrived(agg, num_nodes, batch)
            current, scale = self._current(
                self._linear(agg, spikes[-1], run.scales, num_nodes, batch, reached), run.fuse)
            s, state = neuron_step(current.reshape(num_nodes, batch * dim), state, beta, params,
                                   scale, fused=run.fuse)
            spikes.append(s)
            if traces is not None and state.trace is not None:
                traces[steps - 1 - t].copy_(state.trace.frame)
        return (spikes, state.lif) if return_state else spikes

    @property
    def lif_parameters(self) -> LIFParameters:
        """The neurons' constants ``(tau, v_threshold, surrogate)``."""
        return LIFParameters(self.tau, self.v_threshold, self.surrogate)

    def _start(self, beta: Tensor, edge_index: Union[Tensor, "object"],
               edge_type: Optional[Tensor], edge_weight: Optional[Tensor],
               plan: Optional[DelayPlan]) -> _Run:
        """Read the graph and build (or take) its plan (``beta``: ``[N, B, D]``)."""
        num_nodes, batch = beta.shape[:2]
        edge_index, adj_weight = as_edge_index(edge_index)
        if adj_weight is not None and edge_weight is None and self.num_relations == 1:
            edge_weight = adj_weight.to(beta.dtype)
        edge_level = (bool(self.explain) or not self.fused
                      or (edge_weight is not None and edge_weight.requires_grad))
        if plan is None:
            plan = self.build_plan(edge_index, num_nodes, edge_type, edge_weight,
                                   fused=not edge_level)
        scales = pna_scales(plan.in_degree) if self.aggregate_fn == "pna" else None
        fuse = self.compiled and isinstance(self.surrogate, Surrogate)
        return _Run(num_nodes, batch, edge_index, edge_weight, plan,
                    edge_level, scales, fuse, {})

    def _synapses(self, delay_logits: Optional[Tensor], relation_weights: Optional[Tensor],
                  batch: int, device: torch.device) -> Synapses:
        """Integer delays, continuous delays (``None`` without learnable delays) and
        relation weights as ``[R, B * D]`` columns."""
        delay = self._columns(self.delay_logit if delay_logits is None else delay_logits, batch)
        hdtype = history_dtype(self.delay_bound)
        if self.use_delay and delay is not None:
            delay = self.delay_bound * torch.sigmoid(delay)
            delta = torch.round(delay.detach()).to(hdtype)
        else:
            delay = None
            delta = torch.zeros(self.num_relations, batch * self.channels, dtype=hdtype,
                                device=device)
        weight = self._columns(self.relation_weight if relation_weights is None
                               else relation_weights, batch)
        return Synapses(delta, delay, weight)

    def _propagate(self, run: _Run, window: SpikeWindow, syn: Synapses) -> Tensor:
        """The aggregated delayed input of every node at one step (per-edge messages or
        the fused pair propagation)."""
        if run.edge_level:
            return self.propagate(run.edge_index, size=(run.num_nodes, run.num_nodes),
                                  plan=run.plan, window=window, synapses=syn,
                                  edge_scale=run.edge_weight, scales=run.scales)
        return self.propagate(run.plan.adj, plan=run.plan, window=window, synapses=syn,
                              edge_scale=run.edge_weight, scales=run.scales,
                              workspace=run.workspace)

    _current = _current
    _arrived = _arrived
    _linear = _linear
    _linear_reached = _linear_reached

    # ------------------------------------------------------- message passing API
    def message(self, plan: DelayPlan, window: SpikeWindow, synapses: Synapses,
                edge_scale: Optional[Tensor]) -> Tensor:
        """Per-edge delayed messages ``[E, B * D]`` (edge order of ``edge_index``)."""
        msg = gather_spikes(plan, window, synapses, self.compiled)
        if plan.num_pairs != plan.dst.numel():
            msg = msg.index_select(0, plan.edge_pair)
        if edge_scale is not None:
            msg = msg * edge_scale.view(-1, 1).to(msg.dtype)
        return msg

    def aggregate(self, inputs: Tensor, index: Tensor, dim_size: Optional[int] = None,
                  scales: Optional[Tensor] = None,
                  plan: DelayPlan = None,  # type: ignore[assignment]  # as message()'s (PyG)
                  ) -> Tensor:
        """Sum (PyG's aggregation) or the PNA statistics of the edge messages (the scalers
        are applied in :meth:`_linear`; a tie for the max / min
        sends its gradient to the edge of the first ``(source, relation)`` pair, as the
        fused path does)."""
        if self.aggregate_fn == "pna":
            order = None if plan is None else _pair_key(plan)
            return pna_aggregate(inputs, index, int(dim_size), scales, self.channels,
                                 order=order, scaled=False)   # statistics: see _linear
        return super().aggregate(inputs, index, dim_size=dim_size)

    def message_and_aggregate(self, adj: Tensor, plan: DelayPlan, window: SpikeWindow,
                              synapses: Synapses, edge_scale: Optional[Tensor],
                              scales: Optional[Tensor], workspace: Optional[dict] = None
                              ) -> Tensor:
        """Fused delayed propagation over ``(source, relation)`` pairs, ``[N, B * D]``."""
        if self.aggregate_fn == "sum":
            return propagate_spikes(plan, window, synapses, workspace, self.compiled,
                                    self.propagation)

        def edge_part(delay: Optional[Tensor], weight: Optional[Tensor], *frames: Tensor):
            return self._pna_statistics(plan, window._replace(frames=list(frames)),
                                        synapses._replace(delay=delay, weight=weight),
                                        edge_scale, scales)

        if torch.is_grad_enabled():  # recompute the edge work in backward: node-level memory
            return checkpoint(edge_part, synapses.delay, synapses.weight, *window.frames,
                              use_reentrant=False)
        return edge_part(synapses.delay, synapses.weight, *window.frames)

    def _pna_statistics(self, plan: DelayPlan, window: SpikeWindow, synapses: Synapses,
                        edge_scale: Optional[Tensor], scales: Optional[Tensor]) -> Tensor:
        """The four PNA statistics of the edge messages from the pair messages."""
        dtype = window.frames[0].dtype
        extreme = (plan.extreme_operators(dtype)
                   if edge_scale is None or plan.weighted else None)
        msg = gather_spikes(plan, window, synapses, self.compiled)
        if extreme is None:   # weighted duplicate edges: per-edge messages
            msg = msg.index_select(0, plan.edge_pair)
            if edge_scale is not None:  # (PyG reserves edge_weight for sparse input)
                msg = msg * edge_scale.view(-1, 1).to(msg.dtype)
            return pna_aggregate(msg, plan.dst, plan.num_nodes, scales, self.channels,
                                 order=_pair_key(plan), scaled=False)
        # every edge of a pair carries the pair's message: the edge statistics are
        # sparse products over the pairs (edge weights live in the operators)
        adj = plan.operators(dtype)[0]
        adj_sq, adj_ext = extreme
        return pna_statistics(_spmm(adj, msg), _spmm(adj_sq, msg * msg),
                              pna_extreme(adj_ext, msg, "amax"),
                              pna_extreme(adj_ext, msg, "amin"), plan.in_degree)

    def update(self, inputs: Tensor) -> Tensor:
        return inputs

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.channels}, num_relations={self.num_relations}, "
                f"time_steps={self.time_steps}, tau={self.tau}, v_threshold={self.v_threshold}, "
                f"delay_bound={self.delay_bound}, aggregate={self.aggregate_fn!r}"
                + ("" if self.propagation == "dense" else f", propagation={self.propagation!r}")
                + ")")
