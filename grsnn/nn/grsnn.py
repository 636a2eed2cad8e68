"""GRSNN: the query-conditioned spiking path reasoner (NBFNet calling convention)."""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor, nn

from ..functional import DelayPlan, readout_kernel
from ..functional.surrogate import SurrogateLike
from .conv import SpikingDelayConv

__all__ = ["GRSNN", "READOUTS", "first_spike_code"]

READOUTS = ("spikes", "state")


def _versions(tensors) -> tuple:
    """What tells a cache that tensors it holds (by identity) were changed in place:
    their version counters, storage addresses and dtypes (``-1`` for ``None``)."""
    return tuple(-1 if x is None else (x._version, x.data_ptr(), x.dtype) for x in tensors)


def first_spike_code(frames) -> Tensor:
    r"""Per neuron, :math:`1 - t_0 / T` for its first spike at step :math:`t_0` (``0``
    if it never fires), as :math:`\sum_t (1 - t/T)\,s[t]\prod_{t'<t}(1 - s[t'])` so
    that the surrogate gradient of every spike reaches it.

    Example:
        >>> s = [torch.tensor([0., 1.]), torch.tensor([1., 1.]), torch.tensor([0., 0.])]
        >>> first_spike_code(s)          # first spikes at t = 1 and t = 0, T = 3
        tensor([0.6667, 1.0000])
    """
    steps = len(frames)
    code = frames[0]
    alive = 1.0 - frames[0]
    for t, s in enumerate(frames[1:], 1):
        code = code + (1.0 - t / steps) * alive * s
        if t < steps - 1:
            alive = alive * (1.0 - s)
    return code


