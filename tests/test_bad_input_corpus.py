"""A corpus of bad inputs for every command: exit 2, one line naming the culprit, nothing written.

Each kind builds a workspace (good KiTS19 phantoms, a good config, good run
folders), breaks one thing, runs the command's ``main(argv)`` in this
process, and checks: exit status 2, exactly one line on stderr that names
the file or key, and every file and folder of the workspace (run folders,
cache, splits files, ``--out``) exactly as before (names, sizes, times).
A few kinds are also run as real console scripts to show that no traceback
reaches the user.
"""

from __future__ import annotations

import gzip
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable

import nibabel as nib
import numpy as np
import pytest
import yaml

from pipeline.data.nifti import write_nifti
from pipeline.data.phantom_ct import kits19_affine
from pipeline.data.phantoms import write_kits19

PROJECT_ROOT = Path(__file__).resolve().parent.parent
BIN = PROJECT_ROOT / ".venv" / "bin"
CASES = 3


@dataclass
class Workspace:
    """A folder with good inputs; the kinds break one of them."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data" / "kits19"

    def case(self, number: int) -> Path:
        return self.data / f"case_{number:05d}"

    def image(self, number: int = 1) -> Path:
        return self.case(number) / "imaging.nii.gz"

    def mask(self, number: int = 1) -> Path:
        return self.case(number) / "segmentation.nii.gz"

    def geometry(self, number: int = 1):
        image = nib.load(self.image(number))
        return image.shape, image.affine

    def config(self, name: str = "good", **sections) -> str:
        """A tiny valid experiment config (merged with ``sections``), written to ``<name>.yaml``."""
        config = {
            "base": str(PROJECT_ROOT / "configs" / "base" / "demo.yaml"),
            "experiment": {"name": name, "output_root": "runs"},
            "data": {"root": "data/kits19", "exclude": []},
            "preprocessing": {"cache_dir": "cache"},
            "loss": {"name": "dice"},
            "training": {"epochs": 1},
            "cross_validation": {"folds": 2, "splits_file": "runs/splits.json"},
        }
        for section, values in sections.items():
            if isinstance(values, dict) and isinstance(config.get(section), dict):
                config[section] = {**config[section], **values}
            else:
                config[section] = values
        path = self.root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(config))
        return path.name

    def run_folder(self, name: str, loss: str, cases=None, scores=0.8) -> str:
        """A finished run folder as compare-losses reads it."""
        cases = cases or [f"case_{number:05d}" for number in range(5)]
        run_dir = self.root / "runs" / name
        (run_dir / "fold_0").mkdir(parents=True)
        (run_dir / "config.yaml").write_text(
            yaml.safe_dump(
                {
                    "experiment": {"name": name},
                    "loss": {"name": loss, "params": {}},
                    "data": {"dataset": "kits19", "root": "no-such-data"},
                }
            )
        )
        rows = ["case,fold,class,dsc,precision,recall"]
        rows += [f"{case},0,kidney,{scores},{scores},{scores}" for case in cases]
        (run_dir / "metrics.csv").write_text("\n".join(rows) + "\n")
        return str(run_dir)


@dataclass(frozen=True)
class Kind:
    name: str
    command: str
    build: Callable[[Workspace], tuple[list[str], str]]  # -> (argv, text the error line must contain)


KINDS: list[Kind] = []


def kind(command: str):
    def register(build):
        KINDS.append(Kind(build.__name__, command, build))
        return build

    return register


def _write(path: Path, data: np.ndarray, affine=None) -> None:
    write_nifti(path, data, kits19_affine((4.0, 3.0, 3.0)) if affine is None else affine)


def _mask_like(ws: Workspace, value, dtype=np.uint8) -> np.ndarray:
    shape, _ = ws.geometry()
    mask = np.zeros(shape, dtype)
    mask[1, 1, 1] = value
    return mask


# --- run-experiment: the data set --------------------------------------------------------------


@kind("run-experiment")
def truncated_image(ws):
    data = ws.image().read_bytes()
    ws.image().write_bytes(data[: len(data) // 2])
    return [ws.config()], "case_00001/imaging.nii.gz"


@kind("run-experiment")
def truncated_mask(ws):
    data = ws.mask().read_bytes()
    ws.mask().write_bytes(data[: len(data) * 2 // 3])
    return [ws.config()], "case_00001/segmentation.nii.gz"


@kind("run-experiment")
def truncated_uncompressed_image(ws):
    raw = gzip.decompress(ws.image().read_bytes())
    ws.image().unlink()
    (ws.case(1) / "imaging.nii").write_bytes(raw[:-500])
    return [ws.config()], "case_00001/imaging.nii: truncated or corrupt"


@kind("run-experiment")
def text_file_named_nii_gz(ws):
    ws.image(2).write_text("<html>404 Not Found</html>")
    return [ws.config()], "case_00002/imaging.nii.gz: not a readable NIfTI"


@kind("run-experiment")
def text_file_named_nii_gz_as_mask(ws):
    ws.mask(0).write_text("segmentation goes here")
    return [ws.config()], "case_00000/segmentation.nii.gz: not a readable NIfTI"


@kind("run-experiment")
def empty_image_file(ws):
    ws.image().write_bytes(b"")
    return [ws.config()], "case_00001/imaging.nii.gz"


@kind("run-experiment")
def image_mask_shape_mismatch(ws):
    shape, affine = ws.geometry()
    _write(ws.mask(), np.zeros((shape[0], shape[1], shape[2] - 1), np.uint8), affine)
    return [ws.config()], "case_00001/segmentation.nii.gz: shape"


@kind("run-experiment")
def image_mask_affine_mismatch(ws):
    _, affine = ws.geometry()
    shifted = affine.copy()
    shifted[0, 3] += 5.0
    _write(ws.mask(), _mask_like(ws, 1), shifted)
    return [ws.config()], "case_00001/segmentation.nii.gz: affine differs"


@kind("run-experiment")
def stray_label(ws):
    _write(ws.mask(), _mask_like(ws, 3), ws.geometry()[1])
    return [ws.config()], "case_00001/segmentation.nii.gz: unexpected label values [3]"


@kind("run-experiment")
def negative_label(ws):
    _write(ws.mask(), _mask_like(ws, -1, np.int16), ws.geometry()[1])
    return [ws.config()], "case_00001/segmentation.nii.gz: unexpected label values [-1]"


@kind("run-experiment")
def non_integer_label(ws):
    _write(ws.mask(), _mask_like(ws, 0.5, np.float32), ws.geometry()[1])
    return [ws.config()], "case_00001/segmentation.nii.gz: mask holds non-integer"


@kind("run-experiment")
def nan_in_mask(ws):
    _write(ws.mask(), _mask_like(ws, np.nan, np.float32), ws.geometry()[1])
    return [ws.config()], "case_00001/segmentation.nii.gz: mask holds NaN"


@kind("run-experiment")
def nan_voxels(ws):
    shape, affine = ws.geometry()
    image = np.zeros(shape, np.float32)
    image[2, 2, 2] = np.nan
    _write(ws.image(), image, affine)
    return [ws.config()], "case_00001/imaging.nii.gz: 1 voxels are NaN or Inf"


@kind("run-experiment")
def inf_voxels(ws):
    shape, affine = ws.geometry(2)
    image = np.zeros(shape, np.float32)
    image[0, 0, :3] = np.inf
    _write(ws.image(2), image, affine)
    return [ws.config()], "case_00002/imaging.nii.gz: 3 voxels are NaN or Inf"


@kind("run-experiment")
def four_d_image(ws):
    shape, affine = ws.geometry()
    nib.save(nib.Nifti1Image(np.zeros((*shape, 2), np.int16), affine), ws.image())
    return [ws.config()], "case_00001/imaging.nii.gz: expected a 3-D volume"


@kind("run-experiment")
def two_d_mask(ws):
    shape, affine = ws.geometry()
    nib.save(nib.Nifti1Image(np.zeros(shape[1:], np.uint8), affine), ws.mask())
    return [ws.config()], "case_00001/segmentation.nii.gz: expected a 3-D volume"


@kind("run-experiment")
def missing_image(ws):
    ws.image().unlink()
    return [ws.config()], "case_00001/imaging.nii.gz: file not found"


@kind("run-experiment")
def empty_data_root(ws):
    shutil.rmtree(ws.data)
    ws.data.mkdir()
    return [ws.config()], "data/kits19: no case folders"


@kind("run-experiment")
def sweep_on_an_empty_data_root(ws):
    shutil.rmtree(ws.data)
    ws.data.mkdir()
    return [ws.config(), "--sweep", "training.learning_rate=0.001,0.002"], "data/kits19: no case folders"


@kind("run-experiment")
def missing_data_root(ws):
    return [ws.config(data={"root": "data/elsewhere"})], "data/elsewhere: data set folder not found"


@kind("run-experiment")
def every_case_excluded(ws):
    return [ws.config(data={"exclude": [0, 1, 2]})], "no kits19 case left to use"


@kind("run-experiment")
def more_folds_than_cases(ws):
    return [ws.config(cross_validation={"folds": 5})], "cross_validation.folds: 5 folds need at least 5 cases"


# --- run-experiment: the config and the run folder ---------------------------------------------


@kind("run-experiment")
def unknown_config_key(ws):
    return [ws.config(training={"epochs": 1, "epochz": 2})], "training.epochz: unknown key"


@kind("run-experiment")
def wrong_type(ws):
    return [ws.config(training={"epochs": "three"})], "training.epochs"


@kind("run-experiment")
def impossible_value_on_the_command_line(ws):
    return [ws.config(), "--set", "training.epochs=0"], "training.epochs"


@kind("run-experiment")
def unknown_nonfinite_policy(ws):
    return [ws.config(), "--set", "training.on_nonfinite=retry"], "training.on_nonfinite"


@kind("run-experiment")
def nonfinite_lr_factor_out_of_range(ws):
    return [ws.config(training={"epochs": 1, "nonfinite_lr_factor": 1.5})], "training.nonfinite_lr_factor"


@kind("run-experiment")
def nonfinite_retries_out_of_range(ws):
    return [ws.config(), "--set", "training.nonfinite_retries=0"], "training.nonfinite_retries"


@kind("run-experiment")
def malformed_set(ws):
    return [ws.config(), "--set", "training.epochs"], "--set 'training.epochs': expected dotted.key=value"


@kind("run-experiment")
def missing_config_file(ws):
    return ["nowhere.yaml"], "nowhere.yaml: cannot read"


@kind("run-experiment")
def invalid_yaml(ws):
    (ws.root / "broken.yaml").write_text("training: {epochs: 1\nloss: [")
    return ["broken.yaml"], "broken.yaml: not valid YAML"


@kind("run-experiment")
def circular_base(ws):
    (ws.root / "loop.yaml").write_text("base: loop.yaml\n")
    return ["loop.yaml"], "loop.yaml: base: circular reference"


@kind("run-experiment")
def unknown_loss(ws):
    return [ws.config(loss={"name": "dyce"})], "loss.name: unknown loss 'dyce'"


@kind("run-experiment")
def unknown_loss_parameter(ws):
    return [ws.config(loss={"name": "focal", "params": {"gama": 2}})], "loss 'focal' has no parameter 'gama'"


@kind("run-experiment")
def batch_pooling_not_a_flag(ws):
    return [ws.config(loss={"name": "dice", "params": {"batch": "yes"}})], "dice: batch must be true or false"


@kind("run-experiment")
def patch_not_divisible(ws):
    return [ws.config(sampling={"patch_shape": [15, 48, 48]})], "sampling.patch_shape"


@kind("run-experiment")
def fold_out_of_range(ws):
    return [ws.config(), "--fold", "7"], "--fold 7: out of range"


@kind("run-experiment")
def run_folder_of_another_config(ws):
    run_dir = ws.root / "runs" / "good"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump({"experiment": {"name": "good"}, "training": {"epochs": 9}}))
    return [ws.config()], "runs/good/config.yaml: this run folder was made with another config"


@kind("run-experiment")
def unreadable_shared_splits(ws):
    (ws.root / "runs").mkdir()
    (ws.root / "runs" / "splits.json").write_text("[{")
    return [ws.config()], "runs/splits.json: not a readable JSON file"


@kind("run-experiment")
def shared_splits_of_another_data_set(ws):
    (ws.root / "runs").mkdir()
    (ws.root / "runs" / "splits.json").write_text(
        '[{"train": ["case_00007"], "val": ["case_00008"]}, {"train": ["case_00008"], "val": ["case_00007"]}]'
    )
    return [ws.config()], "runs/splits.json: lists cases the data set does not have"


@kind("run-experiment")
def shared_splits_with_other_folds(ws):
    (ws.root / "runs").mkdir()
    cases = [f"case_{number:05d}" for number in range(CASES)]
    (ws.root / "runs" / "splits.json").write_text(
        json.dumps([{"train": sorted(set(cases) - {case}), "val": [case]} for case in cases])
    )
    return [ws.config()], "runs/splits.json: has 3 folds, the config asks for 2"


# --- run-experiment on 2D images (BUS2017) ------------------------------------------------------


def _bus2017(ws: Workspace) -> tuple[Path, str]:
    """BUS2017 phantoms and a tiny 2D config pointing at them."""
    from pipeline.data.phantoms import write_bus2017

    root = ws.root / "data" / "bus2017"
    write_bus2017(root, CASES, seed=4, size="demo")
    config = ws.root / "good2d.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "base": str(PROJECT_ROOT / "configs" / "base" / "demo2d.yaml"),
                "experiment": {"name": "good2d", "output_root": "runs"},
                "data": {"root": "data/bus2017"},
                "preprocessing": {"cache_dir": "cache"},
                "loss": {"name": "dice"},
                "training": {"epochs": 1},
                "cross_validation": {"folds": 2, "splits_file": "runs/splits.json"},
            }
        )
    )
    return root, config.name


@kind("run-experiment")
def truncated_png(ws):
    root, config = _bus2017(ws)
    image = root / "original" / "000002.png"
    image.write_bytes(image.read_bytes()[:200])
    return [config], "original/000002.png"


@kind("run-experiment")
def text_file_named_png(ws):
    root, config = _bus2017(ws)
    (root / "GT" / "000001.png").write_text("not an image")
    return [config], "GT/000001.png"


@kind("run-experiment")
def png_mask_of_another_size(ws):
    from pipeline.data.image_files import write_label_png

    root, config = _bus2017(ws)
    write_label_png(root / "GT" / "000003.png", np.zeros((10, 12), bool))
    return [config], "GT/000003.png"


# --- make-phantoms -----------------------------------------------------------------------------


@kind("make-phantoms")
def no_cases(ws):
    return ["kits19", "phantoms", "--cases", "0"], "--cases: must be at least 1"


@kind("make-phantoms")
def output_is_a_file(ws):
    (ws.root / "phantoms").write_text("a file")
    return ["kits19", "phantoms", "--cases", "1"], "phantoms: exists and is not a folder"


# --- compare-losses ----------------------------------------------------------------------------


@kind("compare-losses")
def run_folder_missing(ws):
    return [ws.run_folder("dice", "dice"), "runs/focal", "--out", "results"], "runs/focal"


@kind("compare-losses")
def run_without_metrics(ws):
    focal = ws.run_folder("focal", "focal")
    (Path(focal) / "metrics.csv").unlink()
    return [ws.run_folder("dice", "dice"), focal, "--out", "results"], "focal/metrics.csv: missing"


@kind("compare-losses")
def metrics_out_of_range(ws):
    return [
        ws.run_folder("dice", "dice"),
        ws.run_folder("focal", "focal", scores=1.5),
        "--out",
        "results",
    ], "focal/metrics.csv: line 2: dsc '1.5' is not a number in [0, 1]"


@kind("compare-losses")
def runs_scored_different_cases(ws):
    other = [f"case_{number:05d}" for number in range(1, 6)]
    return [
        ws.run_folder("dice", "dice"),
        ws.run_folder("focal", "focal", cases=other),
        "--out",
        "results",
    ], "case_00005"


@kind("compare-losses")
def out_is_a_file(ws):
    (ws.root / "results").write_text("a file")
    return [
        ws.run_folder("dice", "dice"),
        ws.run_folder("focal", "focal"),
        "--out",
        "results",
    ], "results: --out exists and is not a folder"


@kind("compare-losses")
def unknown_case_to_draw(ws):
    return [
        ws.run_folder("dice", "dice"),
        ws.run_folder("focal", "focal"),
        "--out",
        "results",
        "--cases",
        "case_00099",
    ], "--cases: not scored in the runs: case_00099"


# --- submit-grid -------------------------------------------------------------------------------


def _cluster_env(ws: Workspace, text: str = 'PARTITION=""\nunifocal_setup() { true; }\n') -> str:
    (ws.root / "cluster.env").write_text(text)
    return "cluster.env"


@kind("submit-grid")
def grid_on_an_empty_data_root(ws):
    shutil.rmtree(ws.data)
    ws.data.mkdir()
    return [ws.config(), "--cluster-env", _cluster_env(ws), "--out", "grid"], "data/kits19: no case folders"


@kind("submit-grid")
def grid_on_nan_voxels(ws):
    shape, affine = ws.geometry()
    _write(ws.image(), np.full(shape, np.nan, np.float32), affine)
    return [ws.config(), "--cluster-env", _cluster_env(ws), "--out", "grid", "--dry-run"], "case_00001/imaging.nii.gz: "


@kind("submit-grid")
def grid_with_more_folds_than_cases(ws):
    return [
        ws.config(cross_validation={"folds": 4}),
        "--cluster-env",
        _cluster_env(ws),
        "--out",
        "grid",
    ], "cross_validation.folds: 4 folds need at least 4 cases"


@kind("submit-grid")
def grid_configs_sharing_a_run_folder(ws):
    first = ws.config()
    (ws.root / "copy").mkdir()
    shutil.copy(ws.root / first, ws.root / "copy" / first)
    return [first, f"copy/{first}", "--cluster-env", _cluster_env(ws), "--out", "grid"], "overlaps"


@kind("submit-grid")
def negative_gpu_count(ws):
    return [ws.config(), "--cluster-env", _cluster_env(ws), "--gpus", "-1"], "--gpus: expected a whole number"


@kind("submit-grid")
def missing_cluster_env(ws):
    return [ws.config(), "--cluster-env", "nowhere.env"], "nowhere.env: cluster settings file not found"


@kind("submit-grid")
def cluster_env_with_a_bad_count(ws):
    return [
        ws.config(),
        "--cluster-env",
        _cluster_env(ws, 'GPUS_PER_TASK="two"\n'),
    ], "cluster.env: GPUS_PER_TASK: expected a whole number"


@kind("submit-grid")
def grid_already_submitted(ws):
    (ws.root / "grid").mkdir()
    (ws.root / "grid" / "jobs.json").write_text('{"train": "17"}')
    return [ws.config(), "--cluster-env", _cluster_env(ws), "--out", "grid"], "a grid was already submitted"


@kind("submit-grid")
def status_of_a_folder_without_a_grid(ws):
    (ws.root / "grid").mkdir()
    return ["--status", "grid"], "grid/grid.tsv: cannot read the grid file"


# --- predict ---------------------------------------------------------------------------------


def _finished_run(ws: Workspace) -> str:
    """A run folder with a valid config.yaml (no trained models)."""
    from pipeline.config import load_config

    run_dir = ws.root / "runs" / "good"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(load_config(ws.root / ws.config()).to_yaml())
    return "runs/good"


@kind("predict")
def predict_from_a_missing_run(ws):
    return ["runs/nothing", "-i", "data/kits19", "-o", "predictions"], "runs/nothing: run folder not found"


@kind("predict")
def predict_from_a_folder_without_config(ws):
    (ws.root / "runs" / "empty").mkdir(parents=True)
    return ["runs/empty", "-i", "data/kits19", "-o", "predictions"], "runs/empty/config.yaml: missing"


@kind("predict")
def predict_with_a_fold_out_of_range(ws):
    return [_finished_run(ws), "-i", "data/kits19", "-o", "predictions", "--folds", "5"], "--folds 5: out of range"


@kind("predict")
def predict_with_an_untrained_fold(ws):
    return [_finished_run(ws), "-i", "data/kits19", "-o", "predictions"], "best_model.h5: missing"


# --- evaluate --------------------------------------------------------------------------------


def _predictions(ws: Workspace, broken: Callable[[Path], None] | None = None) -> str:
    """Label maps of every case (copies of the references), one broken by ``broken(path)``."""
    folder = ws.root / "predictions"
    folder.mkdir()
    for number in range(CASES):
        shutil.copy(ws.mask(number), folder / f"case_{number:05d}.nii.gz")
    if broken is not None:
        broken(folder / "case_00001.nii.gz")
    return "predictions"


@kind("evaluate")
def evaluate_a_missing_folder(ws):
    return ["nowhere", "data/kits19"], "nowhere: folder not found"


@kind("evaluate")
def evaluate_without_a_reference(ws):
    predictions = _predictions(ws)
    shutil.rmtree(ws.case(2))
    return [predictions, "data/kits19"], "missing reference of case case_00002"


@kind("evaluate")
def evaluate_a_prediction_of_another_shape(ws):
    shape, affine = ws.geometry()
    return [
        _predictions(ws, lambda path: _write(path, np.zeros((shape[0] - 1, *shape[1:]), np.uint8), affine)),
        "data/kits19",
    ], "predictions/case_00001.nii.gz: shape"


@kind("evaluate")
def evaluate_a_prediction_with_another_affine(ws):
    shape, affine = ws.geometry()
    moved = affine.copy()
    moved[1, 3] += 7.0
    return [
        _predictions(ws, lambda path: _write(path, np.zeros(shape, np.uint8), moved)),
        "data/kits19",
    ], "predictions/case_00001.nii.gz: affine differs"


@kind("evaluate")
def evaluate_a_text_file_named_nii_gz(ws):
    return [
        _predictions(ws, lambda path: path.write_text("no label map")),
        "data/kits19",
    ], "predictions/case_00001.nii.gz"


@kind("evaluate")
def evaluate_a_label_beyond_the_classes(ws):
    _, affine = ws.geometry()
    return [
        _predictions(ws, lambda path: _write(path, _mask_like(ws, 5), affine)),
        "data/kits19",
        "--classes",
        "kidney",
        "tumour",
    ], "predictions/case_00001.nii.gz: label 5"


@kind("evaluate")
def evaluate_a_negative_label(ws):
    _, affine = ws.geometry()
    return [
        _predictions(ws, lambda path: _write(path, _mask_like(ws, -2, np.int16), affine)),
        "data/kits19",
    ], "predictions/case_00001.nii.gz: label map holds a negative label"


@kind("evaluate")
def evaluate_into_a_folder(ws):
    (ws.root / "scores").mkdir()
    return [_predictions(ws), "data/kits19", "--out", "scores"], "scores: --out is a folder"


@kind("evaluate")
def evaluate_with_malformed_regions(ws):
    return [_predictions(ws), "data/kits19", "--regions", "kidney+tumour"], "--regions 'kidney+tumour'"


# --- the checks --------------------------------------------------------------------------------


def _main(command: str):
    if command == "run-experiment":
        from pipeline.runner_cli import main
    elif command == "make-phantoms":
        from pipeline.data.phantoms import main
    elif command == "compare-losses":
        from pipeline.evaluation.compare import main
    elif command == "predict":
        from pipeline.inference.predict import main
    elif command == "evaluate":
        from pipeline.evaluation.evaluate import main
    else:
        from pipeline.batch.submit import main
    return main


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root`` with its size and modification time."""
    return {
        str(path.relative_to(root)): (
            path.is_dir(),
            path.stat().st_size if path.is_file() else 0,
            path.stat().st_mtime_ns,
        )
        for path in root.rglob("*")
    }


