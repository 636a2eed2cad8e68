"""Query-sized inference (grsnn.nn.reached.simulate_reached) against the dense engine, in
double precision: the same spikes on the reached nodes, silence everywhere else."""
import pytest
import torch

from grsnn.nn import SpikingDelayConv
from grsnn.nn.reached import simulate_reached


def _case(seed, self_connection, n=60, e=150, rels=4, dim=6):
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=g)
    et = torch.randint(0, rels, (e,), generator=g)
    conv = SpikingDelayConv(dim, num_relations=rels, time_steps=9, drive="reached",
                            relation_weight=True, self_connection=self_connection,
                            linear_scale=2.0, v_threshold=1.0).double()
    torch.manual_seed(seed)
    conv.reset_parameters()
    ids = torch.tensor([3, 17])
    beta = torch.zeros(2, dim, dtype=torch.float64)
    beta[0] = 2.5
    beta[1, :2] = 1.5
    return conv, ei, et, ids, beta


@pytest.mark.parametrize("self_connection", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reached_nodes_only_give_the_dense_spikes(seed, self_connection):
    conv, ei, et, ids, beta = _case(seed, self_connection)
    n = 60
    dense_beta = torch.zeros(n, beta.size(1), dtype=torch.float64)
    dense_beta[ids] = beta
    plan = conv.build_plan(ei, n, et)
    with torch.no_grad():
        want = conv.simulate(dense_beta, ei, et, plan=plan)
        got_ids, frames = simulate_reached(conv, ids, beta, plan)
    assert 2 < got_ids.numel() < n                         # the wave grew, not everywhere
    assert got_ids.unique().numel() == got_ids.numel()
    fired = 0
    for t, (w, f) in enumerate(zip(want, frames)):
        rows = got_ids[:f.size(0)]
        assert torch.equal(w[rows], f), t
        rest = torch.ones(n, dtype=torch.bool)
        rest[rows] = False
        assert not w[rest].any(), t                       # silence off the wave
        fired += int(f.sum())
    assert fired > 0


def test_reached_inference_refuses_gradients_and_other_circuits():
    conv, ei, et, ids, beta = _case(0, False)
    plan = conv.build_plan(ei, 60, et)
    with pytest.raises(RuntimeError, match="no_grad"):
        simulate_reached(conv, ids, beta, plan)
    with torch.no_grad(), pytest.raises(ValueError, match="drive"):
        simulate_reached(SpikingDelayConv(6, num_relations=4), ids, beta, plan)
