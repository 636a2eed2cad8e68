"""Why a SpikingGNN grid point falls short of GCN in PyG's recipes: fit, generalisation
and how much the spike code distinguishes the nodes.

For every point (width, layers, lr) GCN and SpikingGNN are trained with the model line of
``examples/link_prediction.py`` (``--task lp``) or ``examples/node_classification.py``
(``--task nc``), default arguments, the same seed; then, with the final weights:

- link prediction, on the test split's message-passing graph: ``train`` / ``test``, the
  AUROC of the training positives against as many sampled non-edges (drawn after the
  split with the same seed) and of the test split; ``test_tied``, the share of test
  positives whose score equals some negative's;
- node classification, on the whole graph in evaluation mode: ``train`` / ``val`` /
  ``test`` accuracy and ``train_loss`` (cross-entropy on the training nodes);
- both: ``test_at_best_val``, the recipe's own figure (at the best validation epoch), and
  ``distinct``, the share of distinct output rows; SpikingGNN only: ``rate`` (firing
  rate per layer after training), ``saturated`` (per layer, the share of neurons that fire
  at every step) and ``silent_nodes`` (share of nodes with no spike in any layer: their
  output is the output layer's bias, the same for all of them).

Run:  python benchmarks/gnn_diagnosis.py [--task lp|nc] [--dataset Cora]
          [--points 16,1,0.01 64,2,0.01 ...] [--seed 0] [--epochs N]
          [--spiking-kwargs '{"time_steps": 16}'] [--threads 1] [--results FILE]

``--epochs`` other than the recipe's (100 for link prediction, 200 for node
classification) and ``--spiking-kwargs`` (SpikingGNN's extra arguments; GCN runs as it
is) are probes: their rows carry them (``epochs``, ``kwargs``) and are told apart from the
recipe's in the table. ``--results`` defaults to ``docs/bench/gnn_lp_diagnosis.jsonl`` or
``docs/bench/gnn_nc_diagnosis.jsonl``; every finished run is appended to it and skipped
when run again, and the table is printed from that file.
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
import node_classification  # noqa: E402

# the recipe's example, its epochs, and the points measured by default
TASKS = {
    "lp": (link_prediction, 100,
           ("16,1,0.01", "16,2,0.01", "16,3,0.01", "64,2,0.01", "64,3,0.005", "256,1,0.01")),
    "nc": (node_classification, 200,
           ("16,1,0.01", "16,1,0.005", "16,3,0.005", "64,1,0.01", "64,2,0.01")),
}


@torch.no_grad()
def spike_code(model, x, edge_index, out) -> dict:
    """What the spike code distinguishes: distinct output rows, and for SpikingGNN the
    firing rate per layer and the share of nodes silent in every layer."""
    from grsnn.nn import SpikingGNN
    res: dict = {"distinct": torch.unique(out, dim=0).size(0) / out.size(0)}
    if isinstance(model, SpikingGNN):
        trains = model.spike_trains(x, edge_index)
        res["rate"] = [float(t.float().mean()) for t in trains]
        # per layer: the share of the (node, neuron) pairs that fire at every step, a rate
        # code pinned at its ceiling
        res["saturated"] = [float(t.all(0).float().mean()) for t in trains]
        fired = torch.stack([t.any(0).any(-1) for t in trains]).any(0)    # [N]
        res["silent_nodes"] = float((~fired).float().mean())
    return res


@torch.no_grad()
def diagnose_lp(result: dict, dataset: str, seed: int) -> dict:
    """The link-prediction figures above for one trained model (``link_prediction.run``)."""
    from torch_geometric import seed_everything
    import torch_geometric.transforms as T
    from torch_geometric.utils import negative_sampling
    from grsnn.data import planetoid_data
    from grsnn.metrics import auroc_ap

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
    out.update(spike_code(model, test_data.x, test_data.edge_index, z))
    return out


@torch.no_grad()
def diagnose_nc(result: dict, dataset: str, seed: int) -> dict:
    """The node-classification figures above (``node_classification.run``)."""
    import torch.nn.functional as F
    model, data = result["model"].eval(), result["data"]
    logits = model(data.x, data.edge_index)
    pred = logits.argmax(-1)
    out: dict = {split: float((pred[m] == data.y[m]).float().mean())
                 for split, m in (("train", data.train_mask), ("val", data.val_mask),
                                  ("test", data.test_mask))}
    out["train_loss"] = float(F.cross_entropy(logits[data.train_mask], data.y[data.train_mask]))
    out.update(spike_code(model, data.x, data.edge_index, logits))
    return out


def table(rows: list, task: str) -> None:
    """Print the Markdown table of ``rows``."""
    if task == "lp":
        print("| width | layers | lr | epochs | model | test (best val) | train (final) "
              "| test (final) | test tied | distinct embeddings | silent nodes "
              "| firing rate per layer |")
        print("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|")
    else:
        print("| data set | width | layers | lr | epochs | model | test (best val) "
              "| train (final) | train loss (final) | test (final) | distinct outputs "
              "| silent nodes | firing rate per layer | firing at every step, per layer |")
        print("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---|---|")
    default = TASKS[task][1]
    for r in sorted(rows, key=lambda r: (r["dataset"], r["width"], r["layers"], -r["lr"],
                                         r.get("epochs", default), r["model"],
                                         r.get("kwargs", "{}"))):
        rates = ", ".join(f"{x:.3f}" for x in r.get("rate", [])) or "-"
        saturated = ", ".join(f"{x:.3f}" for x in r.get("saturated", [])) or "-"
        silent = f"{r['silent_nodes']:.3f}" if "silent_nodes" in r else "-"
        model = r["model"] if r.get("kwargs", "{}") == "{}" else f"{r['model']} {r['kwargs']}"
        head = f"| {r['width']} | {r['layers']} | {r['lr']:g} | {r.get('epochs', default)} " \
               f"| {model} | {r['test_at_best_val']:.3f} | {r['train']:.3f} "
        if task == "lp":
            print(f"{head}| {r['test']:.3f} | {r['test_tied']:.3f} | {r['distinct']:.3f} "
                  f"| {silent} | {rates} |")
        else:
            print(f"| {r['dataset']} {head}| {r['train_loss']:.3f} | {r['test']:.3f} "
                  f"| {r['distinct']:.3f} | {silent} | {rates} | {saturated} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", choices=sorted(TASKS), default="lp",
                   help="lp: link prediction, nc: node classification")
    p.add_argument("--points", nargs="+", default=None,
                   help="width,layers,lr triples (default: the task's short points)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dataset", default="Cora")
    p.add_argument("--epochs", type=int, default=None,
                   help="training epochs (default: the recipe's)")
    p.add_argument("--spiking-kwargs", default="{}", help="JSON dict for SpikingGNN")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--results", default=None,
                   help="JSON lines file (default: docs/bench/gnn_<task>_diagnosis.jsonl)")
    args = p.parse_args()
    try:
        kwargs = json.loads(args.spiking_kwargs)
        assert isinstance(kwargs, dict)
    except (ValueError, AssertionError):
        p.error(f"--spiking-kwargs: {args.spiking_kwargs!r} is not a JSON object")
    example, recipe_epochs, default_points = TASKS[args.task]
    diagnose = diagnose_lp if args.task == "lp" else diagnose_nc
    epochs = args.epochs or recipe_epochs
    tag = json.dumps(kwargs, sort_keys=True)
    torch.set_num_threads(args.threads)
    path = Path(args.results or ROOT / f"docs/bench/gnn_{args.task}_diagnosis.jsonl")
    done = set()
    if path.exists():
        for line in path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["dataset"], r["model"], r["width"], r["layers"], r["lr"], r["seed"],
                      r.get("epochs", recipe_epochs), r.get("kwargs", "{}")))
    for point in args.points or default_points:
        try:
            w, layers, lr = point.split(",")
            width, num_layers, rate = int(w), int(layers), float(lr)
        except ValueError:
            p.error(f"--points: {point!r} is not width,layers,lr")
        for name in ("gcn", "spiking"):
            extra = tag if name == "spiking" else "{}"
            key = (args.dataset, name, width, num_layers, rate, args.seed, epochs, extra)
            if key in done:
                continue
            r = example.run(args.dataset, name, epochs, seed=args.seed, hidden=width,
                            num_layers=num_layers, lr=rate, verbose=False,
                            model_kwargs=kwargs if name == "spiking" else None)
            row = {"dataset": args.dataset, "model": name, "width": width,
                   "layers": num_layers, "lr": rate, "seed": args.seed,
                   "epochs": epochs, "kwargs": extra,
                   "test_at_best_val": r["test"], "seconds": r["seconds"],
                   **diagnose(r, args.dataset, args.seed)}
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(json.dumps(row), flush=True)
    table([json.loads(line) for line in path.read_text().splitlines()], args.task)


if __name__ == "__main__":
    main()
