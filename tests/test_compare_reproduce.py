"""scripts/reproduce_paper.sh: the paper's grid of configs, then compare-losses."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "reproduce_paper.sh"
KITS19_LOSSES = ["focal", "dice", "tversky", "cosine_tversky", "focal_tversky", "combo", "mixed_focal",
                 "symmetric_unified_focal", "asymmetric_unified_focal"]
BRATS20_LOSSES = ["focal_tversky", "combo", "mixed_focal", "symmetric_unified_focal", "asymmetric_unified_focal"]


def reproduce(*args, cwd, env=None):
    return subprocess.run(["bash", str(SCRIPT), *args], cwd=cwd, env=env, capture_output=True, text=True)


@pytest.mark.parametrize("dataset, grid", [("kits19", KITS19_LOSSES), ("brats20", BRATS20_LOSSES)])
def test_print_lists_every_run_then_the_comparison(tmp_path, dataset, grid):
    result = reproduce(dataset, "--print", "--set", "training.epochs=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:-1] == [f"run-experiment configs/{dataset}_{loss}.yaml --set training.epochs=2" for loss in grid]
    run_dirs = " ".join(
        f'"$(run-experiment configs/{dataset}_{loss}.yaml --set training.epochs=2 --print-run-dir)"' for loss in grid)
    assert lines[-1] == f"compare-losses {run_dirs} --out results/{dataset}"


def test_runs_the_grid_with_the_run_folders_from_the_runner(tmp_path):
    """Stand-in commands record their calls; the script must chain them in order."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls.txt"
    (bin_dir / "run-experiment").write_text(
        '#!/usr/bin/env bash\necho "run-experiment $*" >> "$CALLS"\n'
        'if [[ " $* " == *" --print-run-dir "* ]]; then b=$(basename "$1" .yaml); echo "runs/$b"; fi\n')
    (bin_dir / "compare-losses").write_text('#!/usr/bin/env bash\necho "compare-losses $*" >> "$CALLS"\n')
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    (tmp_path / "configs").mkdir()
    for loss in BRATS20_LOSSES:
        (tmp_path / "configs" / f"brats20_{loss}.yaml").write_text("{}\n")
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(calls)}
    result = reproduce("brats20", "--set", "x=1", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    expected = []
    for loss in BRATS20_LOSSES:
        expected += [f"run-experiment configs/brats20_{loss}.yaml --set x=1",
                     f"run-experiment configs/brats20_{loss}.yaml --set x=1 --print-run-dir"]
    expected.append("compare-losses " + " ".join(f"runs/brats20_{loss}" for loss in BRATS20_LOSSES)
                    + " --out results/brats20")
    assert calls.read_text().splitlines() == expected


def test_refuses_an_unknown_dataset_and_a_missing_config(tmp_path):
    unknown = reproduce("bus2017", cwd=tmp_path)
    assert unknown.returncode == 2 and "usage:" in unknown.stderr
    missing = reproduce("kits19", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == "error: configs/kits19_focal.yaml: config file missing\n"
