"""KG completion protocol, trainer, checkpoints, resume, configuration."""
import json
import random

import pytest
import torch
from torch_geometric.data import Data

from grsnn.data import load_triples_folder
from grsnn.metrics import filtered_ranks, ranking_metrics
from grsnn.tasks import (ConfigError, KGCompletionTask, RunError, Trainer, apply_overrides,
                         load_checkpoint, load_config, merge_config, save_checkpoint)
from grsnn.tasks.kg_completion import TripleIndex, remove_easy_edges


def write_kg(folder, seed=0, n=30, rels=3, facts=160):
    rng = random.Random(seed)
    triples = set()
    while len(triples) < facts:
        triples.add((f"e{rng.randrange(n)}", f"r{rng.randrange(rels)}", f"e{rng.randrange(n)}"))
    triples = sorted(triples)
    rng.shuffle(triples)
    seen = {e for h, _, t in triples[:120] for e in (h, t)}
    held = [x for x in triples[120:] if x[0] in seen and x[2] in seen]
    folder.mkdir(parents=True, exist_ok=True)
    parts = {"train": triples[:120], "valid": held[: len(held) // 2], "test": held[len(held) // 2:]}
    for name, rows in parts.items():
        (folder / f"{name}.txt").write_text("".join(f"{h}\t{r}\t{t}\n" for h, r, t in rows))
    return folder


def tiny_cfg(folder, **train):
    cfg = merge_config({
        "dataset": {"path": str(folder)},
        "model": {"hidden_dim": 8, "time_steps": 6},
        "task": {"num_negative": 8, "eval_batch_size": 7},
        "train": dict({"num_epoch": 2, "batch_size": 16, "seed": 3, "checkpoint_interval": 2},
                      **train),
    })
    return cfg


@pytest.fixture
def kg_task(tmp_path):
    folder = write_kg(tmp_path / "kg")
    cfg = tiny_cfg(folder)
    return KGCompletionTask(load_triples_folder(folder), cfg), cfg


def test_negatives_are_strict_and_half_the_batch_corrupts_heads(kg_task):
    task, _ = kg_task
    gen = torch.Generator().manual_seed(0)
    train = task.data.splits["train"].triples
    true = {(h, r, t) for h, t, r in train.tolist()}
    R = task.R
    graph, batch = task.make_batch(torch.arange(20), gen)
    assert batch.shape == (20, 9, 3)
    for row, (h, t, r) in zip(batch, train[:20].tolist()):
        qh, qt, qr = row[0].tolist()
        if qr < R:
            assert (qh, qt, qr) == (h, t, r)
        else:   # head corruption as the inverse tail query
            assert (qh, qt, qr) == (t, h, r + R)
        for _, neg, _ in row[1:].tolist():
            fact = (qh, qr, neg) if qr < R else (neg, qr - R, qh)
            assert fact not in true
    assert (batch[:, 0, 2] >= R).sum() == 10


def test_odd_batches_corrupt_heads_half_the_time_too():
    from grsnn.tasks.kg_completion import corrupt_heads
    gen = torch.Generator().manual_seed(0)
    for size in (1, 5):                  # FB15k-237 trains on batches of 5
        rows = torch.stack([corrupt_heads(size, gen) for _ in range(2000)]).float()
        assert 0.47 < rows.mean() < 0.53, size
        mid = size // 2                  # the coin-flip row; the others are fixed
        assert rows[:, :mid].sum() == 0 and rows[:, mid + 1:].all()
        assert 0.45 < rows[:, mid].mean() < 0.55


def test_easy_edge_removal_removes_query_edge_and_inverse(kg_task):
    task, _ = kg_task
    g = task.data.splits["train"].graph
    h, t, r = task.data.splits["train"].triples[:4].t()
    out = remove_easy_edges(g, h, t, r, task.R)
    edges = set(zip(out.edge_index[0].tolist(), out.edge_index[1].tolist(), out.edge_type.tolist()))
    for a, b, c in zip(h.tolist(), t.tolist(), r.tolist()):
        assert (a, b, c) not in edges and (b, a, c + task.R) not in edges
    assert out.edge_index.size(1) >= g.edge_index.size(1) - 8
    hop = remove_easy_edges(g, h, t, r, task.R, one_hop=True)
    pairs = set(zip(hop.edge_index[0].tolist(), hop.edge_index[1].tolist()))
    for a, b in zip(h.tolist(), t.tolist()):
        assert (a, b) not in pairs and (b, a) not in pairs


def test_drop_facts_drops_each_fact_with_its_inverse():
    from grsnn.tasks.kg_helpers import drop_facts
    # facts (0 r0 1), (1 r1 2), (0 r1 2), each with its inverse (type + 2); edges in a
    # scrambled order, so the pairing is found from the edges, not from their positions
    ei = torch.tensor([[2, 0, 1, 2, 1, 0], [1, 1, 2, 0, 0, 2]])
    et = torch.tensor([3, 0, 1, 3, 2, 1])
    g = Data(edge_index=ei, edge_type=et, num_nodes=3)
    assert drop_facts(g, 2, 0.0, torch.Generator()) is g
    seen = set()
    for seed in range(40):
        out = drop_facts(g, 2, 0.5, torch.Generator().manual_seed(seed))
        facts = {(a, c, b) if c < 2 else (b, c - 2, a) for a, b, c in
                 zip(*out.edge_index.tolist(), out.edge_type.tolist())}
        kept = list(zip(*out.edge_index.tolist(), out.edge_type.tolist()))
        assert len(kept) == 2 * len(facts)          # every kept fact keeps both edges
        seen.add(frozenset(facts))
        again = drop_facts(g, 2, 0.5, torch.Generator().manual_seed(seed))
        assert torch.equal(again.edge_index, out.edge_index)
    assert len(seen) == 8                            # every subset of the three facts occurs
    assert drop_facts(g, 2, 0.999999, torch.Generator()).edge_index.size(1) == 0


def test_drop_facts_undirected_drops_both_directions_and_keeps_self_loops():
    from grsnn.tasks.kg_helpers import drop_facts
    # edges {0, 1}, {1, 2}, {0, 2} in both directions, all relation 0, in a scrambled order,
    # and a self loop on each node
    ei = torch.tensor([[2, 0, 1, 2, 1, 0, 0, 1, 2], [1, 1, 2, 0, 0, 2, 0, 1, 2]])
    g = Data(edge_index=ei, edge_type=torch.zeros(9, dtype=torch.long), num_nodes=3)
    assert drop_facts(g, 1, 0.0, torch.Generator(), undirected=True) is g
    seen = set()
    for seed in range(40):
        out = drop_facts(g, 1, 0.5, torch.Generator().manual_seed(seed), undirected=True)
        edges = list(zip(*out.edge_index.tolist()))
        loops = [(a, b) for a, b in edges if a == b]
        links = {frozenset((a, b)) for a, b in edges if a != b}
        assert sorted(loops) == [(0, 0), (1, 1), (2, 2)]          # self loops always stay
        assert len(edges) - 3 == 2 * len(links)                     # both directions together
        seen.add(frozenset(links))
    assert len(seen) == 8                            # every subset of the three edges occurs
    out = drop_facts(g, 1, 0.999999, torch.Generator(), undirected=True)
    assert out.edge_index.tolist() == [[0, 1, 2], [0, 1, 2]]


def test_edge_dropout_thins_the_training_batches_graph(kg_task, tmp_path):
    task, _ = kg_task
    full = task.data.splits["train"].graph.edge_index.size(1)
    idx = torch.arange(4)
    g0, b0 = task.make_batch(idx, torch.Generator().manual_seed(0))
    task.cfg = apply_overrides(task.cfg, ["task.edge_dropout=0.5"])
    g1, b1 = task.make_batch(idx, torch.Generator().manual_seed(0))
    assert g1.edge_index.size(1) < 0.7 * full and g0.edge_index.size(1) >= full - 8
    assert b1[:, 0].tolist() == b0[:, 0].tolist()       # the same positives
    with pytest.raises(ConfigError, match="task.edge_dropout: must be < 1"):
        apply_overrides(task.cfg, ["task.edge_dropout=1"])
    with pytest.raises(ConfigError, match="task.edge_dropout: must not be negative"):
        apply_overrides(task.cfg, ["task.edge_dropout=-0.1"])


def test_triple_index_mask():
    idx = TripleIndex(torch.tensor([[0, 1, 0], [0, 2, 0], [3, 0, 1]]), num_nodes=4, num_relations=2)
    m = idx.mask(torch.tensor([0, 1, 0, 2]), torch.tensor([0, 2, 3, 1]))
    assert m.int().tolist() == [[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0]]


def test_evaluation_matches_brute_force_in_both_directions(kg_task):
    task, cfg = kg_task
    torch.manual_seed(0)
    model = task.build_model()
    got = task.evaluate(model, "test", progress=False)
    sp = task.data.splits["test"]
    true = {tuple(x) for x in sp.filter_triples.tolist()}
    n, R = sp.graph.num_nodes, task.R
    ranks = {"optimistic": [], "pessimistic": [], "realistic": []}
    with torch.no_grad():
        for h, t, r in sp.triples.tolist():
            for qh, qr, target in ((h, r, t), (t, r + R, h)):
                scores = model.score_all(sp.graph, torch.tensor([qh]), torch.tensor([qr]))
                mask = torch.zeros(1, n, dtype=torch.bool)
                for c in range(n):
                    fact = (qh, c, qr) if qr < R else (c, qh, qr - R)
                    mask[0, c] = fact in true and c != target
                res = filtered_ranks(scores, torch.tensor([target]), mask)
                for k in ranks:
                    ranks[k].append(res[k])
    want = ranking_metrics({k: torch.cat(v) for k, v in ranks.items()})
    assert got["num_queries"] == 2 * sp.triples.size(0)
    for k in want:
        assert got[k] == pytest.approx(want[k]), k


def test_checkpoint_round_trip_and_bad_checkpoints(tmp_path):
    state = {"model": {"w": torch.randn(3)}, "epoch": 2, "config": {"train": {"seed": 1}},
             "vocab": {"entities": ["a", "b"]}}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert torch.equal(back["model"]["w"], state["model"]["w"]) and back["epoch"] == 2
    assert torch.load(tmp_path / "c.pt", weights_only=True)["vocab"]["entities"] == ["a", "b"]
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="bad.pt"):
        load_checkpoint(tmp_path / "bad.pt")
    torch.save({"x": 1}, tmp_path / "foreign.pt")
    with pytest.raises(RunError, match="not a grsnn checkpoint"):
        load_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(RunError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize("ema_decay", [0.0, 0.8])      # 0.8: the parameters' moving average
def test_interrupted_then_resumed_run_matches_uninterrupted(tmp_path, monkeypatch, ema_decay):
    folder = write_kg(tmp_path / "kg", seed=1)
    cfg = tiny_cfg(folder, num_epoch=3, ema_decay=ema_decay)
    full = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg, tmp_path / "a",
                   progress=False)
    (tmp_path / "a").mkdir()
    want = full.fit()

    # the trainer's clock advances 10 s per loss computed (run b only), so that its epoch
    # times are exact
    import types
    import grsnn.training.trainer as trainer_module
    clock = {"t": 0.0}
    monkeypatch.setattr(trainer_module, "time", types.SimpleNamespace(
        perf_counter=lambda: clock["t"], strftime=trainer_module.time.strftime))
    original_loss = KGCompletionTask.loss

    def timed_loss(self, *args):
        clock["t"] += 10.0
        return original_loss(self, *args)

    monkeypatch.setattr(KGCompletionTask, "loss", timed_loss)
    task = KGCompletionTask(load_triples_folder(folder), cfg)
    calls = {"n": 0}
    original = task.loss

    def crashing_loss(*args):
        calls["n"] += 1
        if calls["n"] == 13:     # epoch 2 (8 batches per epoch), after a mid-epoch checkpoint
            raise KeyboardInterrupt
        return original(*args)

    monkeypatch.setattr(task, "loss", crashing_loss)
    (tmp_path / "b").mkdir()
    with pytest.raises(KeyboardInterrupt):
        Trainer(task, cfg, tmp_path / "b", progress=False).fit()
    state = load_checkpoint(tmp_path / "b" / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 4)
    resumed = Trainer(KGCompletionTask(load_triples_folder(folder), cfg), cfg, tmp_path / "b",
                      progress=False).fit(resume=True)
    assert resumed == want
    ends = [load_checkpoint(tmp_path / run / "last.pt") for run in "ab"]
    for name, value in ends[0]["model"].items():
        assert torch.equal(ends[1]["model"][name], value), name
    if ema_decay:        # the average went on from where the interrupted run left it
        assert ends[1]["average"]["updates"] == ends[0]["average"]["updates"] == 24
        for name, value in ends[0]["average"]["shadow"].items():
            assert torch.equal(ends[1]["average"]["shadow"][name], value), name
    # the interrupted epoch's mean loss covers its batches before the resume too
    from grsnn.reports.plots import training_losses
    losses = [training_losses((tmp_path / run / "log.txt").read_text()) for run in "ab"]
    assert losses[1] == losses[0] and set(losses[0]) == {1, 2, 3}
    assert "over 8 batches (4 since the resume)" in (tmp_path / "b" / "log.txt").read_text()
    # and its time too: the seconds before the interruption (kept in last.pt) plus the rest
    from grsnn.reports.run_summary import epoch_times
    seconds = epoch_times((tmp_path / "b" / "log.txt").read_text())
    assert seconds[1] > 0 and state["epoch_seconds"] == seconds[1] / 2    # 4 of 8 batches
    assert seconds[2] == seconds[1] == seconds[3]
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch_seconds"] == 0.0   # epoch end
    saved = json.loads((tmp_path / "b" / "results.json").read_text())
    assert saved["test"]["mrr"] == want["test"]["mrr"]
    assert set(saved) == {"valid", "test"}
    for key in ("mrr", "hits@1", "hits@3", "hits@10", "mr", "pessimistic.mrr",
                "optimistic.hits@10", "tied_fraction"):
        assert key in saved["test"]


def test_final_reuses_the_best_epochs_valid_metrics(tmp_path, monkeypatch):
    folder = write_kg(tmp_path / "kg", seed=2)
    cfg = tiny_cfg(folder, num_epoch=3)
    task = KGCompletionTask(load_triples_folder(folder), cfg)
    splits = []
    original = task.evaluate

    def counting(model, split, **kw):
        splits.append(split)
        return original(model, split, **kw)

    monkeypatch.setattr(task, "evaluate", counting)
    (tmp_path / "run").mkdir()
    trainer = Trainer(task, cfg, tmp_path / "run", progress=False)
    results = trainer.fit()
    # once per epoch in the loop (valid_interval 1), then test only
    assert splits == ["valid", "valid", "valid", "test"]
    best = load_checkpoint(tmp_path / "run" / "best.pt")
    assert best["best_valid"] == results["valid"]
    rows = [json.loads(line)
            for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {k: v for k, v in rows[best["epoch"] - 1].items()
            if k not in ("epoch", "split")} == results["valid"]
    # the reused metrics are what evaluating best.pt afresh gives
    trainer.model.load_state_dict(best["model"])
    assert original(trainer.model, "valid", progress=False) == results["valid"]
    # a best.pt from before the field: final() evaluates valid again
    del best["best_valid"]
    save_checkpoint(tmp_path / "run" / "best.pt", best)
    splits.clear()
    assert trainer.final() == results
    assert splits == ["valid", "test"]


@pytest.mark.parametrize("text,needle", [
    ("train:\n  num_epochz: 3\n", "train.num_epochz"),
    ("modle:\n  hidden_dim: 3\n", "unknown section 'modle'"),
    ("optimizer:\n  lr: .nan\n", "optimizer.lr"),
    ("train:\n  batch_size: -4\n", "train.batch_size"),
    ("train: [1, 2\n", "not valid YAML"),
])
def test_bad_config_files(tmp_path, text, needle):
    p = tmp_path / "c.yaml"
    p.write_text(text)
    with pytest.raises(ConfigError, match=needle):
        load_config(p)


def test_config_validation(tmp_path):
    p = tmp_path / "c.yaml"
    with pytest.raises(ConfigError, match="no such config"):
        load_config(tmp_path / "missing.yaml")
    cfg = apply_overrides(merge_config({}), ["model.hidden_dim=16", "task.metric=hits@10"])
    assert cfg["model"]["hidden_dim"] == 16 and cfg["task"]["metric"] == "hits@10"
    with pytest.raises(ConfigError, match="model.hidden"):
        apply_overrides(merge_config({}), ["model.hidden=16"])
    with pytest.raises(ConfigError, match="section.key=value"):
        apply_overrides(merge_config({}), ["hidden_dim=16"])
    p.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(ConfigError):
        load_config(p)


def test_link_prediction_task_on_a_tiny_graph(tmp_path):
    from grsnn.data import LinkData
    from grsnn.tasks import LinkPredictionTask

    g = torch.Generator().manual_seed(0)
    # two dense communities; positives inside communities, negatives across
    edges = {(u, v) for c in (0, 10) for u in range(c, c + 10) for v in range(u + 1, c + 10)
             if torch.rand(1, generator=g).item() < 0.6}
    edges = torch.tensor(sorted(edges)).t()
    perm = torch.randperm(edges.size(1), generator=g)
    train, valid, test = edges[:, perm[:40]], edges[:, perm[40:46]], edges[:, perm[46:52]]
    neg = torch.stack([torch.arange(6), torch.arange(10, 16)])
    data = LinkData("toy", 20, train, {"train": train, "valid": valid, "test": test},
                    {"valid": neg, "test": neg})
    cfg = merge_config({"dataset": {"name": "toy"},
                        "task": {"name": "link_prediction", "num_negative": 1,
                                 "eval_batch_size": 4},
                        "model": {"hidden_dim": 8, "time_steps": 6},
                        "train": {"num_epoch": 2, "batch_size": 8}})
    task = LinkPredictionTask(data, cfg)
    assert task.graph.edge_index.size(1) == 2 * 40 + 20            # both directions + loops
    graph, batch = task.make_batch(torch.arange(8), torch.Generator().manual_seed(1))
    assert batch.shape == (8, 2, 3)
    train_pairs = {tuple(sorted(p)) for p in train.t().tolist()}
    heads, cands = batch[:, :, 0], batch[:, :, 1]
    # half the rows corrupt tails, half heads: rows 0-3 keep the lower end of their pair,
    # rows 4-7 the higher one (docs/method.md section 7), the positive is the pair's other end
    lo, hi = train[:, :8]
    assert (lo < hi).all()
    assert heads[:4, 0].tolist() == lo[:4].tolist() and cands[:4, 0].tolist() == hi[:4].tolist()
    assert heads[4:, 0].tolist() == hi[4:].tolist() and cands[4:, 0].tolist() == lo[4:].tolist()
    pairs = set(zip(graph.edge_index[0].tolist(), graph.edge_index[1].tolist()))
    for h, (pos, neg_) in zip(heads[:, 0].tolist(), cands.tolist()):
        assert tuple(sorted((h, neg_))) not in train_pairs and neg_ != h      # strict
        assert (h, pos) not in pairs and (pos, h) not in pairs               # easy edges gone
    # task.edge_dropout: the same rows on a graph without a share of its edges, self loops kept
    task.cfg = apply_overrides(cfg, ["task.edge_dropout=0.5"])
    graph_d, batch_d = task.make_batch(torch.arange(8), torch.Generator().manual_seed(1))
    task.cfg = cfg
    assert torch.equal(batch_d, batch)
    kept = set(zip(graph_d.edge_index[0].tolist(), graph_d.edge_index[1].tolist()))
    assert kept < pairs and all((v, v) in kept for v in range(20))
    assert all((b, a) in kept for a, b in kept)
    assert len(kept) - 20 < 0.7 * (len(pairs) - 20)
    model = task.build_model()
    assert model.symmetric and not model.dependent and model.num_relations == 1
    # micro-batches keep a positive with its negative and add up to the batch gradient
    loss, grads = _grads(task, cfg, graph, batch, 32)
    for micro in (1, 6):
        loss_m, grads_m = _grads(task, cfg, graph, batch, micro)
        assert loss_m == pytest.approx(loss, rel=1e-12)
        for a, b in zip(grads, grads_m):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
    (tmp_path / "run").mkdir()
    results = Trainer(task, cfg, tmp_path / "run", progress=False).fit()
    test = results["test"]
    assert set(test) == {"auroc", "ap", "pessimistic.auroc", "optimistic.auroc",
                         "optimistic.ap", "tied_fraction"}
    assert test["pessimistic.auroc"] <= test["auroc"] <= test["optimistic.auroc"]
    assert test["ap"] <= test["optimistic.ap"]
    assert 0 <= test["pessimistic.auroc"] and test["optimistic.auroc"] <= 1


def _grads(task, cfg, graph, batch, micro):
    from grsnn.training.trainer import accumulate_gradients
    torch.manual_seed(0)
    model = task.build_model().double()
    cfg = {**cfg, "train": {**cfg["train"], "micro_batch": micro}}
    loss = accumulate_gradients(task, model, cfg, graph, batch)
    return loss, [p.grad.clone() for p in model.parameters() if p.grad is not None]


@pytest.mark.parametrize("micro", [1, 3, 5])
def test_micro_batches_give_the_batch_gradient(kg_task, micro):
    task, cfg = kg_task
    graph, batch = task.make_batch(torch.arange(11), torch.Generator().manual_seed(2))
    loss, grads = _grads(task, cfg, graph, batch, 11)
    loss_m, grads_m = _grads(task, cfg, graph, batch, micro)
    assert loss_m == pytest.approx(loss, rel=1e-12)
    assert len(grads) == len(grads_m) > 0
    for a, b in zip(grads, grads_m):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)


def test_queries_per_pass_rules():
    from grsnn.training.memory import NODE_TENSOR_BUDGET, queries_per_pass
    # CPU: one [N, B * D] float tensor stays within the allocator budget
    b = queries_per_pass(10_000, 32, "cpu")
    assert b * 10_000 * 32 * 4 <= NODE_TENSOR_BUDGET < (b + 1) * 10_000 * 32 * 4
    assert queries_per_pass(10_000, 32, "cpu", requested=7) == 7
    assert queries_per_pass(10, 8, "cuda") is None
    # a memory budget only ever lowers the number, and never below one query
    assert queries_per_pass(10_000, 32, "cpu", memory_mb=1) == 1
    assert queries_per_pass(100, 8, "cuda", memory_mb=64) >= queries_per_pass(100, 8, "cuda",
                                                                              memory_mb=8)


def test_evaluation_does_not_depend_on_the_memory_budget(kg_task):
    task, cfg = kg_task
    torch.manual_seed(0)
    model = task.build_model()
    full = task.evaluate(model, "test", progress=False)
    graph = task.data.splits["test"].graph
    assert task.eval_queries_per_pass(model, graph) == cfg["task"]["eval_batch_size"]
    task.cfg = {**cfg, "task": {**cfg["task"], "eval_memory_mb": 1e-3}}
    assert task.eval_queries_per_pass(model, graph) == 1
    assert task.evaluate(model, "test", progress=False) == full


def test_release_free_memory_trims_only_after_growth():
    import sys
    from grsnn.training.memory import release_free_memory
    if not sys.platform.startswith("linux"):
        assert release_free_memory(force=True) is False      # a no-op elsewhere
        return
    from grsnn.training.memory import keep_freed_memory
    assert keep_freed_memory() is True                       # as grsnn train does on CPU

    from grsnn.training.memory import _resident_bytes
    size = (_resident_bytes() + (400 << 20)) // (1 << 20)    # MiB: a pass's temporaries

    def one_pass():                    # more than the footprint plus 256 MiB: a rule that
        temporaries = [torch.ones(1 << 18) for _ in range(size)]   # measured right after
        del temporaries                # the trim would trim again after every pass

    assert release_free_memory(force=True) is True           # glibc: trimmed
    for _ in range(3):                 # the first call after the trim records the working
        one_pass()                     # set (the pass's kept pages): passes of the same
        assert release_free_memory() is False                # size never trim again
    grow = 2 * _resident_bytes() + (320 << 20)               # past twice the working set
    blocks = [torch.ones(1 << 18) for _ in range(grow // (1 << 20))]   # 1 MiB each, live
    assert release_free_memory() is True
    del blocks


_FAULTS_SCRIPT = """
import resource, sys, torch
from grsnn.training.memory import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() is True
x = torch.ones(16 << 20)          # 64 MiB: above glibc's largest mmap threshold
del x
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):               # the same block size again and again, as a training step
    x = torch.ones(16 << 20)
    del x
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_keep_freed_memory_reuses_pages_instead_of_faulting():
    """With glibc's defaults every 64 MiB tensor is a fresh mmap whose 16,384 pages fault
    in; after keep_freed_memory() the freed block is reused from the heap."""
    import subprocess
    import sys
    if not sys.platform.startswith("linux"):
        from grsnn.training.memory import keep_freed_memory
        assert keep_freed_memory() is False
        return
    faults = {}
    for mode in ("default", "keep"):
        out = subprocess.run([sys.executable, "-c", _FAULTS_SCRIPT, mode], check=True,
                             capture_output=True, text=True)
        faults[mode] = int(out.stdout.strip().splitlines()[-1])
    assert faults["default"] >= 10 * 16000         # every page of every block faulted
    assert faults["keep"] <= 3 * 16384             # mostly kept and reused (steady state: 0)
