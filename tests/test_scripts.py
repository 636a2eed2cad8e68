"""scripts/experiments.sh: which command each experiment name runs (DRY_RUN, no training)."""
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dry(runs: Path, *names: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "experiments.sh"), *names],
                          env={**os.environ, "DRY_RUN": "1", "RUNS": str(runs)},
                          capture_output=True, text=True, timeout=60)


def test_experiments_script_resumes_skips_and_applies_variants(tmp_path):
    (tmp_path / "cora").mkdir()
    (tmp_path / "cora" / "results.json").write_text("{}")
    (tmp_path / "WN18RR_v2").mkdir()
    (tmp_path / "WN18RR_v2" / "last.pt").write_bytes(b"")
    (tmp_path / "citeseer_T20").mkdir()                 # stopped before its first checkpoint
    out = _dry(tmp_path, "cora", "WN18RR_v2", "citeseer_T20", "WN18RR_v1_T16",
               "fb237_v4_budget", "wn18rr_qs", "WN18RR_v4_paper", "cora_paper")
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(": ", 1) for line in out.stdout.strip().splitlines())
    assert lines["cora"].startswith("done")
    wn2 = lines["WN18RR_v2"].split(" ", 1)[1].split()
    # a run resumes with its own config.yaml, whatever the task's config says now
    assert wn2[-1] == "--resume" and "-c" not in wn2
    assert wn2[wn2.index("--out") + 1] == str(tmp_path / "WN18RR_v2")
    assert "-c tasks/paper/kg_completion/WN18RR_v4.yaml" in lines["WN18RR_v4_paper"]
    assert "-c tasks/paper/link_prediction/cora.yaml" in lines["cora_paper"]
    assert "-c tasks/kg_completion/WN18RR_v1.yaml" in lines["WN18RR_v1_T16"]
    cite = lines["citeseer_T20"]
    assert "tasks/link_prediction/citeseer.yaml" in cite and cite.endswith("--force")
    assert "--set model.time_steps=20" in cite
    assert "--set model.time_steps=16" in lines["WN18RR_v1_T16"]
    assert "--set train.num_epoch=2 --set train.valid_interval=1" in lines["fb237_v4_budget"]
    assert "-c tasks/query_sized/wn18rr.yaml" in lines["wn18rr_qs"]
    assert not (tmp_path / "WN18RR_v1_T16").exists()      # a dry run creates nothing
    assert "summary" not in lines                          # no run directory to summarise
    # at the end, the runs that exist in one table (grsnn summary)
    for name in ("cora", "WN18RR_v2"):
        (tmp_path / name / "config.yaml").write_text("")
    out = _dry(tmp_path, "cora", "WN18RR_v2", "citeseer_T20")
    last = out.stdout.strip().splitlines()[-1]
    assert last == f"summary: grsnn summary {tmp_path / 'cora'} {tmp_path / 'WN18RR_v2'}"


def test_experiments_script_refuses_unknown_names(tmp_path):
    for name, needle in (("nosuch", "no config"), ("cora_budget", "no budget"),
                         ("fb237_v1_qs", "no config")):
        out = _dry(tmp_path, name)
        assert out.returncode == 2 and needle in out.stderr


def _ablation(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / "ablation.sh"), *args],
                          env={**os.environ, "DRY_RUN": "1", "RUNS": "/runs"},
                          capture_output=True, text=True, timeout=60)


