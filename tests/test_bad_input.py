"""Bad input, tried systematically (hypothesis): the triple parser, the config loader, the
command line and the engine. Each input ends in a clear error or a correct answer, never a
traceback from deep inside and never a partial write."""
import math
import string

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from grsnn.cli import main
from grsnn.data import DataError, read_numbered_triples
from grsnn.functional import build_plan
from grsnn.nn import GRSNN
from grsnn.tasks import ConfigError, apply_overrides, merge_config
from grsnn.training.config import DEFAULTS

from test_tasks import write_kg

SETTINGS = settings(max_examples=60 if settings().max_examples < 600 else 600,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])

# names: anything printable without tab/newline that is not blank
NAME = st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
               min_size=1, max_size=12).filter(lambda s: s.strip() == s and s.strip())
LINE = st.one_of(
    st.tuples(NAME, NAME, NAME).map(lambda t: "\t".join(t)),                 # good
    st.lists(NAME, min_size=0, max_size=5).map("\t".join),                   # column count
    st.text(max_size=20),                                                    # anything
    st.just(""), st.just("   "), st.just("a\t\tb"), st.just("a\tb\tc\td"),
    st.integers(min_value=-10**30, max_value=10**30).map(lambda i: f"{i}\t{i}\t{i}"),
)


@SETTINGS
@given(lines=st.lists(LINE, max_size=8), junk=st.binary(max_size=6), crlf=st.booleans())
def test_triple_parser_errors_name_file_and_line_or_parse_correctly(tmp_path, lines, junk,
                                                                     crlf):
    path = tmp_path / "train.txt"
    sep = "\r\n" if crlf else "\n"
    raw = sep.join(lines).encode("utf-8") + (junk if junk else b"")
    path.write_bytes(raw)
    try:
        got = read_numbered_triples(path)
    except DataError as err:
        msg = str(err)
        assert msg.startswith(f"{path}:") and "\n" not in msg
        line = msg[len(str(path)) + 1:].split(":")[0]
        assert line.isdigit() and 1 <= int(line) <= max(1, raw.count(b"\n") + 1)
        return
    # accepted: every triple is the stripped fields of its line, in order
    text = raw.decode("utf-8").split("\n")
    for lineno, triple in got:
        fields = text[lineno - 1].rstrip("\r").lstrip("\ufeff").split("\t")
        assert triple == tuple(f.strip() for f in fields) and all(triple)
    assert [n for n, _ in got] == sorted({n for n, _ in got})


@SETTINGS
@given(triples=st.lists(st.tuples(NAME, NAME, NAME), min_size=1, max_size=20))
def test_any_well_formed_triples_round_trip(tmp_path, triples):
    path = tmp_path / "t.txt"
    path.write_text("".join("\t".join(t) + "\n" for t in triples), encoding="utf-8")
    assert [t for _, t in read_numbered_triples(path)] == triples


VALUE = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                  st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                  st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                                                                       st.integers(), max_size=2))
KEY = st.one_of(st.sampled_from([(s, k) for s in DEFAULTS for k in DEFAULTS[s]]),
                st.tuples(st.sampled_from(list(DEFAULTS) + ["modle", ""]),
                          st.text(string.ascii_lowercase + "_", max_size=8)))


