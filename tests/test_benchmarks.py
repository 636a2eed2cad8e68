"""The benchmark scripts run and print what the docs quote from them (small settings; every
script under benchmarks/ has a test here)."""
import re


def test_profile_batch_prints_profile_faults_and_timings(run_python):
    out = run_python("benchmarks/profile_batch.py", "--config", "kg_completion/fb237_v1",
                     "--set", "model.hidden_dim=4", "--set", "model.time_steps=4",
                     "--warmup", "1", "--timed", "2", "--eval-queries", "2", "--top", "3")
    assert "kg_completion/fb237_v1: torch" in out and "batch 32" in out
    assert re.search(r"training batch: \d+\.\d+ s \(profiled\), \d+ minor page faults", out)
    timed = re.search(r"training batches without the profiler: (.*)", out).group(1)
    assert len(re.findall(r"\d+\.\d+ s \(\d+ faults\)", timed)) == 2
    assert "evaluation of 2 valid triples" in out
    rows = re.findall(r"^  (\S.*?)\s+(\d+)\s+(\d+\.\d)\s+(\d+\.\d)%$", out, re.M)
    assert len(rows) == 6                        # --top 3, training and evaluation
    assert all(float(share) <= 100 for *_, share in rows)


def test_scaling_times_a_batch_and_counts_the_epoch(run_python):
    out = run_python("benchmarks/scaling.py", "--only", "fb237_v1", "--repeats", "1")
    row = re.search(r"^fb237_v1\s+(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+([\d.]+)\s+[\d.]+\s+(\d+)", out,
                    re.M)
    assert row, out
    edges, nodes, batch, sec, batches = row.groups()
    # fb237_v1's training graph with inverse edges; 4,245 training triples in batches of 32
    assert (int(edges), int(nodes), int(batch), int(batches)) == (8490, 1594, 32, 133)
    assert float(sec) > 0


def test_engine_check_reproduces_the_engine_with_the_baseline(run_python):
    out = run_python("benchmarks/engine.py", "--check")
    assert out.strip().splitlines()[-1] == "PASS" and "FAIL" not in out


def test_shortest_paths_benchmark_checks_every_distance(run_python):
    out = run_python("benchmarks/shortest_paths.py", "--sizes", "2000")
    rows = re.findall(r"^\s+2000\s+200\s+(1\.\.10|unit)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+(\d+)", out,
                      re.M)
    assert [w for w, _ in rows] == ["1..10", "unit"] and all(int(e) > 0 for _, e in rows)
    assert out.strip().splitlines()[-1] == "all distances identical to networkx"


def test_eval_memory_benchmark_keeps_metrics_under_a_budget(run_python):
    out = run_python("benchmarks/eval_memory.py", "--config", "fb237_v1", "--budgets", "1,0",
                     "--queries", "8")
    rows = re.findall(r"^\s+(\d+|none)\s+(\d+)\s+[\d.]+\s+[\d.]+\s+[\d.]+\s+([\d.]+)$", out, re.M)
    assert [b for b, _, _ in rows] == ["1", "none"]
    assert int(rows[0][1]) < int(rows[1][1])          # the budget cut the queries per pass
    assert rows[0][2] == rows[1][2]
    assert "metrics identical under every budget: True" in out


def test_gnn_comparison_prints_the_table(run_python):
    out = run_python("benchmarks/gnn_comparison.py", "--datasets", "Cora", "--seeds", "1",
                     "--tasks", "lp", "--models", "gcn,spiking", "--hidden", "16")
    gcn = re.search(r"^\| gcn \| (0\.\d+) ± 0\.000 \|", out, re.M)
    spiking = re.search(r"^\| spiking \| (0\.\d+) ± 0\.000 \|.*\| ([\d.]+) \| [\d.]+ M AC", out,
                        re.M)
    assert gcn and spiking, out
    assert float(gcn.group(1)) > 0.7 and float(spiking.group(1)) > 0.7   # both learn
    assert 0 < float(spiking.group(2)) < 1                                # a firing rate


def test_reach_cost_prints_ratios_against_the_paper(run_python):
    out = run_python("benchmarks/reach_cost.py", "--rounds", "1", "--warmup", "0",
                     "--set", "model.hidden_dim=4", "--set", "model.time_steps=4",
                     "--levers", "paper", "degree", "reached+state+T6")
    assert "kg_completion/WN18RR_v1: 170 batches of 32 per epoch" in out
    rows = re.findall(r"^(\S+)\s+([\d.]+)\s+([\d.]+)x\s+(\d+)$", out, re.M)
    assert [r[0] for r in rows] == ["paper", "degree", "reached+state+T6"], out
    assert rows[0][2] == "1.00"
    for _, sec, ratio, epoch in rows:
        assert float(sec) > 0 and abs(float(sec) * 170 - int(epoch)) <= 1
        assert abs(float(ratio) - float(sec) / float(rows[0][1])) < 0.01


def test_gnn_defaults_builds_its_tables_from_the_recorded_runs(run_python, tmp_path):
    md = tmp_path / "tables.md"
    run_python("benchmarks/gnn_defaults.py", "--table-only", "--markdown", str(md))
    text = md.read_text()
    assert "Default arguments (width 64, 2 layers" in text
    rows = re.findall(r"^\| (node classification|link prediction), (Cora|CiteSeer) \| \w+ \| "
                      r"(\d+) \| (0\.\d+) ± [\d.]+ \| (0\.\d+) ± [\d.]+ \| ([+-][\d.]+) \|",
                      text, re.M)
    assert len(rows) == 4, text
    for *_, seeds, gcn, spiking, diff in rows:
        assert int(seeds) >= 1
        assert abs(100 * (float(spiking) - float(gcn)) - float(diff)) < 0.11


