"""Synaptic operations counted from spikes and graph, against a brute force."""
import pytest
import torch
from torch_geometric.data import Data

from grsnn.nn import GRSNN
from grsnn.reports.firing_stats import circuit_stats


def test_delivered_spikes_match_brute_force():
    torch.manual_seed(0)
    n, rels = 12, 2
    ei = torch.randint(0, n, (2, 40))
    et = torch.randint(0, rels, (40,))
    data = Data(edge_index=torch.cat([ei, ei.flip(0)], 1), edge_type=torch.cat([et, et + rels]),
                num_nodes=n)
    model = GRSNN(2 * rels, hidden_dim=4, time_steps=8, linear_scale=3.0)
    h, r = torch.tensor([0, 5]), torch.tensor([1, 2])
    stats = circuit_stats(model, data, h, r)
    spikes = model.spike_trains(data, h, r).float()          # [T, N, B, D]
    delays = model.integer_delays(r)                         # [B, R, D]
    T = spikes.size(0)
    want = torch.zeros(2)
    for (u, _), rho in zip(data.edge_index.t().tolist(), data.edge_type.tolist()):
        for b in range(2):
            for k in range(4):
                d = int(delays[b, rho, k])
                want[b] += sum(spikes[t - 1 - d, u, b, k].item() for t in range(1 + d, T))
    assert want.sum() > 0
    assert stats["delivered_spikes_per_query"] == want.mean().item()
    assert stats["sops_per_query"] == 4 * want.mean().item()
    assert abs(stats["firing_rate"] - spikes.mean().item()) < 1e-12
    assert stats["gnn_macs_per_query"] == (T - 1) * (80 * 4 + n * 16)
    assert len(stats["firing_rate_per_step"]) == T


def test_operation_counts_of_grsnn_plus_by_hand():
    from grsnn.reports.firing_stats import operation_counts
    # 3 nodes, 4 edges, D = 2, T = 3 (2 layers), 5 delivered spikes, 3 own spikes
    plus = GRSNN(2, hidden_dim=2, time_steps=3, relation_weight=True, self_connection=True,
                 layer_norm=True, aggregate="pna")
    c = operation_counts(plus, torch.tensor([5.0]), torch.tensor([3.0]), 3, 4)
    # spiking: sum + sum of squares 2 x 5, max/min 2 x 2 x 4 x 2, self 2 x 3,
    # LayerNorm 2 x 3 x 2 x 2
    assert c["snn_ac"].item() == 10 + 32 + 6 + 24
    # omega^2 (R x D), PNA finish + scalers + 12D linear 2 x 3 x 2 x (3 + 8 + 24), LayerNorm 36
    assert c["snn_mac"].item() == 4 + 420 + 36
    # GNN: messages 16, squares 16, the same dense part, self block 2 x 3 x 2 x 2, LayerNorm
    assert c["gnn_mac"].item() == 16 + 16 + 420 + 24 + 36
    assert c["gnn_ac"].item() == 32 + 24
    # relation weights with sum aggregation: a delivered spike is D multiply-accumulates
    weighted = GRSNN(2, hidden_dim=2, time_steps=3, relation_weight=True)
    c = operation_counts(weighted, torch.tensor([5.0]), torch.tensor([3.0]), 3, 4)
    assert (c["snn_ac"].item(), c["snn_mac"].item()) == (0, 10)
    assert c["gnn_mac"].item() == 2 * (4 * 2 + 3 * 4)


def test_circuit_stats_of_grsnn_plus_count_its_own_spikes_and_dense_work():
    torch.manual_seed(1)
    n = 10
    ei = torch.randint(0, n, (2, 30))
    data = Data(edge_index=ei, edge_type=torch.randint(0, 2, (30,)), num_nodes=n)
    model = GRSNN(2, hidden_dim=4, time_steps=6, relation_weight=True, self_connection=True,
                  layer_norm=True, aggregate="pna", linear_scale=3.0)
    h, r = torch.tensor([0, 3]), torch.tensor([0, 1])
    stats = circuit_stats(model, data, h, r)
    spikes = model.spike_trains(data, h, r).float()            # [T, N, B, D]
    own = spikes[:-1].sum(dim=(0, 1, 3)).mean().item()           # read by the self connection
    assert own > 0
    layers, d, e = 5, 4, 30
    want_ac = (2 * stats["delivered_spikes_per_query"] + layers * 2 * e * d + d * own
               + layers * n * d * 2)
    assert stats["snn_acs_per_query"] == pytest.approx(want_ac)
    dense = layers * n * d * (3 + 8 + 12 * d)
    assert stats["snn_macs_per_query"] == model.num_relations * d + dense + layers * n * d * 3
    # the dense PNA layer is most of both sides' energy: far from the plain model's ratio
    snn = stats["snn_acs_per_query"] * 0.9 + stats["snn_macs_per_query"] * 4.6
    assert stats["snn_energy_uj_per_query"] == pytest.approx(snn * 1e-6)
    assert 1 < stats["energy_ratio_gnn_over_snn"] < 1.3