def test_ablation_script_maps_levers_to_config_overrides():
    out = _ablation("WN18RR_v1", "reached+state+degree+fast+T16+lambda3+tau1.5+K2", "2")
    assert out.returncode == 0, out.stderr
    cmd = out.stdout.strip()
    assert cmd.startswith("grsnn train -c tasks/paper/kg_completion/WN18RR_v1.yaml "
                          "--out /runs/ablation/WN18RR_v1/"
                          "reached+state+degree+fast+T16+lambda3+tau1.5+K2")
    for pair in ("train.num_epoch=2", "train.seed=0", "model.drive=reached",
                 "model.readout=state", "model.degree_prior=true", "model.delay_init=-3",
                 "model.time_steps=16", "model.linear_scale=3", "model.tau=1.5",
                 "model.delay_bound=2"):
        assert f"--set {pair}" in cmd, pair
    assert "--set model.aggregate=pna" in _ablation("WN18RR_v1", "pna", "8").stdout
    assert "--set task.edge_dropout=0.34" in _ablation("WN18RR_v2", "drop0.34", "2").stdout
    assert "--set train.ema_decay=0.99" in _ablation("cora", "paper+ema0.99", "4").stdout
    assert "--set model.wave_only_rows=0.3" in _ablation("cora", "bg+wonly0.3", "4").stdout
    assert "--set model.background=true --set model.background_pair=true" in _ablation(
        "cora", "bg+pair", "4").stdout
    assert ("--set model.background=true --set model.node_features=true "
            "--set model.feature_pair=true") in _ablation("cora", "bg+feat+fpair", "4").stdout
    rate = _ablation("fb237_v1", "auto+rate0.1", "4").stdout
    assert "--set model.propagation=auto --set task.firing_rate_weight=0.1" in rate
    assert "tasks/paper/link_prediction/cora.yaml" in _ablation("cora", "paper").stdout
    bad = _ablation("WN18RR_v1", "paper+bogus")
    assert bad.returncode == 2 and "unknown lever bogus" in bad.stderr
    assert _ablation("nosuch", "paper").returncode == 2


def _fake_run(path: Path, by_distance_name: str) -> Path:
    path.mkdir(parents=True)
    (path / "results.json").write_text(
        '{"test": {"hits@10_50": 0.9, "pessimistic.hits@10_50": 0.7, "mrr": 0.4,'
        ' "tied_fraction": 0.1}}')       # mrr and pessimistic: the report's figures win
    (path / by_distance_name).write_text(
        "test.mrr: 0.5\ntest.pessimistic.hits@10_50: 0.85\n\nby hop distance (horizon 9 hops):\n"
        "      group   share     mrr  hits@10_50  tied_fraction\n"
        "        all  1.0000  0.5000      0.9000         0.1000\n"
        "          1  0.5000  0.9000      1.0000         0.0000\n"
        "          5  0.3000  0.3000      0.8000         0.1000\n"
        "unreachable  0.2000  0.1000      0.6000         0.4000\n")
    (path / "stats.txt").write_text("firing rate (all steps): 0.0123\n")
    (path / "log.txt").write_text(
        "x epoch 1: mean loss 0.5 over 10 batches, 100.0 s\n"
        "x epoch 2: mean loss 0.4 over 10 batches, 50.0 s\n")
    return path


def test_ablation_table_reads_ablation_and_full_runs(tmp_path):
    a = _fake_run(tmp_path / "ablation_run", "by_distance.txt")
    b = _fake_run(tmp_path / "full_run", "test_by_distance.txt")
    (tmp_path / "unfinished").mkdir()                     # no reports: left out
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "ablation_table.py"),
                          str(a), str(b), str(tmp_path / "unfinished")],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    rows = [line for line in out.stdout.splitlines() if line.startswith("| ")][1:]
    assert [r.split(" | ")[0] for r in rows] == ["| ablation_run", "| full_run"]
    # missed = share x (1 - Hits@10 (50)): 1-3 hops 0, 4-9 hops 0.3 x 0.2, none 0.2 x 0.4
    expect = "| 0.900 | 0.850 | 0.500 | 0.100 | 0.000 | 0.060 | 0.080 | 0.0123 | 75 |"
    assert all(r.endswith(expect) for r in rows), rows