def _assert_typed(cfg):
    for section, keys in DEFAULTS.items():
        for key, default in keys.items():
            value = cfg[section][key]
            if value is None or default is None:
                continue
            assert type(value) is type(default) or (isinstance(default, float)
                                                    and isinstance(value, float))
            if isinstance(value, float):
                assert math.isfinite(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                assert value >= 0


@SETTINGS
@given(items=st.lists(st.tuples(KEY, VALUE), max_size=4))
def test_config_loader_accepts_typed_values_or_names_the_key(items):
    raw = {}
    for (section, key), value in items:
        raw.setdefault(section, {})[key] = value
    try:
        cfg = merge_config(raw)
    except ConfigError as err:
        msg = str(err)
        assert "\n" not in msg and any(f"{s}" in msg for s in list(raw) + ["section"])
        return
    _assert_typed(cfg)


@SETTINGS
@given(items=st.lists(st.tuples(KEY, st.sampled_from(
    ["nan", "-1", "1e999", ".inf", "0", "[1", "{a: 1}", "!!python/object/apply:os.system ['x']",
     "3", "true", "", "abc", "99999999999999999999999"])), max_size=3))
def test_overrides_from_the_command_line_are_parsed_safely(items):
    overrides = [f"{s}.{k}={v}" if s else f"{k}={v}" for (s, k), v in items]
    try:
        cfg = apply_overrides(merge_config({}), overrides)
    except ConfigError as err:
        assert "\n" not in str(err)
        return
    _assert_typed(cfg)


ARGV = st.lists(st.one_of(
    st.sampled_from(["train", "eval", "predict", "explain", "stats", "plot", "--data",
                     "--out", "--set", "--resume", "--force", "--checkpoint", "--head",
                     "--relation", "--tail", "--split", "-c", "--top", "--quiet",
                     "train.num_epoch=nan", "model.hidden_dim=-3", "task.eval_memory_mb=0",
                     "nowhere", "KG", "OUT", "OUT/best.pt", "e1", "r0", "r0^-1", "-5",
                     "99999999999999999999"]),
    st.text(max_size=6)), max_size=7)


@pytest.fixture(scope="module")
def cli_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("argv")
    write_kg(root / "KG")
    fast = ["--set", "model.hidden_dim=4", "--set", "model.time_steps=3", "--set",
            "train.num_epoch=1", "--set", "task.num_negative=2", "--quiet"]
    assert main(["train", "--data", str(root / "KG"), "--out", str(root / "OUT"), *fast]) == 0
    return root


@settings(max_examples=40 if settings().max_examples < 600 else 300,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=ARGV)
def test_command_line_never_tracebacks_or_damages_a_run(cli_root, monkeypatch, capsys, argv):
    monkeypatch.chdir(cli_root)
    argv = [a for a in argv if a not in ("--force",)]     # --force may legitimately reset
    run = cli_root / "OUT"
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    if argv[:1] == ["train"] and "--out" not in argv:
        argv += ["--out", "OUT"]                          # a training run never lands elsewhere
    argv = [a for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:                             # argparse: usage error, exit 2
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2), (argv, err)
    if code == 2 and err.startswith("error:"):
        assert err.count("\n") == 1, err                  # one line
    assert "Traceback" not in err
    # the existing run directory is never changed (no --force, and --resume of a finished
    # run only re-evaluates it and rewrites the same results)
    after = {p.name: p.read_bytes() for p in run.iterdir()}
    assert after.keys() == before.keys()
    for name in ("best.pt", "config.yaml"):
        assert after[name] == before[name]


@SETTINGS
@given(n=st.integers(0, 6), extra=st.integers(-2**40, 2**40))
def test_engine_rejects_out_of_range_ids_with_a_clear_error(n, extra):
    edge_index = torch.tensor([[0, extra], [min(n, 1), 0]]) if n else torch.tensor([[extra], [0]])
    num_nodes = max(n, 1)
    ok = 0 <= extra < num_nodes and (min(n, 1) < num_nodes)
    if ok:
        assert build_plan(edge_index, num_nodes).num_nodes == num_nodes
    else:
        with pytest.raises(ValueError, match="edge_index|node"):
            build_plan(edge_index, num_nodes)


def test_empty_graph_and_isolated_source_give_finite_scores():
    torch.manual_seed(0)
    model = GRSNN(num_relations=2, hidden_dim=8, time_steps=5).eval()

    class G:   # an empty graph: 4 nodes, no edge
        edge_index = torch.zeros(2, 0, dtype=torch.long)
        edge_type = torch.zeros(0, dtype=torch.long)
        num_nodes = 4

    scores = model.score_all(G, torch.tensor([0, 3]), torch.tensor([1, 0]))
    assert scores.shape == (2, 4) and torch.isfinite(scores).all()
    # no path from the source: every other node gets the same (no-spike) score
    assert torch.equal(scores[0, 1:], scores[0, 1:2].expand(3))

    class H:   # node 3 isolated, a path 0 -> 1 -> 2
        edge_index = torch.tensor([[0, 1], [1, 2]])
        edge_type = torch.tensor([0, 1])
        num_nodes = 4

    iso = model.score_all(H, torch.tensor([3]), torch.tensor([0]))
    assert torch.isfinite(iso).all() and torch.equal(iso[0, :3], iso[0, :1].expand(3))
