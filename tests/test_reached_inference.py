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


def _kg(seed, n=80, e=200, rels=6):
    from torch_geometric.data import Data
    g = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n // 2, (2, e), generator=g)       # nodes n/2.. stay unreached
    ei[:, : e // 4] += n // 2                                  # a second component
    return Data(edge_index=ei, edge_type=torch.randint(0, rels, (e,), generator=g),
                num_nodes=n)


@pytest.mark.parametrize("readout", ["spikes", "state"])
@pytest.mark.parametrize("degree_prior", [False, True])
def test_score_query_on_the_reached_nodes_equals_score_all(readout, degree_prior):
    from grsnn.nn import GRSNN
    from grsnn.nn import reached as reached_mod
    data = _kg(0)
    torch.manual_seed(0)
    # float64: the reached nodes' sums and the scoring MLP's products run in another order
    # and shape than the whole graph's, so scores agree to rounding, not bit for bit (in
    # float32 the last bit may differ with the CPU's kernels)
    model = GRSNN(6, hidden_dim=8, time_steps=8, drive="reached", readout=readout,
                  degree_prior=degree_prior, linear_scale=3.0,
                  v_threshold=1.0).double().eval()
    calls = []
    real = reached_mod.simulate_reached

    def spy(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(out[0].numel())
        return out
    reached_mod.simulate_reached = spy
    try:
        with torch.no_grad():
            for h, r in [(0, 1), (5, 3), (70, 2)]:
                want = model.score_all(data, torch.tensor([h]), torch.tensor([r]))[0]
                got = model.score_query(data, h, r)
                assert got.dtype == torch.float64
                assert torch.allclose(got, want, rtol=0, atol=1e-12), (h, r)
    finally:
        reached_mod.simulate_reached = real
    assert len(calls) == 3 and 1 < max(calls) < 80          # the wave grew, not everywhere
    with torch.no_grad():                                    # chunked unreached scores
        chunked = reached_mod.reached_scores(model, data, 5, 3, chunk=7)
        assert torch.allclose(chunked, model.score_query(data, 5, 3), rtol=0, atol=1e-12)


def test_score_query_falls_back_to_the_dense_engine():
    from grsnn.nn import GRSNN
    data = _kg(1)
    torch.manual_seed(1)
    model = GRSNN(6, hidden_dim=8, time_steps=6).eval()      # drive="always": dense
    with torch.no_grad():
        want = model.score_all(data, torch.tensor([3]), torch.tensor([4]))[0]
        assert torch.equal(model.score_query(data, 3, 4), want)
    with pytest.raises(ValueError, match="drive"):
        from grsnn.nn.reached import reached_scores
        with torch.no_grad():
            reached_scores(model, data, 3, 4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_score_query_with_relation_weights_matches_score_all_to_rounding(dtype):
    """Weighted messages make the membrane sums order-dependent: equal to rounding."""
    from grsnn.nn import GRSNN
    data = _kg(2)
    torch.manual_seed(2)
    model = GRSNN(6, hidden_dim=8, time_steps=8, drive="reached", readout="state",
                  relation_weight=True, degree_prior=True, linear_scale=3.0,
                  v_threshold=1.0).to(dtype).eval()
    with torch.no_grad():
        for h, r in [(0, 1), (9, 4), (33, 0)]:
            want = model.score_all(data, torch.tensor([h]), torch.tensor([r]))[0]
            got = model.score_query(data, h, r)
            assert got.dtype == want.dtype
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_predict_ranks_a_query_driven_model_by_score_query(tmp_path, monkeypatch):
    """`grsnn predict`'s path (KGCompletionTask.predict) on a query-driven model."""
    from grsnn.nn import GRSNN
    from grsnn.nn import reached as reached_mod
    from grsnn.tasks import build_task
    from grsnn.training import merge_config
    from test_tasks import write_kg
    folder = write_kg(tmp_path / "kg")
    cfg = merge_config({"dataset": {"path": str(folder)}})
    cfg["model"].update(hidden_dim=8, time_steps=6, drive="reached", linear_scale=3.0)
    task = build_task(cfg)
    torch.manual_seed(0)
    model = task.build_model()
    assert isinstance(model, GRSNN) and model.conv.drive == "reached"
    calls = []
    real = reached_mod.reached_scores
    monkeypatch.setattr(reached_mod, "reached_scores",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    head, rel, _ = (folder / "test.txt").read_text().splitlines()[0].split("\t")
    answers = task.predict(model, head, rel, top=3)
    assert calls == [1] and len(answers) == 3
    h, r = task.resolve("test", head, rel)
    with torch.no_grad():
        want = model.score_all(task.data.splits["test"].graph, torch.tensor([h]),
                               torch.tensor([r]))[0].topk(3).values.tolist()
    assert [s for _, s, _ in answers] == pytest.approx(want)