def test_ablation_table_reads_a_long_horizon_link_prediction_run(tmp_path):
    run = _fake_run(tmp_path / "cora_T20", "by_distance.txt")
    (run / "results.json").write_text('{"test": {"auroc": 0.9, "pessimistic.auroc": 0.89,'
                                      ' "ap": 0.91}}')
    (run / "by_distance.txt").write_text(
        "test.auroc: 0.9\n\nby hop distance (horizon 19 hops):\n"
        "      group  positives  negatives  auroc_vs_all_negatives  tied_with_a_negative\n"
        "        all     1.0000     1.0000                  0.9000                0.0100\n"
        "          2     0.5000     0.1000                  1.0000                0.0000\n"
        "          9     0.3000     0.3000                  0.5000                0.0000\n"
        "         10     0.2000     0.3000                  0.7000                0.0000\n"
        "         11     0.0000     0.3000                       -                     -\n")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "ablation_table.py"), str(run)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    row = [line for line in out.stdout.splitlines() if line.startswith("| ")][-1]
    # no tie share recorded: "-"; 4-9 hops 0.3 x 0.5; beyond 9 hops 0.2 x 0.3 (11: no positives)
    assert row.endswith("| 0.900 | 0.890 | 0.910 | - | 0.000 | 0.150 | 0.060 | 0.0123 | 75 |"), row


