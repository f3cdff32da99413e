"""The TF-free loss catalog agrees with the loss classes, the one source of truth."""

import inspect
import math
import subprocess
import sys

import pytest

import losses
from losses import catalog
from losses.registry import _REGISTRY


def class_parameters(name):
    losses.names()  # imports every loss module, so the registry is complete whatever ran before in this process
    signature = inspect.signature(_REGISTRY[name].__init__)
    return {
        key: parameter.default
        for key, parameter in signature.parameters.items()
        if key not in ("self", "name", "reduction")
    }


def class_accepts(name, **params):
    try:
        losses.get(name, **params)
    except ValueError:
        return False
    return True


def catalog_accepts(name, **params):
    try:
        catalog.check(name, params)
    except ValueError:
        return False
    return True


def probe_values(parameter):
    """Values on, inside and outside the documented range, plus non-numbers."""
    if parameter.kind == "class_indices":
        return [None, [1], [1, 2], [0, 3], [-1], [1.5], "1", [True], 2]
    if parameter.kind == "flag":
        return [False, True, 0, 1, "true", "false", None, 0.0]
    if parameter.kind == "class_weights":
        return [None, [1.0, 2.0], [0.0, 1.0], [-0.5, 1.0], ["a"], "ab", 3.0]
    low, high = parameter.low, parameter.high
    values = [low, low - 1e-3, low + 1e-3, True, "0.5", math.nan, None]
    values += [high, high + 1e-3, high - 1e-3] if math.isfinite(high) else [1e6]
    return values


def test_catalog_lists_every_registered_loss():
    assert catalog.names() == losses.names()


@pytest.mark.parametrize("name", catalog.names())
def test_parameters_and_defaults_match_the_class(name):
    entry = catalog.entry(name)
    assert entry.defaults() == class_parameters(name)
    assert entry.parameter_names() == list(class_parameters(name))  # same order as the constructor
    assert entry.reference and entry.summary


@pytest.mark.parametrize("name", catalog.names())
def test_catalog_and_class_accept_the_same_values(name):
    for parameter in catalog.entry(name).parameters:
        for value in probe_values(parameter):
            expected = class_accepts(name, **{parameter.name: value})
            assert catalog_accepts(name, **{parameter.name: value}) == expected, (parameter.name, value)
        assert catalog_accepts(name, **{parameter.name: parameter.default})


def test_out_of_range_messages_name_loss_and_parameter():
    with pytest.raises(ValueError, match=r"tversky: delta must be in \[0, 1\], got 1.5"):
        catalog.check("tversky", {"delta": 1.5})
    with pytest.raises(ValueError, match=r"dice: smooth must be in \(0, inf\)"):
        catalog.check("dice", {"smooth": 0.0})
    with pytest.raises(ValueError, match=r"loss 'dice' has no parameter 'delta'; valid parameters: smooth"):
        catalog.check("dice", {"delta": 0.5})
    with pytest.raises(ValueError, match="unknown loss 'dices'; choose one of: "):
        catalog.check("dices", {})


def test_catalog_describes_parameters_for_people_and_json():
    entry = catalog.entry("asymmetric_unified_focal")
    assert entry.parameters[1].describe().startswith("delta = 0.6 in [0, 1]:")
    assert "2022" in entry.reference
    listed = {loss["name"]: loss for loss in catalog.as_json()}
    assert listed["topk"]["parameters"][0] == {
        "name": "k",
        "default": 10.0,
        "kind": "number",
        "range": "(0, 100]",
        "meaning": "percentage of the voxels kept",
    }


def test_importing_the_catalog_does_not_load_tensorflow():
    code = "import sys, losses.catalog; print('tensorflow' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_every_loss_has_one_family():
    members = [name for names in catalog.FAMILIES.values() for name in names]
    assert sorted(members) == catalog.names()  # each loss once
    assert catalog.family("dice") == "region-based"
    with pytest.raises(ValueError, match="unknown loss"):
        catalog.family("dise")


@pytest.mark.parametrize("name", catalog.names())
def test_family_agrees_with_what_the_class_reads(name):
    """Region-based losses read per-class sums only, distribution-based ones p_t only; region and compound take batch."""
    losses.names()  # registers every class
    family, cls = catalog.family(name), _REGISTRY[name]
    if not cls.reads_voxels:
        assert family == "region-based"
    if not cls.reads_classes:
        assert family == "distribution-based"
    takes_batch = "batch" in class_parameters(name)
    assert takes_batch == (family in ("region-based", "compound"))
