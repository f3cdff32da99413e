"""What every loss is called, which hyperparameters it takes and where it comes from, without TensorFlow.

Validating a config or listing the losses must not wait for TensorFlow to load
(tens of seconds on a busy machine), so this module imports nothing heavy.
The loss classes stay the one source of truth: ``tests/test_losses_catalog.py``
checks every entry here against the registered class (constructor names and
defaults, and that out-of-range values are rejected by both).

    from losses import catalog
    catalog.names()                                    # every loss, sorted
    catalog.check("tversky", {"delta": 0.8})           # ValueError naming the problem
    catalog.entry("tversky").parameters[0].describe()  # 'delta = 0.7 in [0, 1]: ...'
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Literal

Kind = Literal["number", "class_indices", "class_weights", "flag"]
Family = Literal["distribution-based", "region-based", "boundary-based", "compound"]


@dataclass(frozen=True)
class Parameter:
    """One hyperparameter: its default and the values the loss accepts.

    ``kind``: "number" (a real number in the range), "class_indices" (``None``
    or a list of non-negative class indices), "class_weights" (``None`` or a
    list of numbers in the range, one per class) or "flag" (true or false).
    """

    name: str
    default: Any
    meaning: str
    kind: Kind = "number"
    low: float = 0.0
    high: float = math.inf
    low_open: bool = False

    def range_text(self) -> str:
        """``[0, 1]``, ``(0, inf)``, ``list of class indices``..."""
        interval = (
            f"{'(' if self.low_open else '['}{_number(self.low)}, "
            f"{_number(self.high)}{')' if math.isinf(self.high) else ']'}"
        )
        if self.kind == "flag":
            return "true or false"
        if self.kind == "class_indices":
            return "[class, ...] or null"
        if self.kind == "class_weights":
            return f"[weight per class in {interval}, ...] or null"
        return interval

    def describe(self) -> str:
        return f"{self.name} = {self.default!r} in {self.range_text()}: {self.meaning}"

    def check(self, loss: str, value) -> None:
        """Raise ``ValueError`` naming the loss and parameter if ``value`` is not accepted."""
        if self.kind == "flag":
            if not isinstance(value, bool):
                raise ValueError(f"{loss}: {self.name} must be true or false, got {value!r}")
            return
        if self.kind == "class_indices":
            if value is None:
                return
            if (
                isinstance(value, (str, bytes))
                or not hasattr(value, "__iter__")
                or not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0 for c in value)
            ):
                raise ValueError(f"{loss}: {self.name} must be a list of non-negative class indices, got {value!r}")
            return
        if self.kind == "class_weights":
            if value is None:
                return
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise ValueError(f"{loss}: {self.name} must be a list of numbers, got {value!r}")
            for weight in value:
                self._check_number(loss, weight)
            return
        self._check_number(loss, value)

    def _check_number(self, loss: str, value) -> None:
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or math.isnan(value):
            raise ValueError(f"{loss}: {self.name} must be a number, got {value!r}")
        too_low = value <= self.low if self.low_open else value < self.low
        if too_low or value > self.high:
            raise ValueError(f"{loss}: {self.name} must be in {self.range_text()}, got {value!r}")


@dataclass(frozen=True)
class Loss:
    """A registered loss: ``losses.get(name, **params)`` builds it."""

    name: str
    summary: str
    reference: str
    parameters: tuple[Parameter, ...] = ()

    def parameter_names(self) -> list[str]:
        return [parameter.name for parameter in self.parameters]

    def defaults(self) -> dict[str, Any]:
        return {parameter.name: parameter.default for parameter in self.parameters}


def _number(value: float) -> str:
    return "inf" if math.isinf(value) else f"{value:g}"


# Shared parameters, as the loss classes define them (losses/base.py's checks).
def _smooth(default: float, meaning: str = "s, keeps the index of an absent class finite") -> Parameter:
    return Parameter("smooth", default, meaning, low_open=True)


def _smooth_non_negative(default: float, meaning: str) -> Parameter:
    return Parameter("smooth", default, meaning)


def _probability(name: str, default: float, meaning: str) -> Parameter:
    return Parameter(name, default, meaning, high=1.0)


_RARE = Parameter(
    "rare_classes", None, "classes treated as rare (foreground); null: every class but 0", kind="class_indices"
)
# Batch pooling of the region terms (losses/base.py pooled_over_batch); its meaning per loss is in the loss's docstring.
_BATCH = Parameter(
    "batch",
    False,
    "sum TP/FP/FN over the batch before the index (nnU-Net batch Dice, MONAI "
    "batch=True); false: per sample, as the papers",
    kind="flag",
)
_BATCH_REGION_PART = Parameter(
    "batch",
    False,
    "pool the region part over the batch (TP/FP/FN summed over batch and space before its index); false: per sample",
    kind="flag",
)
_CLASS_WEIGHTS = Parameter(
    "class_weights", None, "one weight per class; null: from the class frequencies", kind="class_weights"
)

_MIXED_FOCAL_PAPER = (
    'Yeung, Sala, Schonlieb & Rundo, "A mixed focal loss function for handling class '
    'imbalanced medical image segmentation", arXiv:2102.04525 (2021)'
)
_UNIFIED_FOCAL_PAPER = (
    'Yeung, Sala, Schonlieb & Rundo, "Unified Focal loss: generalising Dice and cross '
    'entropy-based losses to handle class imbalanced medical image segmentation", '
    "Computerized Medical Imaging and Graphics 95:102026 (2022)"
)
_NNUNET = (
    'Isensee et al., "nnU-Net: self-adapting framework for U-Net-based medical image segmentation", '
    "arXiv:1809.10486 (2018)"
)

# The Unified Focal family's shared parameters (losses/unified_focal.py).
_UNIFIED_FOCAL = (
    _probability("weight", 0.5, "lambda, weight of the focal part"),
    _probability("delta", 0.6, "weight of the rare classes / of false negatives"),
    _probability("gamma", 0.5, "focal parameter of both parts"),
    _smooth(1e-6),
    _RARE,
    _BATCH_REGION_PART,
)
_FOCAL_PART = (
    _probability("delta", 0.7, "weight of the rare classes (background: 1 - delta)"),
    Parameter("gamma", 2.0, "focusing exponent"),
    _RARE,
)
_FOCAL_TVERSKY_PART = (
    _probability("delta", 0.7, "weight of false negatives"),
    _probability("gamma", 0.75, "focal parameter (exponent 1 - gamma)"),
    _smooth(1e-6),
)

_LOSSES = (
    # The Unified Focal family (Yeung et al. 2021, 2022).
    Loss(
        "asymmetric_unified_focal",
        "asymmetric focal + asymmetric focal Tversky (the paper's recommended loss)",
        _UNIFIED_FOCAL_PAPER,
        _UNIFIED_FOCAL,
    ),
    Loss("symmetric_unified_focal", "symmetric focal + symmetric focal Tversky", _UNIFIED_FOCAL_PAPER, _UNIFIED_FOCAL),
    Loss("asymmetric_focal", "focal loss modulating the background only", _UNIFIED_FOCAL_PAPER, _FOCAL_PART),
    Loss("symmetric_focal", "focal loss modulating every class", _UNIFIED_FOCAL_PAPER, _FOCAL_PART),
    Loss(
        "asymmetric_focal_tversky",
        "Tversky loss, rare classes raised to 1 - gamma",
        _UNIFIED_FOCAL_PAPER,
        (*_FOCAL_TVERSKY_PART, _RARE, _BATCH),
    ),
    Loss(
        "symmetric_focal_tversky",
        "Tversky loss, every class raised to 1 - gamma",
        _UNIFIED_FOCAL_PAPER,
        (*_FOCAL_TVERSKY_PART, _BATCH),
    ),
    Loss(
        "mixed_focal",
        "categorical focal + focal Tversky",
        _MIXED_FOCAL_PAPER,
        (
            _probability("weight", 0.5, "weight of the focal part"),
            Parameter("alpha", 0.25, "the focal part's class weight"),
            Parameter("focal_gamma", 2.0, "the focal part's focusing exponent"),
            _probability("delta", 0.7, "the focal Tversky part's weight of false negatives"),
            Parameter("gamma", 0.75, "the focal Tversky part's exponent"),
            _smooth(1e-6),
            _BATCH_REGION_PART,
        ),
    ),
    Loss(
        "focal",
        "categorical focal loss",
        'Lin, Goyal, Girshick, He & Dollar, "Focal loss for dense object detection", ICCV 2017',
        (Parameter("alpha", 0.25, "weight of every class's term"), Parameter("gamma", 2.0, "focusing exponent")),
    ),
    Loss(
        "focal_tversky",
        "Tversky loss raised to gamma",
        'Abraham & Khan, "A novel focal Tversky loss function with improved attention U-Net for lesion '
        'segmentation", ISBI 2019',
        (
            _probability("delta", 0.7, "weight of false negatives"),
            Parameter("gamma", 0.75, "the exponent (1: the Tversky loss)"),
            _smooth(1e-6),
            _BATCH,
        ),
    ),
    Loss(
        "cosine_tversky",
        "cos(pi/2 mTI) raised to gamma",
        _MIXED_FOCAL_PAPER,
        (
            _probability("delta", 0.7, "weight of false negatives"),
            Parameter("gamma", 1.0, "the exponent"),
            _smooth(1e-6),
            _BATCH,
        ),
    ),
    Loss(
        "combo",
        "weighted cross entropy minus Dice",
        'Taghanaki et al., "Combo loss: handling input and output imbalance in multi-organ segmentation", '
        "Computerized Medical Imaging and Graphics 75:24-33 (2019)",
        (
            _probability("alpha", 0.5, "weight of the cross-entropy term"),
            _probability("beta", 0.5, "weight of the rare classes in the cross entropy"),
            _smooth(1e-6),
            _RARE,
            _BATCH_REGION_PART,
        ),
    ),
    Loss(
        "tversky",
        "one minus the Tversky index",
        'Salehi, Erdogmus & Gholipour, "Tversky loss function for image segmentation using 3D fully '
        'convolutional deep networks", MLMI 2017',
        (_probability("delta", 0.7, "weight of false negatives (false positives: 1 - delta)"), _smooth(1e-6), _BATCH),
    ),
    Loss(
        "dice",
        "soft Dice loss",
        'Milletari, Navab & Ahmadi, "V-Net: fully convolutional neural networks for volumetric medical '
        'image segmentation", 3DV 2016',
        (_smooth(1e-6), _BATCH),
    ),
    # The rest of Ma's taxonomy ("Loss functions for medical image segmentation", 2020).
    Loss(
        "cross_entropy",
        "categorical cross entropy",
        'Ma, "Segmentation loss odyssey", arXiv:2005.13449 (2020) (the taxonomy\'s reference loss)',
    ),
    Loss(
        "weighted_cross_entropy",
        "cross entropy with class weights",
        'Ronneberger, Fischer & Brox, "U-Net: convolutional networks for biomedical image segmentation", MICCAI 2015',
        (_CLASS_WEIGHTS,),
    ),
    Loss(
        "topk",
        "cross entropy over the hardest k% of voxels",
        'Wu, Shen & van den Hengel, "Bridging category-level and instance-level semantic image '
        'segmentation", arXiv:1605.06885 (2016)',
        (Parameter("k", 10.0, "percentage of the voxels kept", high=100.0, low_open=True),),
    ),
    Loss(
        "distance_penalized_ce",
        "cross entropy weighted by a distance map",
        'Caliva, Iriondo, Martinez, Majumdar & Pedoia, "Distance map loss penalty term for semantic '
        'segmentation", MIDL 2019',
    ),
    Loss(
        "sensitivity_specificity",
        "weighted squared errors on positives and negatives",
        'Brosch et al., "Deep convolutional encoder networks for multiple sclerosis lesion segmentation", MICCAI 2015',
        (
            _probability("weight", 0.05, "weight of the sensitivity term"),
            _smooth_non_negative(1e-5, "s, keeps an absent class's terms finite"),
            Parameter(
                "batch", False, "sum the squared errors and counts over the batch too; false: per sample", kind="flag"
            ),
        ),
    ),
    Loss(
        "generalized_dice",
        "Dice with classes weighted by inverse squared volume",
        'Sudre, Li, Vercauteren, Ourselin & Cardoso, "Generalised Dice overlap as a deep learning loss '
        'function for highly unbalanced segmentations", DLMIA 2017',
        (
            _smooth_non_negative(1e-6, "s, keeps an absent class finite"),
            Parameter(
                "batch",
                False,
                "class volumes (weights) and sums of the whole batch (MONAI batch=True); false: per sample",
                kind="flag",
            ),
        ),
    ),
    Loss(
        "iou",
        "one minus the soft Jaccard index",
        'Rahman & Wang, "Optimizing intersection-over-union in deep neural networks for image segmentation", ISVC 2016',
        (_smooth_non_negative(1e-6, "s, keeps an absent class finite"), _BATCH),
    ),
    Loss(
        "asymmetric_similarity",
        "one minus the F-beta score",
        'Hashemi et al., "Asymmetric loss functions and deep densely-connected networks for highly-imbalanced '
        'medical image segmentation", IEEE Access 2018',
        (Parameter("beta", 1.5, "b of the F-beta score"), _smooth_non_negative(1e-6, "s of the index"), _BATCH),
    ),
    Loss(
        "lovasz_softmax",
        "convex surrogate of the Jaccard loss",
        'Berman, Rannen Triki & Blaschko, "The Lovasz-softmax loss", CVPR 2018',
        (
            Parameter(
                "batch",
                False,
                "sort the whole batch's voxels as one image (the authors' per_image=False); false: per image",
                kind="flag",
            ),
        ),
    ),
    Loss(
        "exp_log",
        "Dice and cross entropy, each raised to a power below 1",
        'Wong, Moradi, Tang & Syeda-Mahmood, "3D segmentation with exponential logarithmic loss for highly '
        'unbalanced object sizes", MICCAI 2018',
        (
            _probability("weight", 0.8, "weight of the Dice term"),
            Parameter("gamma", 0.3, "exponent of both terms"),
            _smooth_non_negative(1.0, "s, the pseudocount"),
            _CLASS_WEIGHTS,
            _BATCH_REGION_PART,
        ),
    ),
    Loss(
        "boundary",
        "probabilities integrated against the signed distance map",
        'Kervadec et al., "Boundary loss for highly unbalanced segmentation", MIDL 2019',
        (_RARE,),
    ),
    Loss(
        "hausdorff_dt",
        "squared errors weighted by distance transforms",
        'Karimi & Salcudean, "Reducing the Hausdorff distance in medical image segmentation with '
        'convolutional neural networks", IEEE TMI 2019',
        (Parameter("alpha", 2.0, "exponent of the distances"), _RARE),
    ),
    Loss(
        "dice_ce",
        "Dice + cross entropy (with batch: true, nnU-Net's default loss)",
        _NNUNET,
        (_smooth(1e-6, "the Dice term's s"), _BATCH_REGION_PART),
    ),
    Loss(
        "dice_topk",
        "Dice + TopK cross entropy",
        _NNUNET + " (DC_and_topk_loss)",
        (
            Parameter("k", 10.0, "percentage of the hardest voxels the TopK term keeps", high=100.0, low_open=True),
            _smooth(1e-6, "the Dice term's s"),
            _BATCH_REGION_PART,
        ),
    ),
    Loss(
        "dice_focal",
        "Dice + focal loss",
        'Zhu et al., "AnatomyNet: deep learning for fast and fully automated whole-volume segmentation of '
        'head and neck anatomy", Medical Physics 2019',
        (
            Parameter("alpha", 0.25, "the focal term's class weight"),
            Parameter("gamma", 2.0, "the focal term's focusing exponent"),
            _smooth(1e-6, "the Dice term's s"),
            _BATCH_REGION_PART,
        ),
    ),
)

CATALOG: dict[str, Loss] = {loss.name: loss for loss in _LOSSES}

# Ma's taxonomy (SPEC.md section 1): what each loss reads of the prediction. The Unified Focal family spans
# it: its focal parts are distribution-based, its (focal) Tversky parts region-based, their sums compound.
FAMILIES: dict[Family, tuple[str, ...]] = {
    "distribution-based": (
        "cross_entropy",
        "weighted_cross_entropy",
        "topk",
        "distance_penalized_ce",
        "focal",
        "symmetric_focal",
        "asymmetric_focal",
    ),
    "region-based": (
        "dice",
        "tversky",
        "focal_tversky",
        "cosine_tversky",
        "symmetric_focal_tversky",
        "asymmetric_focal_tversky",
        "iou",
        "generalized_dice",
        "sensitivity_specificity",
        "asymmetric_similarity",
        "lovasz_softmax",
    ),
    "boundary-based": ("boundary", "hausdorff_dt"),
    "compound": (
        "combo",
        "dice_ce",
        "dice_topk",
        "dice_focal",
        "exp_log",
        "mixed_focal",
        "symmetric_unified_focal",
        "asymmetric_unified_focal",
    ),
}


def names() -> list[str]:
    """Every loss name, sorted (the same as ``losses.names()``, without TensorFlow)."""
    return sorted(CATALOG)


def entry(name: str) -> Loss:
    """The catalog entry of ``name``; ``ValueError`` naming the choices if there is none."""
    if name not in CATALOG:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(names())}")
    return CATALOG[name]


def family(name: str) -> Family:
    """The taxonomy family of ``name`` (``FAMILIES``): distribution-, region- or boundary-based, or compound."""
    entry(name)
    return next(family for family, members in FAMILIES.items() if name in members)


def check(name: str, params: dict[str, Any]) -> None:
    """A ``ValueError`` (one line naming the loss and parameter) unless ``losses.get(name, **params)`` accepts them."""
    loss = entry(name)
    valid = loss.parameter_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(
            f"loss {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"valid parameters: {', '.join(valid) or '(none)'}"
        )
    for parameter in loss.parameters:
        if parameter.name in params:
            parameter.check(name, params[parameter.name])


def as_json() -> list[dict[str, Any]]:
    """Every loss with its parameters, for ``list-losses --json``."""
    return [
        {
            "name": loss.name,
            "summary": loss.summary,
            "reference": loss.reference,
            "parameters": [
                {"name": p.name, "default": p.default, "kind": p.kind, "range": p.range_text(), "meaning": p.meaning}
                for p in loss.parameters
            ],
        }
        for loss in (CATALOG[name] for name in names())
    ]
