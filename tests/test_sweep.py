"""Sweeps: expansion of --sweep into member configs, sweep-report, and a sweep end to end on phantoms."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats

from pipeline.errors import ConfigError
from pipeline.evaluation.sweep_report import main as report_main
from pipeline.runner_cli import main as run_main
from pipeline.sweep import expand_sweep, parse_sweep

REPOSITORY = Path(__file__).resolve().parent.parent
CONFIG = REPOSITORY / "configs" / "demo_asymmetric_unified_focal.yaml"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def listing(root: Path) -> list[str]:
    return sorted(str(path.relative_to(root)) for path in root.rglob("*")) if root.exists() else []


def test_values_are_yaml_and_lists_keep_their_commas():
    assert parse_sweep("loss.params.gamma=0.1,0.3").values == (0.1, 0.3)
    assert parse_sweep("sampling.patch_shape=[16,32,32],[32, 32, 32]").values == ([16, 32, 32], [32, 32, 32])
    assert parse_sweep("model.deep_supervision=true,false").values == (True, False)


@pytest.mark.parametrize(
    "argument, problem",
    [
        ("loss.params.gamma", "expected dotted.key=value1,value2"),
        ("loss.params.gamma=0.1,,0.3", "none may be empty"),
        ("loss.params.gamma=0.1,0.1", "listed twice"),
        ("experiment.name=a,b", "cannot be swept"),
        ("loss.params.gamma=[0.1", "not valid YAML"),
    ],
)
def test_malformed_sweeps_are_refused(argument, problem):
    with pytest.raises(ConfigError, match=problem):
        parse_sweep(argument)


def test_expansion_is_the_product_in_order_with_one_shared_split(tmp_path):
    sweep = expand_sweep(
        CONFIG, ["loss.params.gamma=0.3,0.5", "loss.params.delta=0.6,0.7,0.8"], [f"experiment.output_root={tmp_path}"]
    )
    names = [member.name for member in sweep.members]
    assert names[:3] == [
        "demo_asymmetric_unified_focal_gamma-0.3_delta-0.6",
        "demo_asymmetric_unified_focal_gamma-0.3_delta-0.7",
        "demo_asymmetric_unified_focal_gamma-0.3_delta-0.8",
    ]
    assert len(names) == 6 and len(set(names)) == 6
    assert sweep.folder == tmp_path / "demo_asymmetric_unified_focal-sweep"
    for member in sweep.members:
        assert member.config.loss.params["gamma"] == member.values["loss.params.gamma"]
        assert member.config.loss.params["delta"] == member.values["loss.params.delta"]
        assert member.config.run_dir == sweep.folder / member.name
    splits = {member.config.cross_validation.splits_file for member in sweep.members}
    assert len(splits) == 1  # the demo configs share runs/demo/splits.json already
    assert sweep.defaults == {"loss.params.gamma": 0.5, "loss.params.delta": 0.6}
    assert listing(tmp_path) == []


def test_a_sweep_without_a_splits_file_shares_one_in_the_sweep_folder(tmp_path):
    sweep = expand_sweep(
        CONFIG,
        ["training.learning_rate=0.001,0.002"],
        [f"experiment.output_root={tmp_path}", "cross_validation.splits_file=null"],
    )
    assert {member.config.cross_validation.splits_file for member in sweep.members} == {sweep.folder / "splits.json"}
    assert [member.name for member in sweep.members] == [
        "demo_asymmetric_unified_focal_learning_rate-0.001",
        "demo_asymmetric_unified_focal_learning_rate-0.002",
    ]


def test_an_unset_loss_parameter_defaults_to_the_loss_default(tmp_path):
    sweep = expand_sweep(
        REPOSITORY / "configs" / "demo_focal.yaml",
        ["loss.params.gamma=1,2"],
        [f"experiment.output_root={tmp_path}", "loss.params={}"],
    )
    assert sweep.defaults == {"loss.params.gamma": 2.0}


def test_same_last_key_part_uses_the_whole_key(tmp_path):
    sweep = expand_sweep(
        CONFIG,
        [
            "augmentation.rotation.probability=0.1,0.2",
            "augmentation.elastic.probability=0.3,0.4",
            "training.epochs=1,2",
        ],
        [f"experiment.output_root={tmp_path}"],
    )
    assert sweep.members[0].name.endswith(
        "_augmentation.rotation.probability-0.1_augmentation.elastic.probability-0.3_epochs-1"
    )
    assert sweep.members[0].config.augmentation.elastic.probability == 0.3


def test_an_invalid_value_fails_naming_it_and_writes_nothing(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main([str(CONFIG), "--set", f"experiment.output_root={tmp_path}", "--sweep", "loss.params.delta=0.6,1.5"])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert "--sweep loss.params.delta=1.5" in error
    assert listing(tmp_path) == []


def write_member(folder: Path, name: str, dsc_kidney, dsc_tumour):
    run_dir = folder / name
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "experiment": {"name": name},
                "loss": {"name": "asymmetric_unified_focal", "params": {}},
                "data": {"dataset": "kits19", "root": "nowhere"},
            }
        )
    )
    lines = ["case,fold,class,dsc,precision,recall"]
    for case, (kidney, tumour) in enumerate(zip(dsc_kidney, dsc_tumour)):
        lines += [
            f"case_{case:05d},{case % 2},kidney,{kidney},{kidney},{kidney}",
            f"case_{case:05d},{case % 2},tumour,{tumour},{tumour},{tumour}",
        ]
    (run_dir / "metrics.csv").write_text("\n".join(lines) + "\n")


def write_sweep(folder: Path, keys: dict, defaults: dict, score) -> None:
    """A finished sweep folder: members for every combination, DSC from ``score(values, case)``."""
    import itertools

    members = []
    for combination in itertools.product(*keys.values()):
        values = dict(zip(keys, combination))
        name = "s" + "".join(f"_{key.rsplit('.', 1)[-1]}-{value}" for key, value in values.items())
        cases = range(12)
        write_member(
            folder,
            name,
            [min(1.0, score(values, case) + 0.1) for case in cases],
            [score(values, case) for case in cases],
        )
        members.append({"name": name, "values": values, "overrides": []})
    (folder / "sweep.json").write_text(
        json.dumps({"config": "c.yaml", "keys": list(keys), "values": keys, "defaults": defaults, "members": members})
    )


def peaked(values, case):
    """Best at gamma 0.3, delta 0.7; a little case-dependent noise."""
    gamma, delta = values["loss.params.gamma"], values.get("loss.params.delta", 0.7)
    return 0.8 - abs(gamma - 0.3) - abs(delta - 0.7) + 0.01 * ((case * 7) % 5)


def test_report_of_two_keys_finds_the_best_and_tests_it_against_the_default(tmp_path, capsys):
    folder = tmp_path / "sweep"
    write_sweep(
        folder,
        {"loss.params.gamma": [0.1, 0.3, 0.5], "loss.params.delta": [0.6, 0.7]},
        {"loss.params.gamma": 0.5, "loss.params.delta": 0.6},
        peaked,
    )
    out = tmp_path / "report"
    assert report_main([str(folder), "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "sweep.csv",
        "sweep.md",
        "sweep.tex",
        "sweep_kidney.png",
        "sweep_tumour.png",
    ]
    summary = pd.read_csv(out / "sweep.csv")
    tumour = summary[summary["class"] == "tumour"].reset_index(drop=True)
    best = tumour["mean"].idxmax()
    assert (tumour["loss.params.gamma"][best], tumour["loss.params.delta"][best]) == (0.3, 0.7)
    interval = stats.t.interval(
        0.95,
        11,
        loc=tumour["mean"][best],
        scale=stats.sem([peaked({"loss.params.gamma": 0.3, "loss.params.delta": 0.7}, c) for c in range(12)]),
    )
    assert tumour["ci_low"][best] == pytest.approx(interval[0]) and tumour["ci_high"][best] == pytest.approx(
        interval[1]
    )
    best_scores = [peaked({"loss.params.gamma": 0.3, "loss.params.delta": 0.7}, c) for c in range(12)]
    default_scores = [peaked({"loss.params.gamma": 0.5, "loss.params.delta": 0.6}, c) for c in range(12)]
    expected_p = stats.wilcoxon(best_scores, default_scores).pvalue
    report = (out / "sweep.md").read_text()
    assert "tumour: best gamma=0.3, delta=0.7; against the default (gamma=0.5, delta=0.6)" in report
    assert f"p = {expected_p:.3g}" in report
    assert "**0.820 ± " in report or "**0.8" in report
    assert (out / "sweep_tumour.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "Table: Sweep of loss.params.gamma, loss.params.delta" in capsys.readouterr().out


def test_report_of_one_key_draws_a_line_and_says_when_the_default_was_not_swept(tmp_path):
    folder = tmp_path / "sweep"
    write_sweep(folder, {"loss.params.gamma": [0.1, 0.3]}, {"loss.params.gamma": 0.5}, peaked)
    out = tmp_path / "report"
    assert report_main([str(folder), "--out", str(out)]) == 0
    assert "is not among the swept settings" in (out / "sweep.md").read_text()
    assert (out / "sweep_tumour.png").read_bytes().startswith(PNG_SIGNATURE)


def test_report_refuses_an_unfinished_member_and_writes_nothing(tmp_path, capsys):
    folder = tmp_path / "sweep"
    write_sweep(folder, {"loss.params.gamma": [0.1, 0.3]}, {"loss.params.gamma": 0.1}, peaked)
    (folder / "s_gamma-0.3" / "metrics.csv").unlink()
    with pytest.raises(SystemExit) as exit_info:
        report_main([str(folder), "--out", str(tmp_path / "report")])
    assert exit_info.value.code == 2
    assert "s_gamma-0.3/metrics.csv: missing" in capsys.readouterr().err
    assert not (tmp_path / "report").exists()


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory):
    from pipeline.data.phantoms import write_kits19

    root = tmp_path_factory.mktemp("data") / "kits19"
    write_kits19(root, 4, seed=1, size="demo")
    return root


@pytest.mark.slow
def test_a_two_key_sweep_runs_resumes_and_reports(tmp_path, phantoms, capsys):
    tiny = [
        "--set",
        f"experiment.output_root={tmp_path / 'runs'}",
        "--set",
        f"data.root={phantoms}",
        "--set",
        f"preprocessing.cache_dir={tmp_path / 'cache'}",
        "--set",
        "cross_validation.splits_file=null",
        "--set",
        "cross_validation.folds=2",
        "--set",
        "preprocessing.target_spacing=[6.0, 6.0, 6.0]",
        "--set",
        "sampling.patch_shape=[8, 32, 32]",
        "--set",
        "sampling.batches_per_epoch=2",
        "--set",
        "sampling.val_batches=1",
        "--set",
        "model.n_filters=2",
        "--set",
        "model.depth=2",
        "--set",
        "training.epochs=1",
        "--set",
        "inference.overlap=[4, 16, 16]",
    ]
    sweeps = ["--sweep", "loss.params.gamma=0.3,0.5", "--sweep", "loss.params.delta=0.6,0.7"]
    folder = tmp_path / "runs" / "demo_asymmetric_unified_focal-sweep"
    # Interrupted: only fold 0 of every member ran.
    assert run_main([str(CONFIG), *tiny, *sweeps, "--fold", "0"]) == 0
    members = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert len(members) == 4
    first_done = {name: (folder / name / "fold_0" / "done.json").stat().st_mtime_ns for name in members}
    assert not any((folder / name / "metrics.csv").exists() for name in members)
    # Resumed: fold 0 is skipped, fold 1 runs, metrics are collected.
    assert run_main([str(CONFIG), *tiny, *sweeps]) == 0
    assert {name: (folder / name / "fold_0" / "done.json").stat().st_mtime_ns for name in members} == first_done
    assert all((folder / name / "metrics.csv").exists() for name in members)
    splits = {(folder / name / "splits.json").read_text() for name in members}
    assert len(splits) == 1 and (folder / "splits.json").read_text() in splits
    assert "skipped" in capsys.readouterr().err  # logged
    out = tmp_path / "report"
    assert report_main([str(folder), "--out", str(out)]) == 0
    assert (out / "sweep_tumour.png").read_bytes().startswith(PNG_SIGNATURE)
    summary = pd.read_csv(out / "sweep.csv")
    assert len(summary) == 4 * 3 and np.isfinite(summary["mean"]).all()  # kidney, tumour, kidney_and_tumour