def test_stats_print_the_measured_cpu_time_per_query_beside_the_energy():
    import re

    from grsnn.reports.firing_stats import format_circuit_stats
    torch.manual_seed(0)
    data = Data(edge_index=torch.tensor([[0, 1, 2], [1, 2, 3]]),
                edge_type=torch.tensor([0, 0, 1]), num_nodes=4)
    stats = circuit_stats(GRSNN(2, hidden_dim=4, time_steps=5), data, torch.tensor([0, 1]),
                          torch.tensor([0, 1]))
    assert stats["cpu_ms_per_query"] >= 0 and stats["wall_ms_per_query"] > 0
    assert stats["threads"] == torch.get_num_threads()
    lines = format_circuit_stats(stats, "test").splitlines()
    energy = next(i for i, x in enumerate(lines) if x.startswith("energy per query"))
    assert re.fullmatch(r"measured time per query on this machine: CPU [0-9.e+-]+ ms "
                        r"\(wall [0-9.e+-]+ ms, \d+ threads\)", lines[energy + 1])


def test_background_circuit_is_counted_apart_against_brute_force():
    from grsnn.reports.firing_stats import format_circuit_stats
    torch.manual_seed(2)
    n, rels = 10, 2
    ei = torch.randint(0, n, (2, 30))
    data = Data(edge_index=ei, edge_type=torch.randint(0, rels, (30,)), num_nodes=n)
    model = GRSNN(rels, hidden_dim=3, time_steps=7, background=True, drive="reached")
    with torch.no_grad():
        model.conv.lin.bias.fill_(3.0)         # a bias that makes the background fire
    h, r = torch.tensor([0, 4]), torch.tensor([0, 1])
    stats = circuit_stats(model, data, h, r)
    bg = stats["background"]
    trains = model.background_spike_trains(data).double()                     # [T, N, D]
    T = trains.size(0)
    # the trains are the run background_features reads
    kappa = model.kappa.double()
    want_enc = (kappa.view(-1, 1, 1) * trains).sum(0)
    assert torch.allclose(model.background_features(data).double(), want_enc, atol=1e-6)
    delays = model.background_delays()                                         # [R, D]
    assert delays.shape == (rels, 3)
    want = 0.0
    for (u, _), rho in zip(data.edge_index.t().tolist(), data.edge_type.tolist()):
        for k in range(3):
            d = int(delays[rho, k])
            want += sum(trains[t - 1 - d, u, k].item() for t in range(1 + d, T))
    assert want > 0
    assert bg["delivered_spikes"] == want
    assert bg["spikes"] == trains.sum().item() > 0
    assert bg["firing_rate"] == pytest.approx(trains.mean().item())
    assert bg["acs"] == 3 * want and bg["macs"] == 0
    assert bg["energy_uj"] == pytest.approx(3 * want * 0.9e-6)
    # bias-driven everywhere: the background fires where the query-driven circuit is silent
    assert bg["firing_rate"] > stats["firing_rate"]
    text = format_circuit_stats(stats, "test")
    assert "background circuit (run once per graph" in text
    assert f"delivered along edges: {want:.0f}" in text.split("background circuit")[1]
    plain = circuit_stats(GRSNN(rels, hidden_dim=3, time_steps=7), data, h, r)
    assert "background" not in plain
    assert "background circuit" not in format_circuit_stats(plain, "test")
    with pytest.raises(ValueError, match="background=True"):
        GRSNN(rels, hidden_dim=3).background_spike_trains(data)


def test_reached_nodes_per_query_against_the_dense_spike_trains():
    """The nodes a query-driven circuit's messages reach within the horizon, counted
    from the dense spike trains and the integer delays edge by edge."""
    from grsnn.reports.firing_stats import format_circuit_stats
    torch.manual_seed(3)
    n, rels = 14, 2
    ei = torch.randint(0, n, (2, 24))
    data = Data(edge_index=ei, edge_type=torch.randint(0, rels, (24,)), num_nodes=n)
    model = GRSNN(rels, hidden_dim=4, time_steps=9, drive="reached", linear_scale=3.0)
    h, r = torch.tensor([0, 3, 7]), torch.tensor([0, 1, 1])
    stats = circuit_stats(model, data, h, r)
    spikes = model.spike_trains(data, h, r)                  # [T, N, B, D]
    delays = model.integer_delays(r)                         # [B, R, D]
    T = spikes.size(0)
    want = []
    for b in range(3):
        reached = {int(h[b])}
        for (u, v), rho in zip(ei.t().tolist(), data.edge_type.tolist()):
            for k in range(4):
                d = int(delays[b, rho, k])
                if any(spikes[j, u, b, k] for j in range(T - 1 - d)):
                    reached.add(v)
        want.append(len(reached))
    assert 1 < sum(want) / 3 < n                             # neither silent nor everything
    assert stats["reached_per_query"] == pytest.approx(sum(want) / 3)
    assert stats["reached_share"] == pytest.approx(sum(w / n for w in want) / 3)
    assert f"{sum(want) / 3:.1f} of {n}" in format_circuit_stats(stats, "test")
    # a bias-driven circuit has no reached set: its unreached neurons are not at rest
    plain = circuit_stats(GRSNN(rels, hidden_dim=4, time_steps=9), data, h, r)
    assert "reached_per_query" not in plain
    assert "nodes reached per query" not in format_circuit_stats(plain, "test")