class GRSNN(nn.Module):
    r"""Graph reasoning with a temporal spiking circuit and learnable synaptic delays
    (`Xiao et al., ICML 2024 <https://arxiv.org/abs/2405.16851>`_).

    A query :math:`(h, r, ?)` injects the current
    :math:`\tilde q = \tfrac{V_{th}}{2} E_q[r] + \tfrac{V_{th}}{2}` into the neurons of
    node :math:`h`; delays (and relation weights) per relation are generated from
    :math:`\tilde q` (``dependent=True``) or free (``dependent=False``); after ``T``
    steps each candidate's spike train is decoded with
    :math:`\kappa_t = \rho^t / \sum_{t'}\rho^{t'}` and scored by an MLP on
    :math:`[\mathrm{enc}_v; \tilde q]`.

    Calling convention (NBFNet): ``model(data, batch)`` where ``data`` is a PyG ``Data``
    fact graph whose ``edge_index`` / ``edge_type`` already contain the inverse edges
    (types in ``[0, num_relations)``, inverse of ``r`` = ``r + num_relations // 2``) and
    ``batch`` is ``[B, 1 + n, 3]`` of ``(head, tail, relation)``; every row shares its
    head (tail-corruption) or its tail (head-corruption, answered as the tail query
    with the inverse relation). Returns logits ``[B, 1 + n]``.

    Args:
        num_relations (int): edge types, inverses included.
        hidden_dim (int): neurons per node ``D`` (default 32).
        time_steps, tau, v_threshold, delay_bound, linear_scale: circuit constants.
        dependent (bool): query-dependent delays / weights (knowledge graphs).
        relation_weight (bool): relation weights :math:`\omega` (GRSNN+).
        self_connection, layer_norm (bool): GRSNN+ switches.
        aggregate (str): ``"sum"`` or ``"pna"`` (GRSNN+ on FB15k-237).
        delay (bool): ``False`` is the ablation without delays.
        symmetric (bool): also run from the tail and average the features (homogeneous
            graphs; rows must then share their tail too).
        readout_decay (float): :math:`\rho` (default 0.95).
        num_mlp_layers (int): layers of the scoring MLP (default 2).
        surrogate: surrogate spike function (default ``Sigmoid(4.0)``).
        fused (bool): memory-lean grouped propagation (default ``True``).
        compiled (bool): compiled neuron step (see :class:`SpikingDelayConv`; default
            ``False``).
        drive (str): ``"always"`` (the paper: the layer's bias drives every neuron at
            every step) or ``"reached"`` (query-driven: the bias enters a node only once
            the query's spikes have reached it; see :class:`SpikingDelayConv`).
        readout (str): ``"spikes"`` (the paper: :math:`\sum_t \kappa_t s_v[t]`) or
            ``"state"``: also the first-spike code :math:`\sum_t (1 - t/T)\,s_v[t]
            \prod_{t' < t}(1 - s_v[t'])` and the membrane potential
            :math:`u_v[T-1] / V_{th}` after the last step, per neuron (``3 D`` features).
        degree_prior (bool): also give the scoring MLP the candidate's incoming edges
            counted per relation, :math:`\log(1 + d_v^{\rho})` for every edge type
            :math:`\rho`, through a learnt linear map to ``D`` features. It tells apart
            candidates the query's spikes leave identical (e.g. those no path reaches),
            the structural information NBFNet's PNA degree scalers and the paper's
            bias-driven background activity carry. The counts are clamped to the
            largest count per relation seen in training (:meth:`relation_degrees`).
        delay_init (float or None): initial delay logit offset: the bias of the delay
            generator (``dependent``) or the mean of the delay logits is set to it, so
            ``delay_init=-3`` starts every delay near 0 (one step per hop). ``None``
            (default): PyTorch's default initialisation, delays spread over ``0..K``.
        propagation (str): ``"dense"`` (default), ``"event"`` or ``"auto"``: the
            event-driven engine of :class:`SpikingDelayConv` (same logits and gradients).
        track_rate (bool): record the mean firing rate of the circuits of the last
            :meth:`forward` / :meth:`score_all` (over steps, nodes, queries and neurons) as
            the differentiable scalar :attr:`firing_rate` (surrogate gradient), for a
            firing-rate regulariser ``loss + lambda * model.firing_rate`` (default
            ``False``: nothing recorded).
        query_sized (bool): :meth:`forward` simulates each batch on the nodes its
            queries' waves reach only (:mod:`grsnn.nn.query_sized`): the same logits and
            gradients as the whole graph, with work and memory proportional to the
            reached nodes (the whole graph where they reach more than half of it).
            Needs ``drive="reached"``, sum aggregation, no LayerNorm,
            ``readout="spikes"`` and a surrogate whose gradient vanishes at rest
            (``surrogate="triangle"``). :meth:`score_all` does the same (default
            ``False``).
        background (bool): also give the scoring MLP every candidate's readout in the
            same circuit run once per graph without a query, bias-driven everywhere
            (:meth:`background_features`): a query-independent description of its
            neighbourhood, for the candidates a query-driven wave does not reach, which
            are otherwise told apart by the degree prior alone (default ``False``).
        background_pair (bool): also give the scoring MLP the elementwise product of the
            query source's and the candidate's background readouts,
            :math:`\mathrm{bg}_h \odot \mathrm{bg}_v` (``D`` features): how alike the two
            neighbourhoods are, a pair feature for the candidates the query's wave does not
            reach (needs ``background=True``; default ``False``).
        node_features (int): the width ``F`` of the node features ``data.x``
            (``[N, F]``) that drive the background circuit: each node's input current is
            :math:`(V_{th}/2)\,W \hat x_v`, :math:`\hat x_v` its features scaled to unit
            length and :math:`W` a learnt ``[D, F]`` map (drawn from N(0, 1)), so that
            its background readout describes its own features and their spread over its
            neighbourhood, not only its structure (needs ``background=True``; ``0``, the
            default: no features, the background is bias-driven alone).
        feature_pair (bool): also give the scoring MLP the elementwise product of the
            two ends' feature currents, :math:`W \hat x_h \odot W \hat x_v` (``D``
            features, scaled by :math:`(V_{th}/2)^2`): the input the two ends' background
            neurons receive, compared before any spike quantises it (needs
            ``node_features > 0``; default ``False``).
        feature_hops (int): the node features are first smoothed over the graph the
            circuit runs on, ``k`` steps of :math:`x \leftarrow \hat A x` with
            :math:`\hat A = D^{-1/2}(A + I)D^{-1/2}` (GCN's normalisation, one self loop
            per node; no parameters), so that a node's feature current also
            describes its neighbours' features; the scoring graph of a training batch
            (the query's own edges removed) is the one smoothed over (needs
            ``node_features > 0``; ``0``, the default: the features as given).
        feature_cosine (bool): also give the scoring MLP the cosine similarity of the
            two ends' node features (smoothed with ``feature_hops``), one pair feature
            without parameters: how alike the two ends' (neighbourhoods') features are,
            exactly, where ``feature_pair`` compares ``D`` learnt projections (needs
            ``node_features > 0``; default ``False``).
        feature_cosine_hops (int): with ``feature_cosine``, one cosine per smoothing
            depth ``0, 1, ..., k`` (``k + 1`` inputs, the features smoothed over that many
            hops as ``feature_hops`` smooths them) instead of the single one at
            ``feature_hops``: near pairs are told apart best by widely smoothed features,
            far or unconnected ones by their own (needs ``feature_cosine``; ``0``, the
            default: the single cosine).
        wave_only_rows (float): in training (:meth:`forward` in ``train()`` mode), the
            share ``p`` of a batch's query rows, drawn afresh per batch, whose
            query-independent inputs are zeroed before the scoring MLP: the background
            readout and every pair input (``background_pair``, ``feature_pair``, the
            feature cosines). Those rows are scored from the query's spike readout,
            ``q~`` and the degree prior alone, so the circuit must rank them itself and
            cannot hand all ranking to the features (needs ``background=True``;
            ``0``, the default: every row sees every input; evaluation never drops).
        wave_meet (bool): also give the scoring MLP, for a pair ``(h, v)``, the ``D``
            inputs :meth:`meet_features`: per channel, the log of one plus the sum over
            every node of the product of its spike readouts in the circuit run from ``h``
            and in the one run from ``v``, where the two waves meet. A pair ``2k`` hops
            apart is seen by two waves that each travel ``k`` hops, and the count of
            their meeting nodes tells a far pair joined by many paths from one joined by
            few (needs ``symmetric=True``; a circuit input, kept on wave-only rows;
            ``False``, the default: the readout of each end alone).
        wave_meet_dropped (bool): with ``wave_meet`` and ``wave_only_rows``, the
            wave-only rows lose the meet inputs too, so that they are ranked from the
            readout of each end's wave alone (``False``, the default: they keep them).
        eval_time_steps (int, optional): the horizon ``T`` in ``eval()`` mode
            (validation, test, predictions, reports); training keeps ``time_steps``.
            Nothing learnt depends on ``T`` (the readout kernel is recomputed for it), so
            a circuit trained at one horizon runs at a longer one and scores answers its
            trained wave reaches only later (``None``, the default: ``time_steps``).

    Example:
        >>> from torch_geometric.data import Data
        >>> data = Data(edge_index=torch.tensor([[0, 1], [1, 0]]),
        ...             edge_type=torch.tensor([0, 1]), num_nodes=2)
        >>> model = GRSNN(num_relations=2, hidden_dim=8)
        >>> model(data, torch.tensor([[[0, 1, 0], [0, 0, 0]]])).shape
        torch.Size([1, 2])
    """

    def __init__(self, num_relations: int, hidden_dim: int = 32, time_steps: int = 10,
                 tau: float = 4.0, v_threshold: float = 2.0, delay_bound: int = 4,
                 linear_scale: float = 1.0, dependent: bool = True,
                 relation_weight: bool = False, self_connection: bool = False,
                 layer_norm: bool = False, aggregate: str = "sum", delay: bool = True,
                 symmetric: bool = False, readout_decay: float = 0.95,
                 num_mlp_layers: int = 2, surrogate: SurrogateLike = None,
                 fused: bool = True, compiled: bool = False, drive: str = "always",
                 readout: str = "spikes", degree_prior: bool = False,
                 delay_init: Optional[float] = None, propagation: str = "dense",
                 track_rate: bool = False, query_sized: bool = False,
                 background: bool = False, background_pair: bool = False,
                 node_features: int = 0, feature_pair: bool = False,
                 feature_hops: int = 0, feature_cosine: bool = False,
                 feature_cosine_hops: int = 0, wave_only_rows: float = 0.0,
                 wave_meet: bool = False, wave_meet_dropped: bool = False,
                 eval_time_steps: Optional[int] = None) -> None:
        super().__init__()
        if eval_time_steps is not None and eval_time_steps < 1:
            raise ValueError(f"eval_time_steps must be >= 1, got {eval_time_steps}")
        #: the horizons of training and of eval() mode (see :meth:`train`)
        self.train_time_steps = int(time_steps)
        self.eval_time_steps = None if eval_time_steps is None else int(eval_time_steps)
        if num_relations < 1:
            raise ValueError(f"num_relations must be >= 1, got {num_relations}")
        if readout not in READOUTS:
            raise ValueError(f"readout must be one of {READOUTS}, got {readout!r}")
        self.num_relations = num_relations
        self.hidden_dim = hidden_dim
        self.dependent = dependent
        self.symmetric = symmetric
        self.v_threshold = float(v_threshold)
        self.readout_decay = readout_decay
        self.conv = SpikingDelayConv(
            hidden_dim, num_relations, time_steps=time_steps, tau=tau,
            v_threshold=v_threshold, delay_bound=delay_bound, linear_scale=linear_scale,
            surrogate=surrogate, self_connection=self_connection, layer_norm=layer_norm,
            aggregate=aggregate, relation_weight=relation_weight, delay=delay, fused=fused,
            relation_params=not dependent, compiled=compiled, drive=drive,
            propagation=propagation)
        self.readout = readout
        self.degree_prior = bool(degree_prior)
        self.delay_init = None if delay_init is None else float(delay_init)
        self.query = nn.Embedding(num_relations, hidden_dim)
        size = num_relations * hidden_dim
        self.delay_generator = nn.Linear(hidden_dim, size) if dependent and delay else None
        self.weight_generator = (nn.Linear(hidden_dim, size)
                                 if dependent and relation_weight else None)
        self.background = bool(background)
        self.background_pair = bool(background_pair)
        if self.background_pair and not self.background:
            raise ValueError("background_pair=True needs background=True")
        if node_features < 0:
            raise ValueError(f"node_features must be >= 0, got {node_features}")
        if node_features and not self.background:
            raise ValueError("node_features > 0 needs background=True")
        self.feature_dim = int(node_features)   # the method node_features is the readout's
        # the background circuit's input current from the node features
        self.feature_encoder = (nn.Linear(node_features, hidden_dim, bias=False)
                                if node_features else None)
        self.feature_pair = bool(feature_pair)
        if self.feature_pair and not node_features:
            raise ValueError("feature_pair=True needs node_features > 0")
        if feature_hops < 0:
            raise ValueError(f"feature_hops must be >= 0, got {feature_hops}")
        if feature_hops and not node_features:
            raise ValueError("feature_hops > 0 needs node_features > 0")
        self.feature_hops = int(feature_hops)
        self.feature_cosine = bool(feature_cosine)
        if self.feature_cosine and not node_features:
            raise ValueError("feature_cosine=True needs node_features > 0")
        if feature_cosine_hops < 0:
            raise ValueError(f"feature_cosine_hops must be >= 0, got {feature_cosine_hops}")
        if feature_cosine_hops and not self.feature_cosine:
            raise ValueError("feature_cosine_hops > 0 needs feature_cosine=True")
        self.feature_cosine_hops = int(feature_cosine_hops)
        if not 0.0 <= wave_only_rows < 1.0:
            raise ValueError(f"wave_only_rows must be in [0, 1), got {wave_only_rows}")
        if wave_only_rows and not self.background:
            raise ValueError("wave_only_rows > 0 needs background=True")
        self.wave_only_rows = float(wave_only_rows)
        if wave_meet and not symmetric:
            raise ValueError("wave_meet=True needs symmetric=True (a circuit from each end)")
        self.wave_meet = bool(wave_meet)
        if wave_meet_dropped and not (self.wave_meet and self.wave_only_rows):
            raise ValueError("wave_meet_dropped=True needs wave_meet=True and wave_only_rows > 0")
        self.wave_meet_dropped = bool(wave_meet_dropped)
        # the cosine inputs of the scoring MLP: one per smoothing depth, or the one
        num_cosines = (self.feature_cosine_hops + 1 if self.feature_cosine_hops
                       else int(self.feature_cosine))
        feat = (self.query_independent_start() + (hidden_dim if background else 0)
                + (hidden_dim if background_pair else 0) + (hidden_dim if feature_pair else 0)
                + num_cosines)
        self.prior = nn.Linear(num_relations, hidden_dim) if degree_prior else None
        # the query vector of the background circuit (its delays and relation weights)
        self.background_query = nn.Embedding(1, hidden_dim) if background else None
        # the largest count per relation seen in training (-1: none yet); evaluation
        # clamps the counts of a new graph into that range (see relation_degrees)
        self.register_buffer("degree_range", torch.full((num_relations,), -1.0))
        layers = []
        for _ in range(num_mlp_layers - 1):
            layers += [nn.Linear(feat, feat), nn.ReLU()]
        self.mlp = nn.Sequential(*layers, nn.Linear(feat, 1))
        self.register_buffer("kappa", readout_kernel(time_steps, readout_decay),
                             persistent=False)
        self._plan: Optional[tuple] = None
        self._background: Optional[tuple] = None
        self._priors: Optional[dict] = None          # node_priors memo, within one forward
        self.track_rate = bool(track_rate)
        self._rates: list = []
        self.query_sized = bool(query_sized)
        #: batches run on the whole graph although ``query_sized`` (their queries reached
        #: more than ``query_sized.CROSSOVER`` of it, or the reach estimate missed a node)
        self.query_sized_fallbacks = 0
        #: nodes of the subgraph of the last query-sized batch (0: none yet)
        self.query_sized_nodes = 0
        if self.query_sized:
            from .query_sized import supports_query_sized
            why = supports_query_sized(self)
            if why is not None:
                raise ValueError(f"query_sized=True {why}")
        self._init_features()
        self._init_delays()

    def __getstate__(self):
        # copies and pickles leave the graph caches behind (a sparse plan cannot be
        # deep-copied, and a copy's parameters are new tensors anyway)
        state = self.__dict__.copy()
        state["_plan"] = None
        state["_background"] = None
        state["_priors"] = None
        return state

    def reset_parameters(self) -> None:
        """Re-initialise every parameter (query embedding N(0, 1))."""
        self.conv.reset_parameters()
        self.query.reset_parameters()
        for mod in (self.delay_generator, self.weight_generator, self.prior,
                    self.background_query, *self.mlp):
            if isinstance(mod, (nn.Linear, nn.Embedding)):
                mod.reset_parameters()
        self._init_features()
        self._init_delays()

    def _init_features(self) -> None:
        """Draw the feature map ``W`` from N(0, 1): a unit-length feature vector then
        gives each channel a current of about unit spread (before ``V_th / 2``)."""
        if self.feature_encoder is not None:
            nn.init.normal_(self.feature_encoder.weight)

    def _init_delays(self) -> None:
        """Apply ``delay_init`` (no-op when it is ``None``)."""
        if self.delay_init is None:
            return
        with torch.no_grad():
            if self.delay_generator is not None:
                self.delay_generator.bias.fill_(self.delay_init)
            elif self.conv.delay_logit is not None:
                self.conv.delay_logit.add_(self.delay_init)

    # ----------------------------------------------------------------- pieces
    @property
    def time_steps(self) -> int:
        """The horizon ``T`` the circuit runs now (``eval_time_steps`` in ``eval()`` mode
        where it is set, else ``time_steps``)."""
        return self.conv.time_steps

    @property
    def eval_steps(self) -> int:
        """The horizon of ``eval()`` mode (``eval_time_steps``, else ``time_steps``),
        whatever the mode now."""
        return self.train_time_steps if self.eval_time_steps is None else self.eval_time_steps

    def train(self, mode: bool = True) -> "GRSNN":
        """As :meth:`torch.nn.Module.train`; the circuit also takes the horizon of the
        mode: ``eval_time_steps`` in ``eval()`` mode where it is set, ``time_steps`` in
        training (the readout kernel ``kappa`` follows it)."""
        super().train(mode)
        steps = self.train_time_steps
        if not mode and self.eval_time_steps is not None:
            steps = self.eval_time_steps
        if steps != self.conv.time_steps:
            self.conv.time_steps = steps
            # as built at that horizon (then moved): the same values to the last bit
            self.register_buffer("kappa", readout_kernel(steps, self.readout_decay)
                                 .to(self.kappa), persistent=False)
        return self

    @property
    def firing_rate(self) -> Optional[Tensor]:
        """Mean firing rate of the circuits run by the last :meth:`forward` or
        :meth:`score_all` (a differentiable scalar), with ``track_rate=True``; else
        ``None``.

        Example:
            >>> from torch_geometric.data import Data
            >>> data = Data(edge_index=torch.tensor([[0], [1]]), num_nodes=2)
            >>> model = GRSNN(num_relations=1, hidden_dim=4, track_rate=True)
            >>> _ = model(data, torch.tensor([[[0, 1, 0]]]))
            >>> model.firing_rate.requires_grad, 0 <= model.firing_rate.item() <= 1
            (True, True)
        """
        if not self._rates:
            return None
        return self._rates[0] if len(self._rates) == 1 else torch.stack(self._rates).mean()

    def scaled_query(self, r_index: Tensor) -> Tensor:
        """:math:`\\tilde q = (V_{th}/2) E_q[r] + V_{th}/2`, ``[B, D]``."""
        return self._scale_query(self.query(r_index))

    def _scale_query(self, raw: Tensor) -> Tensor:
        """The injected current of a query vector ``raw``: ``(V_th / 2) raw + V_th / 2``."""
        return raw * (self.v_threshold / 2) + self.v_threshold / 2

    def relation_parameters(self, q: Tensor) -> Tuple[Optional[Tensor], Optional[Tensor]]:
        """Delay logits and relation weights ``[R, B, D]`` for scaled queries ``q``
        (``None`` where the layer's own ``[R, D]`` parameters are used)."""
        b = q.size(0)
        shape = (b, self.num_relations, self.hidden_dim)
        z = (self.delay_generator(q).view(shape).transpose(0, 1)
             if self.delay_generator is not None else None)
        w = (self.weight_generator(q).view(shape).transpose(0, 1)
             if self.weight_generator is not None else None)
        return z, w

    def integer_delays(self, r_index: Tensor) -> Tensor:
        """Integer delays per query: ``[B, R, D]`` long in ``{0..K}``."""
        with torch.no_grad():
            return self._delays_of(self.scaled_query(r_index.view(-1)))

    def _delays_of(self, q: Tensor) -> Tensor:
        """Integer delays ``[B, R, D]`` of the circuits of scaled query vectors ``q``."""
        z, _ = self.relation_parameters(q)
        if z is None:
            if self.conv.delay_logit is None:
                return torch.zeros(q.size(0), self.num_relations, self.hidden_dim,
                                   dtype=torch.long, device=q.device)
            z = self.conv.delay_logit.unsqueeze(1).expand(-1, q.size(0), -1)
        return self.conv.integer_delays(z).transpose(0, 1)

    def plan(self, data) -> DelayPlan:
        """Grouped graph structure of ``data`` (cached while the graph is unchanged)."""
        tensors = (data.edge_index, getattr(data, "edge_type", None),
                   getattr(data, "edge_weight", None))
        versions = _versions(tensors)
        num_nodes = int(data.num_nodes)
        # the cache holds the tensors, so their memory cannot be reused by another graph
        if self._plan is not None:
            old, old_versions, old_nodes, plan = self._plan
            if (all(a is b for a, b in zip(old, tensors)) and old_versions == versions
                    and old_nodes == num_nodes):
                return plan
        plan = self.conv.build_plan(tensors[0], num_nodes, *tensors[1:])
        self._plan = (tensors, versions, num_nodes, plan)
        return plan

    def spikes(self, data, h_index: Tensor, r_index: Tensor, inject: bool = True) -> Tensor:
        """Spike trains ``[T, N, B, D]`` (float, differentiable) for queries ``(h, r, ?)``;
        ``inject=False``: the same circuits (the query relation's delays) with no current
        injected at the source, i.e. what every node does without the query."""
        frames = self._frames(data, h_index, r_index, inject)
        return torch.stack(frames).view(len(frames), int(data.num_nodes), -1, self.hidden_dim)

    def _frames(self, data, h_index: Tensor, r_index: Tensor, inject: bool = True,
                return_state: bool = False):
        n = int(data.num_nodes)
        q = self.scaled_query(r_index)
        beta = q.new_zeros(n, q.size(0), self.hidden_dim)
        if inject:
            beta[h_index, torch.arange(q.size(0), device=q.device)] = q
        z, w = self.relation_parameters(q)
        edge_weight = getattr(data, "edge_weight", None)
        return self.conv.simulate(beta, data.edge_index, getattr(data, "edge_type", None),
                                  edge_weight=edge_weight, delay_logits=z, relation_weights=w,
                                  plan=None if self.conv.explain else self.plan(data),
                                  return_state=return_state)

    def relation_degrees(self, data) -> Tensor:
        """``[N, R]``: :math:`\\log(1 + \\min(d_v^{\\rho}, m^{\\rho}))`, the incoming
        edges of every node per edge type (all type 0 without ``edge_type``).

        :math:`m^{\\rho}` is the largest count of edge type :math:`\\rho` seen while
        training (buffer ``degree_range``, updated by every training forward): on a new
        graph (an inductive test graph) a count beyond what training saw would put the
        readout outside the range it was fitted on, so it is clamped to that range.
        ``-1`` (a model not trained yet, or a checkpoint written before the buffer
        existed) clamps nothing; :meth:`fit_degree_range` sets it from a graph."""
        counts = self._degree_counts(data)
        if self.training:
            with torch.no_grad():
                top = counts.amax(0) if counts.size(0) else torch.zeros_like(self.degree_range)
                self.degree_range.copy_(torch.maximum(self.degree_range, top.to(
                    self.degree_range.dtype)))
        cap = self.degree_range.to(counts.dtype)
        counts = torch.where(cap >= 0, torch.minimum(counts, cap.clamp(min=0)), counts)
        return torch.log1p(counts)

    def _degree_counts(self, data) -> Tensor:
        n = int(data.num_nodes)
        dst = data.edge_index[1]
        etype = getattr(data, "edge_type", None)
        etype = torch.zeros_like(dst) if etype is None else etype
        counts = torch.zeros(n * self.num_relations, device=dst.device)
        counts.index_add_(0, dst * self.num_relations + etype,
                          torch.ones(dst.numel(), device=dst.device))
        return counts.view(n, self.num_relations)

    def fit_degree_range(self, data) -> Tensor:
        """Set ``degree_range`` to the largest incoming-edge count per relation of
        ``data`` (the training graph) and return it: what training sets on its own, for
        a checkpoint written without it."""
        with torch.no_grad():
            top = self._degree_counts(data).amax(0).to(self.degree_range.dtype)
            self.degree_range.copy_(top)
        return top

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict,
                              missing_keys, unexpected_keys, error_msgs):
        key = prefix + "degree_range"
        if key not in state_dict:   # checkpoints written before the buffer: no clamp
            state_dict[key] = torch.full_like(self.degree_range, -1.0)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict,
                                      missing_keys, unexpected_keys, error_msgs)

    def spike_trains(self, data, h_index: Tensor, r_index: Tensor,
                     inject: bool = True) -> Tensor:
        """Spike trains as booleans ``[T, N, B, D]`` (no gradient), for analysis
        (``inject`` as in :meth:`spikes`)."""
        with torch.no_grad():
            return self.spikes(data, h_index.view(-1), r_index.view(-1), inject).bool()

    def node_features(self, data, h_index: Tensor, r_index: Tensor) -> Tensor:
        """Readout features ``[B, N, 2D]``: ``[sum_t kappa_t s_v[t]; q~]`` (``[B, N, 4D]``
        with ``readout="state"``: the first-spike code and the final membrane before
        ``q~``; ``D`` more with ``degree_prior``: :meth:`relation_degrees` mapped by
        ``prior``)."""
        state = self.readout == "state"
        out = self._frames(data, h_index, r_index, return_state=state)
        frames, (_, u) = out if state else (out, (None, None))    # T x [N, B * D]
        if self.track_rate:
            self._rates.append(torch.stack([s.mean() for s in frames]).mean())
        parts = self.readout_parts(frames, u)
        del frames
        n, d = int(data.num_nodes), self.hidden_dim
        parts = [x.view(n, -1, d).transpose(0, 1) for x in parts]
        q = self.scaled_query(r_index)
        parts.append(q.unsqueeze(1).expand_as(parts[0]))
        priors = self.node_priors(data, q.dtype)
        for extra in priors:                                                    # [N, D]
            parts.append(extra.unsqueeze(0).expand(parts[0].size(0), -1, -1))
        parts += self.pair_parts(data, priors, h_index)
        return torch.cat(parts, dim=-1)

    def pair_parts(self, data, priors: List[Tensor], h_index: Tensor,
                   cand: Optional[Tensor] = None) -> List[Tensor]:
        """The pair features switched on, each ``[B, n or N, D]``: ``background_pair``'s
        (of the background readout, the last of :meth:`node_priors` ``priors``) and
        ``feature_pair``'s (of :meth:`feature_currents`), for the query sources ``h_index``
        and the candidates ``cand`` (as :meth:`pair_features`); then ``feature_cosine``'s
        ``[B, n or N, 1]`` (:meth:`pair_cosines` of :meth:`unit_features`), or with
        ``feature_cosine_hops`` one such input per depth (:meth:`cosine_units`)."""
        out = []
        if self.background_pair:
            out.append(self.pair_features(priors[-1], h_index, cand))
        if self.feature_pair:
            currents = self._once("feature_currents", data, priors[-1].dtype)
            out.append(self.pair_features(currents, h_index, cand))
        if self.feature_cosine_hops:
            depths = self._once("cosine_units", data, priors[-1].dtype)
            out += [self.pair_cosines(units, h_index, cand).unsqueeze(-1) for units in depths]
        elif self.feature_cosine:
            units = self._once("unit_features", data, priors[-1].dtype)
            out.append(self.pair_cosines(units, h_index, cand).unsqueeze(-1))
        return out

    @staticmethod
    def pair_cosines(units: Tensor, h_index: Tensor, cand: Optional[Tensor] = None) -> Tensor:
        """``units[h] . units[v]`` (the cosine of unit rows ``[N, F]``) for every query
        source ``h`` (``[B]``) and candidate ``v`` (``cand`` ``[B, n]``; every node when
        ``None``): ``[B, n or N]``, from one ``[B, F] x [F, N]`` product."""
        every = units[h_index.view(-1)] @ units.t()                             # [B, N]
        return every if cand is None else every.gather(1, cand)

    @staticmethod
    def pair_features(rows: Tensor, h_index: Tensor, cand: Optional[Tensor] = None) -> Tensor:
        """``rows[h] * rows[v]`` for every query source ``h`` (``[B]``) and candidate
        ``v`` (``cand`` ``[B, n]``; every node when ``None``): ``[B, n or N, D]``, from
        per-node rows ``[N, D]`` (the background readouts :meth:`background_features` for
        ``background_pair``, the feature currents for ``feature_pair``)."""
        src = rows[h_index.view(-1)].unsqueeze(1)                               # [B, 1, D]
        return src * (rows.unsqueeze(0) if cand is None else rows[cand])

    def node_priors(self, data, dtype: torch.dtype) -> List[Tensor]:
        """The query-independent features ``[N, D]`` of every node the scoring MLP also
        reads: the degree prior (:meth:`relation_degrees` mapped by ``prior``) and the
        background readout (:meth:`background_features`), those switched on."""
        memo = self._priors
        if memo is not None and memo.get("data") is data and memo.get("dtype") == dtype:
            return memo["out"]          # the same forward's other direction (symmetric)
        out = []
        if self.prior is not None:
            out.append(self.degree_features(self.relation_degrees(data).to(dtype)))
        if self.background_query is not None:
            out.append(self.background_features(data).to(dtype))
        if memo is not None:
            memo.update(data=data, dtype=dtype, out=out)
        return out

    def background_features(self, data) -> Tensor:
        """``[N, D]``: every node's spike readout :math:`\\sum_t \\kappa_t s_v[t]` in
        the same circuit run once on the whole graph without a query, its bias driving
        every neuron at every step (``drive="always"``, whatever the model's ``drive``)
        and its delays and relation weights those of a learned query vector
        (``background_query``). A description of each node's multi-hop neighbourhood
        that does not depend on the query: what tells apart the candidates a
        query-driven wave does not reach (with ``background=True``).

        In evaluation (``eval()`` mode, gradients off) the result is cached while the
        graph's tensors, every parameter and the readout kernel are unchanged (as
        :meth:`plan` caches the graph's structure), so a test split run in chunks
        simulates the background once."""
        if self.background_query is None:
            raise ValueError("background_features needs a model with background=True")
        key = None
        if not self.training and not torch.is_grad_enabled():
            tensors = (data.edge_index, getattr(data, "edge_type", None),
                       getattr(data, "edge_weight", None), getattr(data, "x", None),
                       *self.parameters(), self.kappa)
            key = (_versions(tensors), int(data.num_nodes), self.conv.explain)
            if self._background is not None:
                old, old_key, enc = self._background
                # the cache holds the tensors, so their memory cannot be reused by others
                if old_key == key and all(a is b for a, b in zip(old, tensors)):
                    return enc
        enc = self._spike_readout(self._background_frames(data))
        self._background = None if key is None else (tensors, key, enc)
        return enc

    def _background_query(self) -> Tensor:
        """The scaled query vector ``[1, D]`` of the background circuit."""
        zero = torch.zeros(1, dtype=torch.long, device=self.kappa.device)
        return self._scale_query(self.background_query(zero))

    def _background_frames(self, data) -> List[Tensor]:
        """The ``T`` spike frames ``[N, D]`` of the background circuit (no cache)."""
        q = self._background_query()
        z, w = self.relation_parameters(q)
        return self.conv.simulate(self._background_current(data, q), data.edge_index,
                                  getattr(data, "edge_type", None),
                                  edge_weight=getattr(data, "edge_weight", None),
                                  delay_logits=z, relation_weights=w,
                                  plan=None if self.conv.explain else self.plan(data),
                                  drive="always")

    def _background_current(self, data, q: Tensor) -> Tensor:
        """The background circuit's input current ``[N, 1, D]``: zero, or the feature
        currents (:meth:`feature_currents`, with ``node_features``)."""
        if self.feature_encoder is None:
            return q.new_zeros(int(data.num_nodes), 1, self.hidden_dim)
        return self._once("feature_currents", data, q.dtype).unsqueeze(1)

    def _once(self, name: str, data, dtype: torch.dtype) -> Tensor:
        """``self.<name>(data, dtype)`` (:meth:`feature_currents`, :meth:`unit_features`,
        :meth:`cosine_units`),
        computed once per forward: kept in the node-prior memo, which both scoring
        directions and the background circuit share."""
        memo = self._priors
        kept = memo.get(name) if memo is not None else None
        if kept is not None and kept[0] is data and kept[1] == dtype:
            return kept[2]
        out = getattr(self, name)(data, dtype)
        if memo is not None:
            memo[name] = (data, dtype, out)
        return out

    def feature_currents(self, data, dtype: torch.dtype) -> Tensor:
        r"""``[N, D]``: every node's input current in the background circuit from its
        features, :math:`(V_{th}/2)\,W \hat x_v` (``node_features``; :math:`\hat x_v`
        from :meth:`unit_features`)."""
        if self.feature_encoder is None:
            raise ValueError("feature_currents needs a model with node_features > 0")
        units = self._once("unit_features", data, dtype)
        return self.feature_encoder(units) * (self.v_threshold / 2)

    def unit_features(self, data, dtype: torch.dtype) -> Tensor:
        r"""``[N, F]``: every node's features ``data.x``, smoothed with ``feature_hops``
        (:meth:`smoothed_features`) and scaled to unit length, :math:`\hat x_v`."""
        x = self.smoothed_features(data, self._raw_features(data, dtype), self.feature_hops)
        return nn.functional.normalize(x, dim=-1)

    def cosine_units(self, data, dtype: torch.dtype) -> List[Tensor]:
        r"""``feature_cosine_hops + 1`` tensors ``[N, F]``: every node's features smoothed
        over 0, 1, ..., ``feature_cosine_hops`` hops (:meth:`smoothed_features`), each
        scaled to unit length: the rows whose products are the cosine inputs."""
        depths = self.smoothed_features(data, self._raw_features(data, dtype),
                                        self.feature_cosine_hops, every=True)
        return [nn.functional.normalize(x, dim=-1) for x in depths]

    def _raw_features(self, data, dtype: torch.dtype) -> Tensor:
        """``data.x`` in ``dtype``, checked against the model's feature width."""
        if self.feature_encoder is None:
            raise ValueError("unit_features needs a model with node_features > 0")
        n = int(data.num_nodes)
        x = getattr(data, "x", None)
        if x is None or x.dim() != 2 or x.shape != (n, self.feature_dim):
            got = None if x is None else tuple(x.shape)
            raise ValueError(f"the model reads node features: data.x must be "
                             f"[{n}, {self.feature_dim}], got {got}")
        return x.to(dtype)

    @staticmethod
    def smoothed_features(data, x: Tensor, hops: int, every: bool = False):
        r""":math:`\hat A^k x` for ``k = hops`` (with ``every``: the list
        :math:`x, \hat A x, ..., \hat A^k x`, from one normalised adjacency) over
        ``data.edge_index`` (message from source to target; every edge, whatever its
        relation, parallel edges adding up),
        :math:`\hat A = D^{-1/2}(A + I)D^{-1/2}` with exactly one self loop per node
        (PyG's ``gcn_norm``); ``x`` itself when ``hops`` is 0.

        Example:
            >>> from torch_geometric.data import Data
            >>> path = Data(edge_index=torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]),
            ...             num_nodes=3)
            >>> GRSNN.smoothed_features(path, torch.tensor([[3.0], [0.0], [0.0]]), 1)
            tensor([[1.5000],
                    [1.2247],
                    [0.0000]])
        """
        if not hops:
            return [x] if every else x
        from torch_geometric.nn.conv.gcn_conv import gcn_norm
        n = int(data.num_nodes)
        ei, w = gcn_norm(data.edge_index, None, n, add_self_loops=True, dtype=x.dtype)
        adj = torch.sparse_coo_tensor(ei.flip(0), w, (n, n),                # [target, source]
                                      check_invariants=False).coalesce()
        depths = [x]
        for _ in range(hops):
            depths.append(torch.sparse.mm(adj, depths[-1]))
        return depths if every else depths[-1]

    def background_spike_trains(self, data) -> Tensor:
        """The background circuit's spike trains as booleans ``[T, N, D]`` (no gradient),
        for analysis: the run :meth:`background_features` reads (``background=True``)."""
        if self.background_query is None:
            raise ValueError("background_spike_trains needs a model with background=True")
        with torch.no_grad():
            frames = self._background_frames(data)
            return torch.stack(frames).view(len(frames), int(data.num_nodes),
                                            self.hidden_dim).bool()

    def background_delays(self) -> Tensor:
        """The background circuit's integer delays ``[R, D]`` (long, in ``{0..K}``)."""
        if self.background_query is None:
            raise ValueError("background_delays needs a model with background=True")
        with torch.no_grad():
            return self._delays_of(self._background_query())[0]

    def _spike_readout(self, frames) -> Tensor:
        """``sum_t kappa_t s[t]`` of the ``T`` frames."""
        kappa = self.kappa.tolist()
        enc = kappa[0] * frames[0]
        for k, s in zip(kappa[1:], frames[1:]):
            enc = enc + k * s
        return enc

    def readout_parts(self, frames, u: Optional[Tensor] = None) -> List[Tensor]:
        """The spike-train features of each node from its frames ``T x [M, C]``:
        ``[sum_t kappa_t s[t]]``, plus the first-spike code and ``u / V_th`` (``u`` the
        final membrane) with ``readout="state"``."""
        enc = self._spike_readout(frames)
        if self.readout != "state":
            return [enc]
        if u is None:
            raise ValueError("the state readout needs the final membrane u")
        return [enc, first_spike_code(frames), u / self.v_threshold]

    def degree_features(self, degrees: Tensor) -> Tensor:
        """The degree prior's features ``[..., D]`` of :meth:`relation_degrees` rows,
        computed in float64 and rounded to their dtype (as :meth:`score` does), so that a
        row's features do not depend on how many rows are computed together."""
        if self.prior is None:
            raise ValueError("degree_features needs a model with degree_prior=True")
        out = nn.functional.linear(degrees.double(), self.prior.weight.double(),
                                   self.prior.bias.double())
        return out if degrees.dtype == torch.float64 else out.to(degrees.dtype)

    # ----------------------------------------------------------------- scoring
    def score(self, features: Tensor) -> Tensor:
        """MLP scores of readout features ``[..., 2D] -> [...]``.

        Spiking scores tie often (nodes with identical spike trains), and a matrix product
        may round identical rows differently depending on their position in the batch.
        The MLP therefore runs in float64 and the scores are rounded to the features' dtype
        (float32 by default), so that identical features get identical scores wherever
        they sit (exact tie semantics for the realistic and pessimistic ranks). A float64
        model keeps float64 scores.
        """
        x = features.double()
        for layer in self.mlp:
            if isinstance(layer, nn.Linear):
                x = nn.functional.linear(x, layer.weight.double(), layer.bias.double())
            else:
                x = layer(x)
        out = x.squeeze(-1)
        return out if features.dtype == torch.float64 else out.to(features.dtype)

    def to_tail_queries(self, batch: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Turn head-corruption rows into tail queries with the inverse relation."""
        h, t, r = batch.unbind(-1)
        is_tail = (h == h[:, :1]).all(dim=-1, keepdim=True)
        inv = (r + self.num_relations // 2) % self.num_relations
        return (torch.where(is_tail, h, t), torch.where(is_tail, t, h),
                torch.where(is_tail, r, inv))

    def forward(self, data, batch: Tensor) -> Tensor:
        """Logits ``[B, 1 + n]`` for ``batch`` ``[B, 1 + n, 3]`` of (head, tail, relation)."""
        if batch.dim() != 3 or batch.size(-1) != 3:
            raise ValueError(f"batch must have shape [B, 1 + n, 3], got {list(batch.shape)}")
        self._rates = []
        h, t, r = self.to_tail_queries(batch)
        if not ((h == h[:, :1]).all() and (r == r[:, :1]).all()):
            raise ValueError("every row of batch must share its head (or its tail) and relation")
        self._priors = {}        # both directions read the node priors of one computation
        waves: Optional[List[Tensor]] = [] if self.wave_meet else None
        try:
            feat = self._features_at(data, h[:, 0], r[:, 0], t, waves)
            if self.symmetric:
                if (t == t[:, :1]).all():     # one circuit from each row's shared tail
                    inv = self._features_at(data, t[:, 0], r[:, 0], h, waves)
                else:                         # one circuit from every candidate tail
                    inv = self._features_at(data, t.reshape(-1), r.reshape(-1),
                                            h.reshape(-1, 1), waves).view(*t.shape, -1)
                feat = (feat + inv) / 2
        finally:
            self._priors = None
        if waves is not None:
            other = waves[1].view(t.size(0), -1, *waves[1].shape[1:])   # [B, 1 or n, N, D]
            meet = self.meet_features(waves[0], other).expand(*t.shape, -1)
            at = self.query_independent_start() - self.hidden_dim
            feat = torch.cat([feat[..., :at], meet, feat[..., at:]], dim=-1)
        if self.training and self.wave_only_rows:
            feat = self.drop_query_independent(feat, torch.rand(feat.size(0), device=feat.device)
                                               < self.wave_only_rows)
        return self.score(feat)

    @staticmethod
    def meet_features(ends: Tensor, others: Tensor) -> Tensor:
        r"""``wave_meet``'s inputs ``[B, k, D]``: :math:`\log(1 + \sum_w
        \mathrm{enc}_h[w] \odot \mathrm{enc}_v[w])`, from the spike readouts of every node
        ``w`` in the circuit run from one end ``h`` (``ends`` ``[B, N, D]``) and in the
        circuits run from the other ends ``v`` (``others`` ``[B, k, N, D]``). A node adds
        to a channel only where both waves made that channel's neurons fire, the more the
        earlier they fired: a count of the nodes where the two waves meet, weighted by
        their arrival times. Readouts are non-negative, so the sum is too.

        Example:
            >>> ends = torch.tensor([[[1.0], [0.5], [0.0]]])            # [1, 3, 1]
            >>> others = torch.tensor([[[[0.0], [1.0], [1.0]]]])        # [1, 1, 3, 1]
            >>> GRSNN.meet_features(ends, others)                       # log(1 + 0.5)
            tensor([[[0.4055]]])
        """
        return torch.log1p(torch.einsum("bwd,bkwd->bkd", ends, others))

    def query_independent_start(self) -> int:
        """The first column of the scoring MLP's inputs that does not depend on the
        query's circuit or the degree prior: the background readout, then the pair
        inputs (what :attr:`wave_only_rows` zeroes). With ``wave_meet`` the ``D`` meet
        inputs (:meth:`meet_features`) come just before it."""
        d = self.hidden_dim
        return ((4 if self.readout == "state" else 2) * d + (d if self.degree_prior else 0)
                + (d if self.wave_meet else 0))

    def drop_query_independent(self, feat: Tensor, rows: Tensor) -> Tensor:
        """``feat`` ``[B, n, F]`` with the query-independent inputs
        (:meth:`query_independent_start` onwards; with ``wave_meet_dropped`` the meet
        inputs before it as well) of the rows ``rows`` (``[B]`` bool) set to zero."""
        start = self.query_independent_start() - (self.hidden_dim if self.wave_meet_dropped
                                                   else 0)
        keep = (~rows).to(feat.dtype).view(-1, *([1] * (feat.dim() - 1)))
        return torch.cat([feat[..., :start], feat[..., start:] * keep], dim=-1)

    def _features_at(self, data, h_index: Tensor, r_index: Tensor, cand: Tensor,
                     waves: Optional[List[Tensor]] = None) -> Tensor:
        """:meth:`node_features` of the candidates ``cand`` (``[B, n]``): ``[B, n, F]``,
        on the reached subgraph with ``query_sized`` (the whole graph where a spike
        leaves it, or with explanation hooks). With a list ``waves``, also appends the
        spike readout of every node ``[B, N, D]`` (zero where the wave did not reach)."""
        if self.query_sized and not self.conv.explain:
            from .query_sized import candidate_features
            out = self._on_reached(candidate_features(self, data, h_index, r_index, cand,
                                                      waves))
            if out is not None:
                return out
        feat = self.node_features(data, h_index, r_index)
        if waves is not None:
            waves.append(feat[..., :self.hidden_dim])
        return feat.gather(1, cand.unsqueeze(-1).expand(-1, -1, feat.size(-1)))

    def score_query(self, data, head: int, relation: int) -> Tensor:
        """Logits ``[N]`` of every node as the tail of one query ``(head, relation, ?)``.

        Under ``torch.no_grad()`` a query-driven circuit (``drive="reached"``, sum
        aggregation, no LayerNorm) simulates only the nodes the query's wave reaches
        (:func:`grsnn.nn.reached.reached_scores`: memory proportional to them, not to
        the graph; not with ``background``, a whole-graph run); otherwise one
        :meth:`score_all` run. Both give the same scores up to
        the last bits (see :func:`~grsnn.nn.reached.reached_scores`)."""
        from .reached import reached_scores, supports_reached
        if (not torch.is_grad_enabled() and supports_reached(self.conv) and not self.symmetric
                and self.background_query is None):
            self._rates = []
            return reached_scores(self, data, int(head), int(relation))
        device = self.kappa.device
        return self.score_all(data, torch.tensor([int(head)], device=device),
                              torch.tensor([int(relation)], device=device))[0]

    def score_all(self, data, h_index: Tensor, r_index: Tensor) -> Tensor:
        """Logits of every node as the tail of ``(h, r, ?)``: ``[B, N]`` (one circuit run)."""
        if self.symmetric:
            raise ValueError("score_all is not defined for symmetric scoring; score pairs")
        self._rates = []
        if self.query_sized and not self.conv.explain:
            from .query_sized import all_scores
            out = self._on_reached(all_scores(self, data, h_index, r_index))
            if out is not None:
                return out
        return self.score(self.node_features(data, h_index, r_index))

    def _on_reached(self, out: Optional[Tuple[Tensor, Tensor]]) -> Optional[Tensor]:
        """The result of a query-sized computation, ``(value, firing rate)``: record the
        rate (``track_rate``) and return the value; ``None`` (the whole graph must run):
        count the fallback."""
        if out is None:
            self.query_sized_fallbacks += 1
            return None
        if self.track_rate:
            self._rates.append(out[1])
        return out[0]
