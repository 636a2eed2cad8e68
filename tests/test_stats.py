"""Synaptic operations counted from spikes and graph, against a brute force."""
import torch
from torch_geometric.data import Data

from grsnn.nn import GRSNN
from grsnn.tasks.stats import circuit_stats


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
