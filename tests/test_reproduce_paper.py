"""reproduce-paper: every published table as a unit, compared with the paper's test, family and interval."""

import shlex
import subprocess
from pathlib import Path

import pytest

from pipeline.batch import submit
from pipeline.config import load_config
from pipeline.evaluation.published import PUBLISHED
from pipeline.paper import reproduce
from pipeline.paper.registry import TABLES, tables_named

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def at_root(monkeypatch):
    monkeypatch.chdir(ROOT)


def printed_plan(capsys, *argv) -> list[str]:
    assert reproduce.main([*argv, "--print"]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]


def test_every_table_lists_existing_configs_of_its_data_set(at_root):
    assert list(TABLES) == [
        "mixed_focal_kits19",
        "mixed_focal_brats20",
        "unified_focal_kits19",
        "unified_focal_kits19_ds",
        "unified_focal_brats20",
        "unified_focal_brats20_ds",
        "unified_focal_cvc",
        "unified_focal_drive",
        "unified_focal_bus2017",
        "unified_focal_bus2017_ds",
    ]
    assert len(TABLES["mixed_focal_kits19"].configs) == 7 and len(TABLES["mixed_focal_brats20"].configs) == 3
    for table in TABLES.values():
        for config in table.configs:
            assert load_config(config).data.dataset == table.dataset
    assert set(PUBLISHED) <= set(TABLES)
    assert [table.id for table in tables_named(["brats20"])] == [
        "mixed_focal_brats20",
        "unified_focal_brats20",
        "unified_focal_brats20_ds",
    ]
    assert [table.id for table in tables_named(["bus2017"])] == ["unified_focal_bus2017", "unified_focal_bus2017_ds"]
    with pytest.raises(KeyError, match="isic2018"):
        tables_named(["isic2018"])


@pytest.mark.parametrize("table_id", list(TABLES))
def test_print_shows_the_runs_then_a_paper_mode_comparison_of_exactly_the_table(at_root, capsys, table_id):
    table = TABLES[table_id]
    lines = printed_plan(capsys, table_id, "--set", "training.epochs=2", "--set", "experiment.output_root=elsewhere")
    assert lines[:-1] == [
        f"run-experiment {config} --set training.epochs=2 --set experiment.output_root=elsewhere"
        for config in table.configs
    ]
    compare = shlex.split(lines[-1])
    # The overrides decide the run folders the comparison reads; the family is the table's runs only.
    run_dirs = [f"elsewhere/{load_config(config).experiment.name}" for config in table.configs]
    published = ["--published", table_id] if table_id in PUBLISHED else []
    assert compare == ["compare-losses", *run_dirs, "--out", f"results/paper/{table_id}", "--paper", *published]


def test_table4_family_is_its_three_losses(at_root, capsys):
    lines = printed_plan(capsys, "mixed_focal_brats20")
    assert lines[-1] == (
        "compare-losses runs/brats20_focal_tversky runs/brats20_combo runs/brats20_mixed_focal "
        "--out results/paper/mixed_focal_brats20 --paper --published mixed_focal_brats20"
    )


def test_a_run_shared_by_two_tables_is_trained_once(at_root, capsys):
    lines = printed_plan(capsys, "kits19")
    runs = [line for line in lines if line.startswith("run-experiment")]
    assert len(runs) == len(set(runs)) == 12
    compares = [line for line in lines if line.startswith("compare-losses")]
    assert len(compares) == 3 and all("--paper" in line for line in compares)
    assert "runs/kits19_focal " in compares[0] and "runs/kits19_focal " in compares[1]


def test_plan_runs_in_order_and_stops_at_a_failure(at_root, monkeypatch, tmp_path):
    calls = []
    failing_call = []

    def fake_run(command, check):
        calls.append(command)
        return subprocess.CompletedProcess(command, 1 if len(calls) in failing_call else 0)

    monkeypatch.setattr(reproduce.subprocess, "run", fake_run)
    assert reproduce.main(["unified_focal_kits19_ds", "--results", str(tmp_path)]) == 0
    modules = [command[2] for command in calls]
    assert modules == ["pipeline.runner_cli"] * 4 + ["pipeline.evaluation.compare"]
    assert calls[0][3:] == ["configs/kits19_symmetric_unified_focal.yaml"]
    assert calls[-1][-5:] == [
        "--out",
        str(tmp_path / "unified_focal_kits19_ds"),
        "--paper",
        "--published",
        "unified_focal_kits19_ds",
    ]
    calls.clear()
    failing_call.append(2)
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(["mixed_focal_brats20"])
    assert exit_info.value.code == 2 and len(calls) == 2


def test_unknown_table_and_missing_config_fail_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for argv, message in (
        (["isic2018", "--print"], "unknown table or data set: isic2018"),
        (["mixed_focal_brats20", "--print"], "configs/brats20_focal_tversky.yaml"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            reproduce.main(argv)
        error = capsys.readouterr().err
        assert exit_info.value.code == 2 and error.count("\n") == 1 and message in error
    assert not list(tmp_path.iterdir())


def test_slurm_plan_passes_the_paper_comparison_to_submit_grid(at_root, capsys, tmp_path):
    lines = printed_plan(
        capsys,
        "mixed_focal_brats20",
        "--slurm",
        "--set",
        "training.epochs=2",
        "--results",
        str(tmp_path),
        "--slurm-option=--partition=gpu",
    )
    configs = [
        str(tmp_path / "mixed_focal_brats20" / "configs" / f"brats20_{loss}.yaml")
        for loss in ("focal_tversky", "combo", "mixed_focal")
    ]
    assert shlex.split(lines[0]) == [
        "submit-grid",
        *configs,
        "--out",
        str(tmp_path / "mixed_focal_brats20" / "grid"),
        "--compare-args=--paper --published mixed_focal_brats20",
        "--partition=gpu",
    ]
    assert not (tmp_path / "mixed_focal_brats20").exists()  # --print writes nothing


def test_slurm_refuses_tables_sharing_runs(at_root, capsys):
    with pytest.raises(SystemExit) as exit_info:
        reproduce.main(["brats20", "--slurm", "--print"])
    assert exit_info.value.code == 2 and "submit them one after the other" in capsys.readouterr().err


def test_resolved_configs_for_slurm_carry_the_overrides(at_root, tmp_path):
    target = tmp_path / "brats20_combo.yaml"
    reproduce._write_resolved("configs/brats20_combo.yaml", target, ["training.epochs=2"])
    assert load_config(target).training.epochs == 2
    assert load_config(target).loss == load_config("configs/brats20_combo.yaml").loss


def test_submit_grid_dry_run_shows_the_comparison_options(at_root, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(submit, "preflight_grid", lambda *arguments: None)  # no BraTS20 data here; tested in test_slurm
    assert (
        submit.main(
            [
                "configs/brats20_combo.yaml",
                "--out",
                str(tmp_path / "grid"),
                "--dry-run",
                "--compare-args=--paper --published mixed_focal_brats20",
            ]
        )
        == 0
    )
    assert "compare-losses options: --paper --published mixed_focal_brats20" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        submit.main(["configs/brats20_combo.yaml", "--dry-run", "--compare-args='a b'"])


@pytest.mark.slow
def test_the_script_is_the_command(at_root):
    result = subprocess.run(
        ["bash", "scripts/reproduce_paper.sh", "mixed_focal_brats20", "--print"],
        check=False,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={"PATH": f"{ROOT / '.venv' / 'bin'}:/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].endswith("--paper --published mixed_focal_brats20")
