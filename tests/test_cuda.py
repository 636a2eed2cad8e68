"""The engine on a CUDA device against the same computation on the CPU (the reference path).

Skipped where no CUDA device is present (CI and the 2-core development machines); run them on
a GPU machine with ``bash scripts/gpu_check.sh``, which also times the engine there."""
import json

import pytest
import torch

from grsnn.data import load_triples_folder
from grsnn.nn import GRSNN, SpikingGNN
from grsnn.tasks import KGCompletionTask, Trainer, load_checkpoint

from test_fused_step import _kg
from test_tasks import tiny_cfg, write_kg

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(),
                                reason="needs a CUDA device (scripts/gpu_check.sh runs these)")


def _run(model, data, batch):
    out = model(data, batch)
    out.logsumexp(-1).sum().backward()
    return out.detach().cpu(), {n: p.grad.cpu() for n, p in model.named_parameters()
                                if p.grad is not None}


@pytest.mark.parametrize("compiled", [False, True])
@pytest.mark.parametrize("kw", [dict(),
                                dict(layer_norm=True, relation_weight=True, linear_scale=0.3,
                                     self_connection=True, aggregate="pna"),
                                dict(dependent=False, aggregate="pna"),
                                dict(surrogate="atan", delay_bound=9)])
def test_grsnn_on_cuda_gives_the_cpu_logits_and_gradients(kw, compiled):
    data, batch = _kg()
    torch.manual_seed(1)
    cpu = GRSNN(6, hidden_dim=8, compiled=compiled, **kw).double()
    gpu = GRSNN(6, hidden_dim=8, compiled=compiled, **kw).double()
    gpu.load_state_dict(cpu.state_dict())
    out0, g0 = _run(cpu, data, batch)
    out1, g1 = _run(gpu.cuda(), data.cuda(), batch.cuda())
    assert torch.allclose(out0, out1, rtol=1e-9, atol=1e-9)
    assert g0.keys() == g1.keys() and "query.weight" in g0
    for name in g0:        # sums in another order: rounding, not different spikes
        assert torch.allclose(g0[name], g1[name], rtol=1e-6, atol=1e-9), name


def test_spiking_gnn_on_cuda_matches_cpu():
    g = torch.Generator().manual_seed(0)
    x, ei = torch.randn(20, 5, generator=g), torch.randint(0, 20, (2, 70), generator=g)
    torch.manual_seed(0)
    cpu = SpikingGNN(5, 16, num_layers=2, out_channels=3).double()
    gpu = SpikingGNN(5, 16, num_layers=2, out_channels=3).double()
    gpu.load_state_dict(cpu.state_dict())
    outs = []
    for model, dev in ((cpu, "cpu"), (gpu.cuda(), "cuda")):
        out = model(x.double().to(dev), ei.to(dev))
        out.square().sum().backward()
        outs.append((out.detach().cpu(), model.convs[0].lin.weight.grad.cpu()))
    assert torch.allclose(outs[0][0], outs[1][0], atol=1e-9)
    assert torch.allclose(outs[0][1], outs[1][1], rtol=1e-6, atol=1e-9)


def test_kg_run_on_cuda_trains_and_its_checkpoint_ranks_as_on_cpu(tmp_path):
    folder = write_kg(tmp_path / "kg", seed=1)
    cfg = tiny_cfg(folder, device="cuda")
    (tmp_path / "run").mkdir()
    results = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg,
                      tmp_path / "run", progress=False).fit()
    assert 0 < results["test"]["mrr"] <= 1
    saved = json.loads((tmp_path / "run" / "results.json").read_text())
    assert saved["test"]["mrr"] == results["test"]["mrr"]
    # the checkpoint (saved from the GPU) ranks the same on the CPU
    state = load_checkpoint(tmp_path / "run" / "best.pt")
    task = KGCompletionTask(load_triples_folder(folder), tiny_cfg(folder))
    model = task.build_model()
    model.load_state_dict({k: v.cpu() for k, v in state["model"].items()})
    cpu_test = task.evaluate(model, "test", progress=False)
    assert cpu_test["num_queries"] == results["test"]["num_queries"]
    assert abs(cpu_test["mrr"] - results["test"]["mrr"]) < 1e-3
