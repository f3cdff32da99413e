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


@pytest.mark.parametrize("dataset", ["kits19", "brats20"])
def test_unified_configs_are_the_headline_experiment(dataset):
    config = load_config(ROOT / f"configs/{dataset}_unified.yaml")
    assert config.loss.name == "asymmetric_unified_focal"
    assert config.loss.params == {"weight": 0.5, "delta": 0.6, "gamma": 0.5}
    assert config.model.deep_supervision is True
    assert config.data.dataset == dataset and config.experiment.name == f"{dataset}_unified"


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*_focal_tversky.yaml"))
                         + sorted((ROOT / "configs").glob("*_mixed_focal.yaml")))
def test_focal_tversky_exponent_convention_is_declared(path):
    text = path.read_text()
    assert "0.75 = 1/(4/3)" in text and load_config(path).loss.params["gamma"] == 0.75
