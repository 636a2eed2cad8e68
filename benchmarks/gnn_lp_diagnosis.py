"""Why a SpikingGNN grid point falls short of GCN in PyG's link-prediction recipe: fit,
generalisation and how much the spike code distinguishes the nodes.

For every point (width, layers, lr) GCN and SpikingGNN are trained with the model line of
``examples/link_prediction.py`` (default arguments, the same seed); then, with the final
weights, on the test split's message-passing graph:

- ``train`` / ``test``: AUROC of the training positives against as many sampled
  non-edges (drawn after the split with the same seed), and of the test split
  (``test_at_best_val`` is the recipe's own figure, at the best validation epoch);
- ``test_tied``: the share of test positives whose score equals some negative's;
- SpikingGNN only: ``rate`` (firing rate per layer after training), ``silent_nodes``
  (share of nodes with no spike in any layer: their embedding is the output layer's bias,
  the same for all of them) and ``distinct`` (share of distinct embedding rows).

Run:  python benchmarks/gnn_lp_diagnosis.py [--points 16,1,0.01 64,2,0.01 ...] [--seed 0]
          [--dataset Cora] [--epochs 100] [--spiking-kwargs '{"time_steps": 16}']
          [--threads 1] [--results docs/bench/gnn_lp_diagnosis.jsonl]

``--epochs`` other than the recipe's 100 and ``--spiking-kwargs`` (SpikingGNN's extra
arguments; GCN runs as it is) are probes: their rows carry them (``epochs``, ``kwargs``)
and are told apart from the recipe's in the table.

Every finished run is appended to ``--results`` and skipped when run again; the table is
printed from that file.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "examples"))

import torch  # noqa: E402

import link_prediction  # noqa: E402

DEFAULT_POINTS = ("16,1,0.01", "16,2,0.01", "16,3,0.01", "64,2,0.01", "64,3,0.005",
                  "256,1,0.01")


@torch.no_grad()
def diagnose(result: dict, dataset: str, seed: int) -> dict:
    """The figures above for one trained model (``result`` from ``link_prediction.run``)."""
    from torch_geometric import seed_everything
    import torch_geometric.transforms as T
    from torch_geometric.utils import negative_sampling
    from grsnn.data import planetoid_data
    from grsnn.metrics import auroc_ap
    from grsnn.nn import SpikingGNN

    seed_everything(seed)   # the recipe's split, rebuilt with its seed
    split = T.RandomLinkSplit(num_val=0.05, num_test=0.1, is_undirected=True,
                              add_negative_train_samples=False)
    train_data, _, test_data = split(planetoid_data(dataset))
    model = result["model"].eval()
    z = model(test_data.x, test_data.edge_index)
    decode = link_prediction.decode
    pos_train = train_data.edge_label_index
    neg_train = negative_sampling(train_data.edge_index, num_nodes=train_data.num_nodes,
                                  num_neg_samples=pos_train.size(1), method="sparse")
    out: dict = {"train": auroc_ap(decode(z, pos_train), decode(z, neg_train))["auroc"]}
    s = decode(z, test_data.edge_label_index)
    label = test_data.edge_label
    test = auroc_ap(s[label == 1], s[label == 0])
    out.update(test=test["auroc"], test_pessimistic=test["pessimistic.auroc"],
               test_tied=test["tied_fraction"])
    out["distinct"] = torch.unique(z, dim=0).size(0) / z.size(0)
    if isinstance(model, SpikingGNN):
        trains = model.spike_trains(test_data.x, test_data.edge_index)
        out["rate"] = [float(t.float().mean()) for t in trains]
        fired = torch.stack([t.any(0).any(-1) for t in trains]).any(0)    # [N]
        out["silent_nodes"] = float((~fired).float().mean())
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", nargs="+", default=list(DEFAULT_POINTS),
                   help="width,layers,lr triples")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--spiking-kwargs", default="{}", help="JSON dict for SpikingGNN")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=str(ROOT / "docs/bench/gnn_lp_diagnosis.jsonl"))
    args = p.parse_args()
    try:
        kwargs = json.loads(args.spiking_kwargs)
        assert isinstance(kwargs, dict)
    except (ValueError, AssertionError):
        p.error(f"--spiking-kwargs: {args.spiking_kwargs!r} is not a JSON object")
    tag = json.dumps(kwargs, sort_keys=True)
    torch.set_num_threads(args.threads)
    path = Path(args.results)
    done = set()
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["dataset"], r["model"], r["width"], r["layers"], r["lr"], r["seed"],
                      r.get("epochs", 100), r.get("kwargs", "{}")))
    for point in args.points:
        try:
            w, layers, lr = point.split(",")
            width, num_layers, rate = int(w), int(layers), float(lr)
        except ValueError:
            p.error(f"--points: {point!r} is not width,layers,lr")
        for name in ("gcn", "spiking"):
            extra = tag if name == "spiking" else "{}"
            key = (args.dataset, name, width, num_layers, rate, args.seed, args.epochs, extra)
            if key in done:
                continue
            r = link_prediction.run(args.dataset, name, args.epochs, seed=args.seed,
                                    hidden=width, num_layers=num_layers, lr=rate,
                                    verbose=False,
                                    model_kwargs=kwargs if name == "spiking" else None)
            row = {"dataset": args.dataset, "model": name, "width": width,
                   "layers": num_layers, "lr": rate, "seed": args.seed,
                   "epochs": args.epochs, "kwargs": extra,
                   "test_at_best_val": r["test"], "seconds": r["seconds"],
                   **diagnose(r, args.dataset, args.seed)}
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    print("| width | layers | lr | epochs | model | test (best val) | train (final) "
          "| test (final) | test tied | distinct embeddings | silent nodes "
          "| firing rate per layer |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    for r in sorted(rows, key=lambda r: (r["width"], r["layers"], -r["lr"],
                                         r.get("epochs", 100), r["model"],
                                         r.get("kwargs", "{}"))):
        rates = ", ".join(f"{x:.3f}" for x in r.get("rate", [])) or "-"
        silent = f"{r['silent_nodes']:.3f}" if "silent_nodes" in r else "-"
        model = r["model"] if r.get("kwargs", "{}") == "{}" else f"{r['model']} {r['kwargs']}"
        print(f"| {r['width']} | {r['layers']} | {r['lr']:g} | {r.get('epochs', 100)} | {model} "
              f"| {r['test_at_best_val']:.3f} | {r['train']:.3f} | {r['test']:.3f} "
              f"| {r['test_tied']:.3f} | {r['distinct']:.3f} | {silent} | {rates} |")


if __name__ == "__main__":
    main()
