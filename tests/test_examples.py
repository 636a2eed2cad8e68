"""The PyG recipes under examples/ run with SpikingGNN as the model (a few epochs)."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import link_prediction  # noqa: E402
import node_classification  # noqa: E402


@pytest.mark.parametrize("module,epochs", [(node_classification, 3), (link_prediction, 3)])
def test_recipe_runs_with_the_spiking_model_and_is_reproducible(module, epochs):
    a = module.run("Cora", "spiking", epochs, seed=1, hidden=16, verbose=False)
    b = module.run("Cora", "spiking", epochs, seed=1, hidden=16, verbose=False)
    assert 0.0 <= a["test"] <= 1.0 and a["params"] > 0
    assert a["test"] == b["test"] and a["val"] == b["val"]          # seeded end to end
    assert type(a["model"]).__name__ == "SpikingGNN"


def test_recipe_swaps_only_the_model():
    gcn = link_prediction.make_encoder("gcn", 10, 8, 8)
    spk = link_prediction.make_encoder("spiking", 10, 8, 8)
    x, ei = torch.randn(5, 10), torch.tensor([[0, 1, 2], [1, 2, 3]])
    assert gcn(x, ei).shape == spk(x, ei).shape == (5, 8)