def test_firing_rate_prints_dense_event_auto_and_the_floor(run_python):
    out = run_python("benchmarks/firing_rate.py", "--datasets", "gen:300:1500:6,fb237_v1",
                     "--rates", "0.01,0.05,full", "--rounds", "1", "--queries", "1",
                     "--epochs", "fb237_v1", "--query-sized", "2000:20,1")
    assert "gen:300:1500:6: 300 nodes, 1500 edges" in out
    assert "fb237_v1: 1594 nodes, 8490 edges" in out
    num = r"(\d+\.\d+)"
    rows = re.findall(rf"^\s+{num}% +{num} \|" + rf" +{num}" * 4 + r" \|" + rf" +{num}" * 3
                      + r" \|" + rf" +{num}x" * 4 + "$", out, re.M)
    assert len(rows) == 6, out                           # 3 rates x 2 graphs
    assert [float(r[0]) for r in rows[2::3]] == [100.0, 100.0]      # full firing
    assert all(0 < float(r[0]) < 10 for r in rows[:2])
    assert all(float(x) > 0 for r in rows for x in r[9:])
    assert len(re.findall(r"^crossover \(forward, event vs dense\): ", out, re.M)) == 2
    epoch = re.search(r"^epoch of fb237_v1 \(tasks/kg_completion/fb237_v1.yaml, (\d+) batches "
                      r"of (\d+) queries, \d+ edges\): dense (\d+) s \([\d.]+ h\), auto (\d+) s "
                      r"\([\d.]+ h\), [\d.]+x$", out, re.M)
    assert epoch and int(epoch.group(1)) > 1 and int(epoch.group(3)) > 0, out
    assert re.search(r"^pair-level push \(auto\) vs dense, forward\+backward: \d+\.\d\dx at "
                     r"5% active pairs", out, re.M), out
    reach = re.findall(r"^ +(\d+) +([\d.]+)% +([\d.]+) +([\d.]+) +([\d.]+)x$", out, re.M)
    assert [(k, float(share)) for k, share, *_ in reach] == [("20", 5.0), ("1", 100.0)], out
    assert re.fullmatch(r"event-driven vs dense, forward\+backward: \d+\.\d\dx at 5% active "
                        r"pairs, \d+\.\d\dx at full firing", out.strip().splitlines()[-1])


def test_reached_memory_compares_one_query_on_both_engines(run_python):
    out = run_python("benchmarks/reached_memory.py", "--nodes", "5000", "--dim", "8")
    assert "same spikes on every node: yes" in out
    assert re.search(r"GRSNN, scores of every node for one query: score_all [\d.]+ MB, "
                     r"score_query [\d.]+ MB \(\d+x less\), same scores: yes", out), out
    last = out.strip().splitlines()[-1]
    m = re.fullmatch(r"one query, 50000 edges: dense ([\d.]+) MB, reached nodes only ([\d.]+) "
                     r"MB \((\d+)x less\), (\d+) nodes reached", last)
    assert m, last
    assert 1 < int(m.group(4)) < 5000            # the wave grew, not to the whole graph


def test_gnn_diagnosis_link_prediction_records_fit_and_spike_code_and_resumes(run_python,
                                                                                  tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path
    results = tmp_path / "diag.jsonl"
    args = ("benchmarks/gnn_diagnosis.py", "--points", "8,2,0.01", "--epochs", "2",
            "--results", str(results))
    run_python(*args)
    rows = {r["model"]: r for r in map(json.loads, results.read_text().splitlines())}
    assert set(rows) == {"gcn", "spiking"}
    spiking = rows["spiking"]
    assert (spiking["width"], spiking["layers"], spiking["epochs"]) == (8, 2, 2)
    assert len(spiking["rate"]) == 2 and all(0 <= x <= 1 for x in spiking["rate"])
    assert 0 <= spiking["silent_nodes"] <= 1 and 0 < spiking["distinct"] <= 1
    for r in rows.values():
        assert all(0 <= r[k] <= 1 for k in ("train", "test", "test_pessimistic", "test_tied"))
        assert r["test_pessimistic"] <= r["test"]
    out = run_python(*args)          # finished points are skipped; the table reads the file
    assert len(results.read_text().splitlines()) == 2
    assert len(re.findall(r"^\| 8 \| 2 \| 0\.01 \| 2 \| (gcn|spiking) \|", out, re.M)) == 2
    root = Path(__file__).resolve().parent.parent
    bad = subprocess.run([sys.executable, *args, "--spiking-kwargs", "[1]"], cwd=root,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "--spiking-kwargs" in bad.stderr


def test_gnn_diagnosis_node_classification_matches_the_recipe(run_python, tmp_path):
    """The final-weight accuracies are those the recipe's own evaluation gives: with one
    epoch the recipe's best validation epoch is the final one, so its test accuracy is the
    diagnosis's."""
    import json
    results = tmp_path / "nc.jsonl"
    out = run_python("benchmarks/gnn_diagnosis.py", "--task", "nc", "--points", "8,1,0.01",
                     "--epochs", "1", "--results", str(results))
    rows = {r["model"]: r for r in map(json.loads, results.read_text().splitlines())}
    assert set(rows) == {"gcn", "spiking"}
    for r in rows.values():
        assert r["test"] == r["test_at_best_val"]
        assert all(0 <= r[k] <= 1 for k in ("train", "val", "test", "distinct"))
        assert r["train_loss"] > 0
    assert len(rows["spiking"]["rate"]) == 1 and "rate" not in rows["gcn"]
    assert 0 <= rows["spiking"]["saturated"][0] <= rows["spiking"]["rate"][0]
    assert len(re.findall(r"^\| Cora \| 8 \| 1 \| 0\.01 \| 1 \| (gcn|spiking) \|", out,
                          re.M)) == 2
