"""The ranking losses sort on the host (NumPy) on CPUs and in the graph (top_k) on GPUs and under XLA.

Both paths must give the same values and gradients; the reference values
themselves (Berman's Lovász port, the TopK mean) are checked in
test_losses_taxonomy.py.
"""

import numpy as np
import pytest
import tensorflow as tf

import losses
import losses.lovasz_softmax
import losses.topk
from losses.placement import on_host
from losses.sorting import kth_largest, lovasz_weights


def value_and_gradient(name, y_true, y_pred, host: bool, monkeypatch, **params):
    module = {"lovasz_softmax": losses.lovasz_softmax, "topk": losses.topk}[name]
    monkeypatch.setattr(module, "on_host", lambda: host)
    loss = losses.get(name, **params)
    y_pred = tf.constant(y_pred, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(y_pred)
        value = loss.call(tf.constant(y_true, tf.float32), y_pred)
    return value.numpy(), tape.gradient(value, y_pred).numpy()


def batch(shape, seed, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, shape[-1], shape[:-1])
    logits = rng.normal(size=shape)
    if ties:  # few distinct values: many voxels share the k-th largest cross entropy
        logits = np.round(logits)
    probabilities = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    return np.eye(shape[-1])[labels], probabilities


@pytest.mark.parametrize(
    "shape", [(2, 9, 11, 2), (3, 12, 10, 3), (2, 4, 6, 5, 2), (2, 5, 6, 7, 3)], ids=["2d-c2", "2d-c3", "3d-c2", "3d-c3"]
)
@pytest.mark.parametrize(
    "name, params, ties", [("lovasz_softmax", {}, False), ("topk", {}, False), ("topk", {"k": 37.5}, True)]
)
def test_host_and_graph_sorting_agree(name, params, ties, shape, monkeypatch):
    y_true, y_pred = batch(shape, seed=len(shape) + shape[-1], ties=ties)
    host_value, host_gradient = value_and_gradient(name, y_true, y_pred, True, monkeypatch, **params)
    graph_value, graph_gradient = value_and_gradient(name, y_true, y_pred, False, monkeypatch, **params)
    np.testing.assert_allclose(host_value, graph_value, rtol=1e-6)
    if ties:  # top_k picks some of the tied voxels, the host path shares their weight: same value
        np.testing.assert_allclose(host_gradient.sum(), graph_gradient.sum(), rtol=1e-5)
    else:
        np.testing.assert_allclose(host_gradient, graph_gradient, atol=1e-7)


def test_lovasz_weights_by_hand():
    # errors 0.9 (bg), 0.8 (fg), 0.3 (bg); ground truth sum G = 1.
    # J_k = 1 - (G - cumsum g) / (G + cumsum (1 - g)): 1/2, 1, 1; gradient 1/2, 1/2, 0.
    errors = np.array([[[0.3], [0.9], [0.8]]], np.float32)
    truth = np.array([[[0.0], [0.0], [1.0]]], np.float32)
    np.testing.assert_allclose(lovasz_weights(truth, errors)[0, :, 0], [0.0, 1 / 2, 1 / 2], rtol=1e-6)


def test_kth_largest_is_the_kth_value_of_the_sorted_row():
    values = np.random.default_rng(1).random((3, 50)).astype(np.float32)
    for kept in (1, 7, 50):
        np.testing.assert_array_equal(kth_largest(values, kept)[:, 0], np.sort(values, -1)[:, -kept])


def test_the_graph_path_is_chosen_under_xla():
    seen = []

    @tf.function(jit_compile=True)
    def traced(x):
        seen.append(on_host())
        return x + 1

    traced(tf.constant(1.0))
    assert seen == [False]
    assert on_host() == (not tf.config.list_logical_devices("GPU"))


@pytest.mark.parametrize("name", ["lovasz_softmax", "topk"])
def test_ranking_losses_compile_with_xla(name):
    y_true, y_pred = batch((2, 6, 8, 3), seed=4)
    loss = losses.get(name)
    eager = loss(tf.constant(y_true, tf.float32), tf.constant(y_pred, tf.float32))
    compiled = tf.function(lambda t, p: loss(t, p), jit_compile=True)(
        tf.constant(y_true, tf.float32), tf.constant(y_pred, tf.float32)
    )
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), rtol=1e-5)
