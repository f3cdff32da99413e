"""compare-losses figures: radiological orientation for any affine, slice choice, curves, file names."""

import numpy as np
import pytest
from matplotlib.ticker import MaxNLocator

from pipeline.evaluation.compare import case_figure_name
from pipeline.evaluation.figures import (
    radiological_axial_slices,
    radiological_pixel_aspect,
    slice_to_show,
    training_curves_figure,
)
from pipeline.evaluation.runs import load_runs

X, Y, Z = 5, 6, 7
RAS = np.arange(X * Y * Z).reshape(X, Y, Z)  # value = voxel id, array axes = world x (to the right), y, z


def test_identity_affine_puts_the_patients_right_and_anterior_top_left():
    slices = radiological_axial_slices(RAS, np.eye(4))
    assert slices.shape == (Z, Y, X)
    for k in range(Z):
        assert slices[k, 0, 0] == RAS[X - 1, Y - 1, k]  # right-most, most anterior voxel: top left
        assert slices[k, -1, -1] == RAS[0, 0, k]  # left-most, most posterior: bottom right
        assert slices[k, 0, -1] == RAS[0, Y - 1, k]  # patient's left, anterior: top right


@pytest.mark.parametrize(
    "layout, array, affine",
    [
        # KiTS19: (slices, H, W), every axis reversed (codes I, P, L).
        (
            "kits19",
            RAS[::-1, ::-1, ::-1].transpose(2, 1, 0),
            np.array([[0, 0, -1, X - 1], [0, -1, 0, Y - 1], [-1, 0, 0, Z - 1], [0, 0, 0, 1]], float),
        ),
        # BraTS20: (x, y, z) in LPS.
        (
            "brats20",
            RAS[::-1, ::-1, :],
            np.array([[-1, 0, 0, X - 1], [0, -1, 0, Y - 1], [0, 0, 1, 0], [0, 0, 0, 1]], float),
        ),
        # Sagittal-first storage (y, z, x), slightly oblique.
        (
            "oblique",
            RAS.transpose(1, 2, 0),
            np.array([[0, 0, 1, 0], [1, 0, 0.1, 0], [0, 1, 0, 0], [0, 0, 0, 1]], float),
        ),
    ],
)
def test_every_affine_gives_the_same_radiological_slices(layout, array, affine):
    np.testing.assert_array_equal(radiological_axial_slices(array, affine), radiological_axial_slices(RAS, np.eye(4)))


def test_channels_are_kept_and_pixel_aspect_follows_the_spacing():
    image = np.stack([RAS, -RAS], axis=-1)
    assert radiological_axial_slices(image, np.eye(4)).shape == (Z, Y, X, 2)
    assert radiological_pixel_aspect(np.diag([0.8, 2.0, 3.0, 1.0])) == pytest.approx(2.5)
    kits = np.array([[0, 0, -0.7, 0], [0, -0.8, 0, 0], [-3.0, 0, 0, 0], [0, 0, 0, 1]])
    assert radiological_pixel_aspect(kits) == pytest.approx(0.8 / 0.7)


def test_slice_choice_for_present_absent_and_unpredicted_classes():
    truth = np.zeros((6, 8, 8), bool)
    truth[2, 1:3, 1:3] = True
    truth[4, 1:5, 1:5] = True
    nothing = np.zeros_like(truth)
    assert slice_to_show(truth, [nothing]) == (4, "most ground truth")
    first, second = nothing.copy(), nothing.copy()
    first[1, :2, :2] = True  # 4 false positives on slice 1
    second[3, :3, :1] = True  # 3 on slice 3
    second[1, 7, 7] = True  # and 1 more on slice 1: 5 there in all
    assert slice_to_show(nothing, [first, second]) == (1, "absent; most false positives")
    assert slice_to_show(nothing, [nothing, nothing]) == (3, "absent, not predicted; middle")


def test_case_figure_names_do_not_double_the_prefix():
    assert case_figure_name("case_00018") == "case_00018.png"
    assert case_figure_name("BraTS20_Training_001") == "case_BraTS20_Training_001.png"
    assert case_figure_name("a b") == "case_a_b.png"


def test_training_curves_have_integer_epoch_ticks_and_the_legend_outside(tmp_path):
    from test_compare_outputs import FIXTURE_SCORES, write_run

    runs = load_runs([write_run(tmp_path, f"kits19_{loss}", loss, scores) for loss, scores in FIXTURE_SCORES.items()])
    figure = training_curves_figure(runs)
    panels = [axes for axes in figure.axes if axes.get_title()]
    assert len(panels) == 3 and all(axes.get_legend() is None for axes in panels)
    for axes in panels:
        locator = axes.xaxis.get_major_locator()
        assert isinstance(locator, MaxNLocator) and locator._integer
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["fold 0", "fold 1", "loss", "val_loss"]
