"""The paper configs follow the papers' equations: Combo = CE − DSC, the Unified Focal headline experiment."""

from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import losses
from pipeline.config import load_config

ROOT = Path(__file__).resolve().parents[1]
EPS = 1e-7


def build_loss(section):
    return losses.get(section.name, **section.params)


def random_batch(shape, seed):
    rng = np.random.default_rng(seed)
    y_true = np.eye(shape[-1])[rng.integers(0, shape[-1], shape[:-1])]
    logits = rng.normal(size=shape) * 2.0
    return y_true, np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)


def paper_combo(y_true, y_pred, smooth=1e-6):
    """Mixed Focal paper Eq. 18, L_CCE − DSC, per sample; DSC the soft Dice averaged over the classes."""
    axes = tuple(range(1, y_true.ndim - 1))
    cross_entropy = -(y_true * np.log(np.clip(y_pred, EPS, 1 - EPS))).sum(-1).reshape(len(y_true), -1).mean(-1)
    tp = (y_true * y_pred).sum(axes)
    fn = (y_true * (1 - y_pred)).sum(axes)
    fp = ((1 - y_true) * y_pred).sum(axes)
    dice = ((2 * tp + 2 * smooth) / (2 * tp + fn + fp + 2 * smooth)).mean(-1)
    return cross_entropy - dice


@pytest.mark.parametrize("config", ["configs/kits19_combo.yaml", "configs/brats20_combo.yaml"])
@pytest.mark.parametrize("shape", [(2, 6, 7, 2), (2, 4, 5, 6, 3)])
def test_combo_configs_are_ce_minus_dsc_up_to_the_documented_factor_three(config, shape):
    loss = build_loss(load_config(ROOT / config).loss)
    for seed in range(3):
        y_true, y_pred = random_batch(shape, seed)
        ours = float(loss(tf.constant(y_true, tf.float32), tf.constant(y_pred, tf.float32)))
        assert 3 * ours == pytest.approx(paper_combo(y_true, y_pred).mean(), rel=1e-5, abs=1e-6)


def test_the_old_combo_parameters_were_not_equal_weights():
    """alpha = beta = 0.5 gives CE/4 − DSC/2: a CE : DSC weighting of 1 : 2, not the paper's 1 : 1."""
    y_true, y_pred = random_batch((2, 6, 7, 3), 0)
    old = build_loss(load_config(ROOT / "configs/kits19_combo.yaml", ["loss.params.alpha=0.5"]).loss)
    value = float(old(tf.constant(y_true, tf.float32), tf.constant(y_pred, tf.float32)))
    assert 3 * value != pytest.approx(paper_combo(y_true, y_pred).mean(), rel=1e-3)


@pytest.mark.parametrize("dataset", ["kits19", "brats20", "bus2017"])
def test_unified_configs_are_the_headline_experiment(dataset):
    config = load_config(ROOT / f"configs/{dataset}_unified.yaml")
    assert config.loss.name == "asymmetric_unified_focal"
    assert config.loss.params == {"weight": 0.5, "delta": 0.6, "gamma": 0.5}
    assert config.model.deep_supervision is True
    assert config.data.dataset == dataset and config.experiment.name == f"{dataset}_unified"


@pytest.mark.parametrize(
    "path",
    sorted((ROOT / "configs").glob("*_focal_tversky.yaml")) + sorted((ROOT / "configs").glob("*_mixed_focal.yaml")),
)
def test_focal_tversky_exponent_convention_is_declared(path):
    text = path.read_text()
    assert "0.75 = 1/(4/3)" in text and load_config(path).loss.params["gamma"] == 0.75