@pytest.fixture(scope="module")
def good_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("good") / "kits19"
    write_kits19(root, CASES, seed=3, size="demo")
    return root


@pytest.fixture
def workspace(tmp_path, good_data, monkeypatch) -> Workspace:
    shutil.copytree(good_data, tmp_path / "data" / "kits19")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SLURM_CONF", str(tmp_path / "no-slurm.conf"))  # nothing may reach a real cluster
    return Workspace(tmp_path)


def test_the_corpus_is_large_enough():
    assert len(KINDS) >= 36
    assert {kind.command for kind in KINDS} == {
        "run-experiment",
        "make-phantoms",
        "compare-losses",
        "submit-grid",
        "predict",
        "evaluate",
    }


@pytest.mark.parametrize("kind", KINDS, ids=[f"{kind.command}:{kind.name}" for kind in KINDS])
def test_bad_input_exits_2_with_one_line_and_writes_nothing(kind, workspace, capsys):
    argv, culprit = kind.build(workspace)
    capsys.readouterr()
    before = snapshot(workspace.root)

    with pytest.raises(SystemExit) as exited:
        _main(kind.command)(argv)

    error = capsys.readouterr().err
    assert exited.value.code == 2, error
    lines = [line for line in error.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), error
    assert culprit in lines[0]
    assert snapshot(workspace.root) == before


