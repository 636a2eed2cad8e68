"""Node classification on Cora / CiteSeer (Planetoid public split): PyG's standard GCN
recipe, with the model line the only change (``--model spiking`` uses grsnn's SpikingGNN).

Run:  python examples/node_classification.py [--dataset Cora] [--model spiking|gcn|sage|gat]
          [--epochs 200] [--hidden 64] [--layers 2] [--lr 0.01] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric import seed_everything
from torch_geometric.nn import GAT, GCN, GraphSAGE

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from grsnn.data import planetoid_data  # noqa: E402
from grsnn.nn import SpikingGNN  # noqa: E402


def make_model(name: str, in_channels: int, out_channels: int, hidden: int = 64,
               num_layers: int = 2, **kwargs):
    """The model line: the same arguments for every model (``kwargs``: extra arguments)."""
    cls = {"spiking": SpikingGNN, "gcn": GCN, "sage": GraphSAGE, "gat": GAT}[name]
    return cls(in_channels, hidden, num_layers, out_channels, dropout=0.5, **kwargs)


def run(dataset: str, model_name: str, epochs: int = 200, seed: int = 0, hidden: int = 64,
        verbose: bool = True, num_layers: int = 2, lr: float = 0.01,
        model_kwargs: dict | None = None) -> dict:
    seed_everything(seed)   # torch, numpy and random (PyG samples negatives with them)
    data = planetoid_data(dataset)
    model = make_model(model_name, data.num_features, int(data.y.max()) + 1, hidden,
                       num_layers, **(model_kwargs or {}))                  # the model line
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=5e-4)
    best_val = test_acc = 0.0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        out = model(data.x, data.edge_index)
        F.cross_entropy(out[data.train_mask], data.y[data.train_mask]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            pred = model(data.x, data.edge_index).argmax(-1)
        accs = [float((pred[m] == data.y[m]).float().mean())
                for m in (data.train_mask, data.val_mask, data.test_mask)]
        if accs[1] > best_val:
            best_val, test_acc = accs[1], accs[2]
        if verbose and epoch % 20 == 0:
            print(f"epoch {epoch:3d}  train {accs[0]:.3f}  val {accs[1]:.3f}  test {accs[2]:.3f}")
    return {"val": best_val, "test": test_acc, "seconds": time.perf_counter() - start,
            "params": sum(p.numel() for p in model.parameters()), "model": model.eval(),
            "data": data}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--model", default="spiking", choices=("spiking", "gcn", "sage", "gat"))
    p.add_argument("--epochs", type=int, default=200)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.01)
    args = p.parse_args()
    r = run(args.dataset, args.model, args.epochs, args.seed, args.hidden,
            num_layers=args.layers, lr=args.lr)
    print(f"{args.model} on {args.dataset}: test accuracy {r['test']:.3f} at the best validation "
          f"epoch ({r['params']} parameters, {r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