@pytest.mark.slow
def test_unified_config_runs_on_phantoms_from_the_command_line(tmp_path, monkeypatch):
    """What a fresh clone does first: run-experiment configs/kits19_unified.yaml --set ... on phantoms."""
    import yaml

    from pipeline.data.phantoms import write_kits19
    from pipeline.runner_cli import main

    write_kits19(tmp_path / "kits19", 4, seed=2, size="demo")
    monkeypatch.chdir(ROOT)
    sets = [
        f"data.root={tmp_path / 'kits19'}",
        "data.exclude=[]",
        f"experiment.output_root={tmp_path / 'runs'}",
        f"preprocessing.cache_dir={tmp_path / 'cache'}",
        "cross_validation.splits_file=null",
        "cross_validation.folds=2",
        "preprocessing.target_spacing=[6.0, 6.0, 6.0]",
        "sampling.patch_shape=[8, 32, 32]",
        "sampling.batches_per_epoch=1",
        "sampling.val_batches=1",
        "model.n_filters=2",
        "model.depth=3",
        "training.epochs=1",
        "inference.overlap=[4, 16, 16]",
    ]
    assert main(["configs/kits19_unified.yaml", "--fold", "0", *(arg for s in sets for arg in ("--set", s))]) == 0
    run_dir = tmp_path / "runs" / "kits19_unified"
    assert (run_dir / "fold_0" / "done.json").is_file()
    written = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert written["model"]["deep_supervision"] is True and written["loss"]["name"] == "asymmetric_unified_focal"


def nnunet_dice_ce(y_true, y_pred, smooth=1e-6):
    """Soft Dice with TP, FN, FP summed over batch and space (nnU-Net's batch Dice) + per-sample CE, batch mean."""
    axes = tuple(range(y_true.ndim - 1))
    tp = (y_true * y_pred).sum(axes)
    fn = (y_true * (1 - y_pred)).sum(axes)
    fp = ((1 - y_true) * y_pred).sum(axes)
    dice_loss = (1 - (tp + smooth) / (tp + 0.5 * fn + 0.5 * fp + smooth)).mean()
    cross_entropy = -(y_true * np.log(np.clip(y_pred, EPS, 1 - EPS))).sum(-1).mean()
    return dice_loss + cross_entropy


DATASETS = sorted(path.stem for path in (ROOT / "configs/base").glob("*.yaml") if not path.stem.startswith("demo"))


def test_every_data_set_has_the_nnunet_baseline():
    assert {"kits19", "brats20", "bus2017", "cvc", "drive"} <= set(DATASETS)
    shipped = sorted(
        path.name for path in (ROOT / "configs").glob("*_nnunet_baseline.yaml") if not path.name.startswith("demo")
    )
    assert shipped == [f"{dataset}_nnunet_baseline.yaml" for dataset in DATASETS]


def test_the_demos_baseline_is_the_demo_dice_with_dice_ce():
    """make demo's Dice baseline differs from configs/demo_dice.yaml in the loss alone (batch Dice + CE)."""
    baseline = load_config(ROOT / "configs/demo_nnunet_baseline.yaml")
    dice = load_config(ROOT / "configs/demo_dice.yaml")
    assert baseline.loss.name == "dice_ce" and baseline.loss.params == {"batch": True}
    assert baseline.model_copy(update={"loss": dice.loss, "experiment": dice.experiment}) == dice


@pytest.mark.parametrize("dataset", DATASETS)
def test_nnunet_baseline_is_dice_ce_with_batch_dice(dataset):
    config = load_config(ROOT / f"configs/{dataset}_nnunet_baseline.yaml")
    base = load_config(ROOT / f"configs/{dataset}_dice.yaml")
    assert config.experiment.name == f"{dataset}_nnunet_baseline"
    assert config.data == base.data and config.model == base.model and config.training == base.training
    shape = (3, 6, 7, 2) if len(config.sampling.patch_shape) == 2 else (3, 4, 5, 6, 3)
    y_true, y_pred = random_batch(shape, seed=7)
    y_true[0] = np.eye(shape[-1])[0]  # one patch without foreground: pooled and per-sample Dice differ there
    ours = float(build_loss(config.loss)(tf.constant(y_true, tf.float32), tf.constant(y_pred, tf.float32)))
    assert ours == pytest.approx(nnunet_dice_ce(y_true, y_pred), rel=1e-5, abs=1e-6)
