"""Link prediction on Cora / CiteSeer with PyG's standard recipe (``RandomLinkSplit``, fresh
negative samples every epoch, a dot-product decoder, AUROC), the model line the only change
(``--model spiking`` uses grsnn's SpikingGNN as the encoder).

Run:  python examples/link_prediction.py [--dataset Cora] [--model spiking|gcn|sage|gat]
          [--epochs 100] [--hidden 64] [--layers 2] [--lr 0.01] [--seed 0]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch_geometric import seed_everything
import torch_geometric.transforms as T
from torch_geometric.nn import GAT, GCN, GraphSAGE
from torch_geometric.utils import negative_sampling

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from grsnn.data import planetoid_data  # noqa: E402
from grsnn.metrics import auroc_ap  # noqa: E402
from grsnn.nn import SpikingGNN  # noqa: E402


def make_encoder(name: str, in_channels: int, hidden: int, out_channels: int,
                 num_layers: int = 2, **kwargs):
    """The model line: the same arguments for every model (``kwargs``: extra arguments)."""
    cls = {"spiking": SpikingGNN, "gcn": GCN, "sage": GraphSAGE, "gat": GAT}[name]
    return cls(in_channels, hidden, num_layers, out_channels, **kwargs)


def decode(z, edge_label_index):
    return (z[edge_label_index[0]] * z[edge_label_index[1]]).sum(dim=-1)


def run(dataset: str, model_name: str, epochs: int = 100, seed: int = 0, hidden: int = 64,
        verbose: bool = True, num_layers: int = 2, lr: float = 0.01,
        model_kwargs: dict | None = None) -> dict:
    seed_everything(seed)   # torch, numpy and random (PyG samples negatives with them)
    split = T.RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True,
                              add_negative_train_samples=False)
    train_data, val_data, test_data = split(planetoid_data(dataset))
    model = make_encoder(model_name, train_data.num_features, hidden, hidden, num_layers,
                         **(model_kwargs or {}))                            # the model line
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    @torch.no_grad()
    def auroc(data):
        model.eval()
        out = decode(model(data.x, data.edge_index), data.edge_label_index)
        pos, neg = out[data.edge_label == 1], out[data.edge_label == 0]
        return auroc_ap(pos, neg)["auroc"]

    best_val = test = 0.0
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        model.train()
        opt.zero_grad()
        z = model(train_data.x, train_data.edge_index)
        neg = negative_sampling(train_data.edge_index, num_nodes=train_data.num_nodes,
                                num_neg_samples=train_data.edge_label_index.size(1),
                                method="sparse")
        index = torch.cat([train_data.edge_label_index, neg], dim=-1)
        label = torch.cat([train_data.edge_label, train_data.edge_label.new_zeros(neg.size(1))])
        F.binary_cross_entropy_with_logits(decode(z, index), label).backward()
        opt.step()
        val = auroc(val_data)
        if val > best_val:
            best_val, test = val, auroc(test_data)
        if verbose and epoch % 20 == 0:
            print(f"epoch {epoch:3d}  val AUROC {val:.4f}  test AUROC at best val {test:.4f}")
    return {"val": best_val, "test": test, "seconds": time.perf_counter() - start,
            "params": sum(p.numel() for p in model.parameters()), "model": model.eval(),
            "data": test_data}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--model", default="spiking", choices=("spiking", "gcn", "sage", "gat"))
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--lr", type=float, default=0.01)
    args = p.parse_args()
    r = run(args.dataset, args.model, args.epochs, args.seed, args.hidden,
            num_layers=args.layers, lr=args.lr)
    print(f"{args.model} on {args.dataset}: test AUROC {r['test']:.4f} at the best validation "
          f"epoch ({r['params']} parameters, {r['seconds']:.1f} s)")


if __name__ == "__main__":
    main()