def test_run_reports_refuses_a_run_without_checkpoint(tmp_path):
    out = subprocess.run(["bash", str(ROOT / "scripts" / "run_reports.sh"), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and "best.pt not found" in out.stderr


def test_run_reports_writes_both_reports_once(tmp_path):
    """A finished run gets its by-distance report and circuit statistics; a second call
    leaves them as they are (scripts/ablation.sh calls it after every run)."""
    from grsnn.cli import main
    from test_tasks import write_kg
    run = tmp_path / "run"
    assert main(["train", "--data", str(write_kg(tmp_path / "kg")), "--out", str(run),
                 "--set", "model.hidden_dim=8", "--set", "model.time_steps=6", "--set",
                 "train.num_epoch=1", "--set", "task.num_negative=4", "--quiet"]) == 0
    env = {**os.environ, "GRSNN": str(Path(sys.executable).with_name("grsnn")),
           "OMP_NUM_THREADS": "1"}
    cmd = ["bash", str(ROOT / "scripts" / "run_reports.sh"), str(run)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    by_distance, stats = run / "test_by_distance.txt", run / "stats.txt"
    assert "hop" in by_distance.read_text() and "firing" in stats.read_text()
    assert not list(run.glob("*.part"))
    stamps = by_distance.stat().st_mtime_ns, stats.stat().st_mtime_ns
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and (by_distance.stat().st_mtime_ns,
                                    stats.stat().st_mtime_ns) == stamps


def test_feature_similarity_scores_pairs_by_the_features_cosine():
    import importlib.util

    import torch

    from grsnn.data import LinkData
    from grsnn.metrics import auroc_ap
    spec = importlib.util.spec_from_file_location(
        "feature_similarity", ROOT / "scripts" / "feature_similarity.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # two components {0, 1, 2} and {3, 4}; node 5 alone
    x = torch.tensor([[1.0, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 2], [0, 1, 1], [3, 0, 1]])
    edges = torch.tensor([[0, 1, 3], [1, 2, 4]])
    pos = torch.tensor([[0, 3], [2, 5]])            # 2 hops; unreachable
    neg = torch.tensor([[0, 2], [4, 4]])            # unreachable both
    data = LinkData("toy", 6, edges, {"test": pos}, {"test": neg}, x=x)
    rows = {r["group"]: r for r in mod.cosine_breakdown(data)}
    cos = torch.nn.functional.cosine_similarity
    by_hand = auroc_ap(cos(x[pos[0]], x[pos[1]]), cos(x[neg[0]], x[neg[1]]))
    assert rows["all"]["auroc"] == by_hand["auroc"]
    assert rows["2"]["positives"] == 0.5 and rows["unreachable"]["negatives"] == 1.0
    # the unreachable positive (3, 5): cosine 1/sqrt(10), between the negatives' 0 and
    # 1/sqrt(2)
    assert rows["unreachable"]["auroc_vs_all_negatives"] == 0.5
    import pytest
    # one hop of smoothing, by hand: degrees with the self loop 2, 3, 2, 2, 2, 1
    s = 1 / torch.tensor([2.0, 3, 2, 2, 2, 1]).sqrt()
    a = torch.eye(6) + torch.zeros(6, 6).index_put_((edges[0], edges[1]), torch.ones(3))
    a = a + a.t() - torch.eye(6)
    smooth = (s.unsqueeze(1) * a * s.unsqueeze(0)).double() @ x.double()
    by_hand = auroc_ap(cos(smooth[pos[0]], smooth[pos[1]]), cos(smooth[neg[0]], smooth[neg[1]]))
    # the smoothing ranks both positives above both negatives (0.375 without it)
    assert by_hand["auroc"] == 1.0 and rows["all"]["auroc"] == 0.375
    assert mod.cosine_breakdown(data, hops=1)[0]["auroc"] == pytest.approx(by_hand["auroc"])
    with pytest.raises(ValueError, match="toy has no node features"):
        mod.cosine_breakdown(LinkData("toy", 6, edges, {"test": pos}, {"test": neg}))


def test_graph_density_counts_the_shipped_files_and_matches_the_test_density():
    """Nodes, facts and facts per node of WN18RR_v1's two graphs, counted from its text
    files directly (the training graph's nodes include the valid triples' entities)."""
    def rows(part, name):
        text = (ROOT / "datasets" / "grail" / part / name).read_text()
        return [x.split("\t") for x in text.splitlines() if x.strip()]
    train, valid = rows("WN18RR_v1", "train.txt"), rows("WN18RR_v1", "valid.txt")
    ind = rows("WN18RR_v1_ind", "train.txt") + rows("WN18RR_v1_ind", "valid.txt") \
        + rows("WN18RR_v1_ind", "test.txt")
    n_train = len({e for h, _, t in train + valid for e in (h, t)})
    n_test = len({e for h, _, t in ind for e in (h, t)})
    f_train, f_test = len(train), len(rows("WN18RR_v1_ind", "train.txt"))
    drop = round(max(0.0, 1 - (f_test / n_test) / (f_train / n_train)), 2)
    want = (f"| WN18RR_v1 | {n_train:,}, {f_train:,}, {f_train / n_train:.2f} | "
            f"{n_test:,}, {f_test:,}, {f_test / n_test:.2f} | {drop:.2f} |")
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "graph_density.py"),
                          "WN18RR_v1"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == want
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "graph_density.py"), "nosuch"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "nosuch" in bad.stderr and not bad.stdout


def test_graph_horizon_matches_networkx_on_a_shipped_test_graph():
    """WN18RR_v1's test graph has fewer nodes than the sources drawn, so every pair is
    measured: the median, effective diameter and largest hop distance equal networkx's
    breadth-first distances over all pairs, and T = 1 + 2 k90."""
    import importlib.util

    import networkx as nx
    import numpy as np

    spec = importlib.util.spec_from_file_location("graph_horizon",
                                                  ROOT / "scripts" / "graph_horizon.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    edge_index, n = mod.query_graph("WN18RR_v1")
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(edge_index.t().tolist())
    d = np.array([k for _, row in nx.all_pairs_shortest_path_length(G)
                  for k in row.values() if k > 0])
    k90 = int(np.ceil(np.percentile(d, 90)))
    out = subprocess.run([sys.executable, str(ROOT / "scripts" / "graph_horizon.py"),
                          "WN18RR_v1"], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    cells = [c.strip() for c in out.stdout.strip().splitlines()[-1].strip("|").split("|")]
    assert cells == ["WN18RR_v1", f"{n:,}", f"{np.median(d):g}", str(k90), str(d.max()),
                     f"{(d <= 4).mean():.2f}", str(1 + 2 * k90)]
    bad = subprocess.run([sys.executable, str(ROOT / "scripts" / "graph_horizon.py"), "nosuch"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 2 and "nosuch" in bad.stderr and not bad.stdout
