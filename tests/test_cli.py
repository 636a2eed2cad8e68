"""The command line end to end on a tiny KG, and every kind of bad input."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from grsnn.cli import main

from test_tasks import write_kg

FAST = ["--set", "model.hidden_dim=8", "--set", "model.time_steps=6", "--set",
        "train.num_epoch=1", "--set", "task.num_negative=4", "--quiet"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    folder = write_kg(root / "kg")
    out = root / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), *FAST,
                 "--set", "train.log_interval=1"]) == 0
    return folder, out


def test_train_writes_a_complete_run_directory(trained, capsys):
    _, out = trained
    for name in ("config.yaml", "log.txt", "metrics.jsonl", "results.json", "best.pt", "last.pt"):
        assert (out / name).is_file(), name
    results = json.loads((out / "results.json").read_text())
    assert set(results) == {"valid", "test"}
    assert 0 < results["test"]["mrr"] <= 1 and "pessimistic.mrr" in results["test"]
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["split"] == "valid" and lines[0]["epoch"] == 1
    # a quiet run still logs its progress: every log_interval batches but the last
    log = (out / "log.txt").read_text()
    progress = [x.split(": ")[0].split(" ", 2)[2] for x in log.splitlines() if " batch " in x]
    assert progress == ["epoch 1 batch 1/4", "epoch 1 batch 2/4", "epoch 1 batch 3/4"]
    assert "epoch 1: mean loss" in log and "queries/s" in log
    # with the time left (one epoch: the epoch's and the run's are the same)
    line = next(x for x in log.splitlines() if "epoch 1 batch 2/4" in x)
    epoch_left = line.split("epoch ends in ")[1].split(",")[0]
    assert line.split("run in about ")[1].startswith(epoch_left + " (validation not counted)")


def test_eval_and_predict(trained, capsys):
    folder, out = trained
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--split", "test", "--quiet"]) == 0
    text = capsys.readouterr().out
    mrr = float(next(x for x in text.splitlines() if x.startswith("test.mrr:")).split()[1])
    assert mrr == pytest.approx(json.loads((out / "results.json").read_text())["test"]["mrr"],
                                rel=1e-5)
    head, rel, _ = (folder / "test.txt").read_text().splitlines()[0].split("\t")
    assert main(["predict", "--checkpoint", str(out / "best.pt"), "--head", head,
                 "--relation", rel, "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 4 and lines[1].strip().startswith("1. e")


def test_unknown_names_and_existing_run_dir(trained, capsys):
    folder, out = trained
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert main(["predict", "--checkpoint", str(out / "best.pt"), "--head", "nobody",
                 "--relation", "r0"]) == 2
    assert "unknown entity 'nobody'" in capsys.readouterr().err
    assert main(["predict", "--checkpoint", str(out / "best.pt"), "--head", "e1",
                 "--relation", "r9"]) == 2
    assert "unknown relation 'r9'" in capsys.readouterr().err
    assert main(["train", "--data", str(folder), "--out", str(out), *FAST]) == 2
    assert "not empty" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_refuses_a_changed_config_and_reads_the_run_config(tmp_path, capsys):
    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), *FAST]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    # a different model would silently continue from weights of another shape of circuit
    assert main(["train", "--data", str(folder), "--out", str(out), *FAST, "--resume",
                 "--set", "model.time_steps=5"]) == 2
    err = capsys.readouterr().err
    assert "model.time_steps: 6 -> 5" in err and "config differs" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # an extended run before it trains on: the summary says its test is stale
    (out / "metrics.jsonl").write_text((out / "metrics.jsonl").read_text() + '{"epoch": 2, "spl')
    shutil.copytree(out, tmp_path / "extending")
    cfg = (tmp_path / "extending" / "config.yaml").read_text()
    (tmp_path / "extending" / "config.yaml").write_text(cfg.replace("num_epoch: 1", "num_epoch: 2"))
    assert main(["summary", str(tmp_path / "extending")]) == 0     # the cut line is skipped
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert "| 1 of 2 |" in row and "its test metrics are from before it was extended" in row
    # no config given: the run's own config.yaml; train.num_epoch may change (a longer run)
    # and becomes the run's config (so that --resume alone continues with it)
    assert main(["train", "--out", str(out), "--resume", "--quiet",
                 "--set", "train.num_epoch=2"]) == 0
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines if '"valid"' in x] == [1, 2]
    assert "resumed at epoch 1 step 0" in (out / "log.txt").read_text()
    assert "num_epoch: 2" in (out / "config.yaml").read_text()
    capsys.readouterr()
    assert main(["summary", str(out)]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert "| 2 of 2 |" in row and row.endswith("| done |")
    # nothing to read
    assert main(["train", "--out", str(tmp_path / "none"), "--resume"]) == 2
    assert "config.yaml: not found" in capsys.readouterr().err
    assert main(["train", "--out", str(out)]) == 2
    assert "give a config" in capsys.readouterr().err


@pytest.mark.parametrize("content,needle", [
    ("a\tr\tb\nc\tr\n", "train.txt:2"),
    ("", "no triples"),
    (b"a\tr\tb\n\xff\xfe\tr\tb\n", "not UTF-8"),
    ("a\tr\tb\tx\n", "train.txt:1"),
])
def test_malformed_triple_files(tmp_path, capsys, content, needle):
    folder = write_kg(tmp_path / "kg")
    mode = "wb" if isinstance(content, bytes) else "w"
    with open(folder / "train.txt", mode) as f:
        f.write(content)
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_a_model_that_cannot_be_built_leaves_no_run_directory(tmp_path, capsys, monkeypatch):
    """An error raised while the task builds its model (after the config checks) ends the
    command before the run directory is created or touched."""
    from grsnn.tasks import KGCompletionTask
    from grsnn.training import ConfigError

    def refuse(self):
        raise ConfigError("model.hidden_dim: too small for this test")
    monkeypatch.setattr(KGCompletionTask, "build_model", refuse)
    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "o"
    assert main(["train", "--data", str(folder), "--out", str(out), *FAST]) == 2
    assert "model.hidden_dim: too small" in capsys.readouterr().err
    assert not out.exists()
    out.mkdir()                 # --force would start this run over: it is left as it was
    (out / "log.txt").write_text("an earlier run\n")
    assert main(["train", "--data", str(folder), "--out", str(out), *FAST, "--force"]) == 2
    assert (out / "log.txt").read_text() == "an earlier run\n"


def test_missing_files_and_bad_config(tmp_path, capsys):
    folder = write_kg(tmp_path / "kg")
    (folder / "valid.txt").unlink()
    assert main(["train", "--data", str(folder), "--out", str(tmp_path / "o"), *FAST]) == 2
    assert "valid.txt" in capsys.readouterr().err
    assert main(["train", "--data", str(tmp_path / "nope"), *FAST]) == 2
    assert "nope" in capsys.readouterr().err
    cfg = tmp_path / "c.yaml"
    cfg.write_text("dataset:\n  name: fb237_v1\ntrain:\n  epochs: 3\n")
    assert main(["train", "-c", str(cfg), "--out", str(tmp_path / "o2")]) == 2
    assert "train.epochs" in capsys.readouterr().err
    assert main(["train", "-c", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err
    assert main(["eval", "--checkpoint", str(tmp_path / "none.pt")]) == 2
    assert "none.pt" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    res = subprocess.run([sys.executable, "-m", "grsnn", "predict", "--checkpoint",
                          str(tmp_path / "x.pt"), "--head", "a", "--relation", "b"],
                         capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert res.returncode == 2 and "x.pt: no such checkpoint" in res.stderr


def test_stats_command(trained, capsys):
    _, out = trained
    assert main(["stats", "--checkpoint", str(out / "best.pt"), "--queries", "4"]) == 0
    text = capsys.readouterr().out
    assert "firing rate per time step" in text and "delivered spikes x D" in text
    rates = next(x for x in text.splitlines() if x.startswith("firing rate per time step"))
    assert len(rates.split(":")[1].split()) == 6          # time_steps = 6 in this run
    reach = text.split("reach of the query by hop distance")[1].splitlines()[1:]
    assert reach[0].split() == ["group", "fired", "first_spike", "informed"]
    # the printed table is source_reach's for the same 4 test queries
    from grsnn.tasks.build import load_trained
    from grsnn.reports.firing_stats import source_reach
    task, model = load_trained(str(out / "best.pt"), compiled=False)
    sp = task.data.splits["test"]
    h, _, r = sp.triples[:4].t()
    expect = source_reach(model, sp.graph, h, r)
    assert [line.split()[0] for line in reach[1:]] == [row["group"] for row in expect]
    for line, row in zip(reach[1:], expect):
        assert float(line.split()[3]) == pytest.approx(row["informed"], abs=1e-4)


def test_plot_command(trained, tmp_path, capsys):
    _, out = trained
    assert main(["plot", "--run", str(out), "--out", str(tmp_path)]) == 0
    for name in ("learning_curve.png", "delays.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert main(["plot", "--run", str(tmp_path / "nothing")]) == 2
    # two runs compared (the same one twice will do), and a missing one named in the error
    assert main(["plot", "--run", str(out), "--out", str(tmp_path), "--compare", str(out)]) == 0
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    capsys.readouterr()
    assert main(["plot", "--run", str(out), "--compare", str(tmp_path / "gone")]) == 2
    assert "gone: no metrics.jsonl" in capsys.readouterr().err


def test_summary_command(trained, tmp_path, capsys):
    _, out = trained
    results = json.loads((out / "results.json").read_text())["test"]
    valid = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    # an unfinished copy: no results.json, a second validated epoch with a better MRR
    half = tmp_path / "half"
    shutil.copytree(out, half)
    (half / "results.json").unlink()
    with open(half / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**valid[0], "epoch": 2, "mrr": valid[0]["mrr"] + 0.1}) + "\n")
    capsys.readouterr()
    assert main(["summary", str(out), str(half)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    head = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [dict(zip(head, (c.strip() for c in x.strip("|").split("|")))) for x in lines[2:]]
    assert len(rows) == 2 and [r["run"] for r in rows] == [out.name, "half"]
    done, running = rows
    assert done["epochs"] == "1 of 1" and done["best epoch"] == "1" and done["state"] == "done"
    assert done["valid (selection metric)"] == f"mrr {valid[0]['mrr']:.4f}"
    for m in ("mrr", "hits@1", "hits@10", "pessimistic.mrr"):
        assert done[f"test {m}"] == f"{results[m]:.4f}", m
    assert running["state"].startswith("unfinished") and running["test mrr"] == ""
    assert running["best epoch"] == "2" and running["epochs"] == "2 of 1"
    # a chosen column; an unknown metric and a missing run are one-line errors
    assert main(["summary", str(out), "--metrics", "hits@3"]) == 0
    assert f"| {results['hits@3']:.4f} |" in capsys.readouterr().out
    assert main(["summary", str(out), "--metrics", "hits@11"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown metric 'hits@11'" in err and len(err.splitlines()) == 1
    assert main(["summary", str(tmp_path / "gone")]) == 2
    assert "gone: no such run directory" in capsys.readouterr().err
    # a run that has not validated yet (no metrics.jsonl)
    (half / "metrics.jsonl").unlink()
    assert main(["summary", str(half)]) == 0
    assert "| not validated |" in capsys.readouterr().out
    # a run whose final test was capped says so
    cfg = (half / "config.yaml").read_text()
    assert "max_eval_queries: null" in cfg
    (half / "config.yaml").write_text(cfg.replace("max_eval_queries: null", "max_eval_queries: 5"))
    shutil.copy(out / "results.json", half / "results.json")
    assert main(["summary", str(half)]) == 0
    assert "| done; test on 5 target triples only (task.max_eval_queries) |" in \
        capsys.readouterr().out


def test_training_losses_read_epoch_lines_only():
    from grsnn.reports.plots import training_losses
    log = ("2026-01-01 00:00:00 epoch 1 batch 50/99: mean loss 0.7000, 3.0 queries/s\n"
           "2026-01-01 00:00:09 epoch 1: mean loss 0.6931 over 99 batches, 9.0 s\n"
           "2026-01-01 00:00:19 epoch 2: mean loss 0.5000 over 99 batches, 9.0 s\n"
           "2026-01-01 00:01:00 resumed at epoch 1 step 40\n"
           "2026-01-01 00:01:09 epoch 2: mean loss 0.4500 over 59 batches, 5.0 s\n")
    assert training_losses(log) == {1: 0.6931, 2: 0.45}


def test_explain_command_prints_paths_and_writes_pictures(trained, tmp_path, capsys):
    folder, out = trained
    head, rel, tail = (folder / "test.txt").read_text().splitlines()[0].split("\t")
    assert main(["explain", "--checkpoint", str(out / "best.pt"), "--head", head,
                 "--relation", rel, "--tail", tail, "--top", "3", "--plot", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"({head}, {rel}, {tail}): score")
    for name in ("raster.png", "delays_heatmap.png", "first_spike_vs_hops.png",
                 "explained_subgraph.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"
    assert main(["explain", "--checkpoint", str(out / "best.pt"), "--head", head,
                 "--relation", rel, "--tail", "nobody"]) == 2


def test_help_and_argument_errors_answer_without_importing_torch():
    root = Path(__file__).parents[1]
    code = ("import sys, grsnn.cli\n"
            "for argv in (['--help'], ['train', '--help'], ['predict'], ['eval', '--bogus']):\n"
            "    try:\n"
            "        grsnn.cli.main(argv)\n"
            "    except SystemExit as exc:\n"
            "        assert exc.code in (0, 2), (argv, exc.code)\n"
            "heavy = [m for m in ('torch', 'torch_geometric', 'networkx', 'yaml')\n"
            "         if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=root)
    assert res.returncode == 0, res.stderr
    assert "the following arguments are required: --checkpoint" in res.stderr
    # the entry point itself (python -m grsnn): its import log names no torch module
    res = subprocess.run([sys.executable, "-X", "importtime", "-m", "grsnn", "--help"],
                         capture_output=True, text=True, cwd=root)
    assert res.returncode == 0 and "predict" in res.stdout
    imported = [line.rsplit("|", 1)[-1].strip() for line in res.stderr.splitlines()
                if line.startswith("import time:")]
    assert "grsnn.cli" in imported and not [m for m in imported if m.startswith("torch")]


def test_set_takes_several_pairs_and_may_be_repeated(tmp_path, capsys):
    import yaml

    from grsnn.cli import build_parser
    args = build_parser().parse_args(["train", "--data", "x", "--set", "a.b=1", "c.d=2",
                                      "--set", "e.f=3"])
    assert args.set == ["a.b=1", "c.d=2", "e.f=3"]
    assert build_parser().parse_args(["eval", "--checkpoint", "x"]).set is None
    folder = write_kg(tmp_path / "kg")
    out = tmp_path / "run"
    assert main(["train", "--data", str(folder), "--out", str(out), "--quiet",
                 "--set", "model.hidden_dim=4", "model.time_steps=3", "train.num_epoch=1",
                 "task.num_negative=2", "train.seed=5",
                 "--set", "train.max_steps_per_epoch=2"]) == 0
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert (cfg["model"]["hidden_dim"], cfg["model"]["time_steps"], cfg["train"]["seed"],
            cfg["train"]["max_steps_per_epoch"]) == (4, 3, 5, 2)
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--quiet",
                 "--set", "task.max_eval_queries=3", "task.eval_batch_size=2"]) == 0
    assert "test.num_queries: 6" in capsys.readouterr().out          # 3 triples, both ways
    assert main(["eval", "--checkpoint", str(out / "best.pt"), "--set", "train.seed=1",
                 "nowhere=1"]) == 2
    assert "section.key=value" in capsys.readouterr().err


def test_stats_command_prints_the_cpu_time_per_query(trained, capsys):
    import re
    _, out = trained
    assert main(["stats", "--checkpoint", str(out / "best.pt"), "--queries", "4"]) == 0
    lines = capsys.readouterr().out.splitlines()
    energy = next(i for i, x in enumerate(lines) if x.startswith("energy per query"))
    assert re.match(r"measured time per query on this machine: CPU [0-9.e+-]+ ms",
                    lines[energy + 1])