#: TensorFlow's C++ start-up notices (absl logging, printed on import whatever TF_CPP_MIN_LOG_LEVEL says).
TENSORFLOW_LOG = re.compile(r"[IWEF]\d{4} [\d:.]+ +\d+ \S+:\d+\]|WARNING: All log messages before absl")
SUBPROCESS_KINDS = [
    "truncated_image",
    "no_cases",
    "run_without_metrics",
    "grid_on_an_empty_data_root",
    "evaluate_a_prediction_of_another_shape",
]


@pytest.mark.slow
@pytest.mark.parametrize("name", SUBPROCESS_KINDS)
def test_the_console_scripts_print_no_traceback(name, workspace):
    kind = next(kind for kind in KINDS if kind.name == name)
    argv, culprit = kind.build(workspace)
    before = snapshot(workspace.root)
    completed = subprocess.run(
        [str(BIN / kind.command), *argv], capture_output=True, text=True, cwd=workspace.root, timeout=600, check=False
    )
    assert completed.returncode == 2, completed.stderr
    lines = [line for line in completed.stderr.splitlines() if line.strip() and not TENSORFLOW_LOG.match(line)]
    assert len(lines) == 1 and culprit in lines[0] and "Traceback" not in completed.stderr, completed.stderr
    assert snapshot(workspace.root) == before
