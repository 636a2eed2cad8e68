"""GRSNN: calling convention, switches, analysis outputs, and learning a tiny KG."""
import pytest
import torch
from torch_geometric.data import Data

from grsnn.nn import GRSNN


def random_kg(n=20, facts=60, rels=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randint(0, n, (facts,), generator=g)
    t = torch.randint(0, n, (facts,), generator=g)
    r = torch.randint(0, rels, (facts,), generator=g)
    ei = torch.cat([torch.stack([h, t]), torch.stack([t, h])], dim=1)
    et = torch.cat([r, r + rels])
    return Data(edge_index=ei, edge_type=et, num_nodes=n)


def test_forward_shape_and_head_corruption_is_inverse_tail_query():
    torch.manual_seed(0)
    data = random_kg()
    model = GRSNN(6, hidden_dim=8, linear_scale=0.5)
    tails = torch.tensor([3, 7, 1, 0])
    tail_batch = torch.stack([torch.full((4,), 2), tails, torch.full((4,), 1)], dim=-1)[None]
    head_batch = torch.stack([tails, torch.full((4,), 2), torch.full((4,), 4)], dim=-1)[None]
    # (x, r=4, 2) for every candidate x is answered as (2, 4 + 3 mod 6 = 1, x)
    out_tail = model(data, tail_batch)
    out_head = model(data, head_batch)
    assert out_tail.shape == (1, 4)
    assert torch.allclose(out_tail, out_head)
    scores = model.score_all(data, torch.tensor([2]), torch.tensor([1]))
    assert scores.shape == (1, 20)
    assert torch.allclose(scores[0, tails], out_tail[0], atol=1e-6)


def test_spike_trains_and_integer_delays():
    torch.manual_seed(1)
    data = random_kg()
    model = GRSNN(6, hidden_dim=8, time_steps=7, delay_bound=3)
    spikes = model.spike_trains(data, torch.tensor([0, 5]), torch.tensor([2, 4]))
    assert spikes.dtype == torch.bool and spikes.shape == (7, 20, 2, 8)
    assert spikes[0, 0, 0].all() == (model.scaled_query(torch.tensor([2]))[0] >= 2).all()
    assert not spikes[0, 1:, 0].any()  # at t = 0 only the source can fire
    delays = model.integer_delays(torch.tensor([2, 4]))
    assert delays.shape == (2, 6, 8) and delays.min() >= 0 and delays.max() <= 3
    assert not torch.equal(delays[0], delays[1])  # query-dependent


@pytest.mark.parametrize("kw", [
    dict(),
    dict(dependent=False),
    dict(relation_weight=True),
    dict(relation_weight=True, dependent=False),
    dict(relation_weight=True, self_connection=True, layer_norm=True, aggregate="pna"),
    dict(delay=False),
    dict(drive="reached", readout="state"),
    dict(drive="reached", readout="state", dependent=False, delay_init=-2.0,
         degree_prior=True),
], ids=lambda k: "-".join(f"{a}={b}" for a, b in k.items()) or "default")
def test_switches_train_and_fused_matches_per_edge(kw):
    torch.manual_seed(2)
    data = random_kg()
    batch = torch.stack([torch.full((5,), 4), torch.arange(5), torch.full((5,), 2)], -1)[None]
    fused = GRSNN(6, hidden_dim=8, linear_scale=0.5, fused=True, **kw).double()
    edge = GRSNN(6, hidden_dim=8, linear_scale=0.5, fused=False, **kw).double()
    edge.load_state_dict(fused.state_dict())
    grads = []
    for model in (fused, edge):
        loss = model(data, batch).logsumexp(-1).sum()
        grads.append(torch.autograd.grad(loss, list(model.parameters()), allow_unused=True))
    for a, b in zip(*grads):
        assert (a is None) == (b is None)
        if a is not None:
            assert torch.allclose(a, b, atol=1e-10)
    names = [n for n, _ in fused.named_parameters()]
    if kw.get("delay", True):
        delay_name = "delay_generator.weight" if kw.get("dependent", True) else "conv.delay_logit"
        g = dict(zip(names, grads[0]))[delay_name]
        assert g is not None and g.abs().sum() > 0
    else:
        assert not any("delay" in n for n in names)


def test_symmetric_scoring_averages_both_directions():
    torch.manual_seed(3)
    ei = torch.randint(0, 12, (2, 30))
    ei = torch.cat([ei, ei.flip(0), torch.arange(12).repeat(2, 1)], dim=1)
    data = Data(edge_index=ei, edge_type=torch.zeros(ei.size(1), dtype=torch.long), num_nodes=12)
    model = GRSNN(1, hidden_dim=8, dependent=False, symmetric=True)
    pos = torch.tensor([[[1, 4, 0]], [[2, 9, 0]]])
    swapped = pos[..., [1, 0, 2]]
    assert torch.allclose(model(data, pos), model(data, swapped), atol=1e-6)
    # rows sharing their head with several candidate tails (one circuit from the head, one
    # from every candidate) score like the same pairs one per row
    rows = torch.tensor([[[1, 4, 0], [1, 7, 0], [1, 2, 0]], [[5, 9, 0], [5, 0, 0], [5, 11, 0]]])
    flat = rows.reshape(-1, 1, 3)
    torch.testing.assert_close(model(data, rows).reshape(-1), model(data, flat).reshape(-1),
                               rtol=0, atol=1e-6)


def test_bad_batch_shape():
    model = GRSNN(2, hidden_dim=4)
    data = random_kg(rels=1)
    with pytest.raises(ValueError, match="batch must have shape"):
        model(data, torch.zeros(3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="share"):
        model(data, torch.tensor([[[0, 1, 0], [2, 3, 0]]]))


def compositional_kg(num_chains=24, seed=0):
    """Chains x -r0-> y -r1-> z; the query relation r2(x, z) = r0 then r1 is never in the
    graph. Distractors: x -r1-> w (one hop) and y -r0-> v (wrong second relation)."""
    g = torch.Generator().manual_seed(seed)
    facts, answers = [], []
    node = 0
    for _ in range(num_chains):
        x, y, z, w, v = range(node, node + 5)
        node += 5
        facts += [(x, 0, y), (y, 1, z), (x, 1, w), (y, 0, v)]
        answers.append((x, 2, z))
    n = node
    facts = torch.tensor(facts)
    h, r, t = facts.t()
    ei = torch.cat([torch.stack([h, t]), torch.stack([t, h])], dim=1)
    et = torch.cat([r, r + 3])
    perm = torch.randperm(num_chains, generator=g)
    answers = torch.tensor(answers)[perm]
    return Data(edge_index=ei, edge_type=et, num_nodes=n), answers


def test_tiny_kg_learns_compositional_queries():
    torch.manual_seed(0)
    data, queries = compositional_kg()
    train, test = queries[:16], queries[16:]
    model = GRSNN(6, hidden_dim=16, linear_scale=1.0)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    n = data.num_nodes
    for _ in range(300):
        idx = torch.randint(0, len(train), (8,))
        h, r, t = train[idx].t()
        logits = model.score_all(data, h, r)
        target = torch.zeros_like(logits)
        target[torch.arange(8), t] = 1.0
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, target, pos_weight=torch.tensor(float(n)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        h, r, t = test.t()
        scores = model.score_all(data, h, r)
    target_score = scores[torch.arange(len(test)), t]
    rank = 1 + (scores > target_score.unsqueeze(1)).sum(1)   # pessimistic ties below
    ties = (scores == target_score.unsqueeze(1)).sum(1) - 1
    assert (rank + ties == 1).float().mean() >= 0.875, (rank + ties).tolist()
