"""The numbers the papers published, with their source, for tables that put ours beside them.

Keyed by paper table id (``pipeline.paper.tables`` lists the tables and their
runs). A row is found by ``RowKey(loss, deep_supervision)``: the registry name
of the run's loss and whether it trained with deep supervision. Only values
that survived the extraction of the sources are here (SPEC.md section 4,
``/work/shared/seeds/``); everything else is absent, never guessed.

Sources:
* MF: Yeung, Sala, Schönlieb, Rundo, "A Mixed Focal Loss Function for Handling
  Class Imbalanced Medical Image Segmentation", arXiv 2102.04525 (2021)
  (seed 002): Table 1 (KiTS19 performance), Table 2 (KiTS19 adjusted p-values,
  kidney DSC: the tumour half and the last row's last two cells did not
  survive), Table 3 (BraTS20 performance), Table 4 (BraTS20 adjusted p-values).
* UF: Yeung et al., "Unified Focal loss: Generalising Dice and cross
  entropy-based losses to handle class imbalanced medical image segmentation",
  Computerized Medical Imaging and Graphics 95 (2022) 102026, abstract and
  SPEC.md section 4: the Unified Focal loss with deep supervision. CHOSEN:
  "the Unified Focal loss" is read as its asymmetric variant, the one the
  paper recommends.

To add a table: add its id to
``PERFORMANCE`` and/or ``P_VALUES`` with a ``source`` string.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping


@dataclass(frozen=True)
class RowKey:
    """Which run of a table a published value belongs to."""

    loss: str
    deep_supervision: bool = False


@dataclass(frozen=True)
class PublishedValue:
    """A published ``mean ± half_width`` (``half_width`` None when only the mean survived)."""

    mean: float
    half_width: float | None = None


@dataclass(frozen=True)
class PublishedTable:
    """One paper table's surviving numbers.

    ``performance``: ``RowKey -> {(class, metric): PublishedValue}``.
    ``p_values``: ``class -> {(row RowKey, column RowKey): adjusted p}``.
    """

    source: str
    performance: Mapping[RowKey, Mapping[tuple[str, str], PublishedValue]]
    p_values: Mapping[str, Mapping[tuple[RowKey, RowKey], float]]


def _lower_triangle(order: tuple[str, ...], rows: Mapping[str, tuple[float, ...]]) -> dict:
    """``{(RowKey(row), RowKey(column)): p}`` from a published lower triangle read row by row."""
    return {
        (RowKey(row), RowKey(order[index])): value for row, values in rows.items() for index, value in enumerate(values)
    }


MF_KITS19_ORDER = ("focal", "dice", "tversky", "cosine_tversky", "focal_tversky", "combo", "mixed_focal")

PUBLISHED: dict[str, PublishedTable] = {
    "mixed_focal_kits19": PublishedTable(
        source="Yeung et al. 2021 (Mixed Focal), Tables 1 and 2 (top: kidney DSC)",
        performance={RowKey("focal"): {("kidney", "dsc"): PublishedValue(0.940, 0.020)}},
        p_values={
            "kidney": _lower_triangle(
                MF_KITS19_ORDER,
                {
                    "dice": (1.00,),
                    "tversky": (0.209, 1.00),
                    "cosine_tversky": (0.00468, 0.0962, 1.00),
                    "focal_tversky": (1.00, 1.00, 0.0950, 0.00145),
                    "combo": (1.00, 1.00, 0.165, 0.00249, 1.00),
                    "mixed_focal": (
                        1.00,
                        0.476,
                        0.00541,
                    ),  # the cell against cosine_tversky reads "2.52 x" (exponent lost)
                },
            )
        },
    ),
    "mixed_focal_brats20": PublishedTable(
        source="Yeung et al. 2021 (Mixed Focal), Tables 3 and 4 (enhancing tumour)",
        performance={
            RowKey("focal_tversky"): {
                ("enhancing_tumour", "dsc"): PublishedValue(0.747, 0.050),
                ("enhancing_tumour", "precision"): PublishedValue(0.776, 0.070),
                ("enhancing_tumour", "recall"): PublishedValue(0.765, 0.029),
            },
            RowKey("combo"): {("enhancing_tumour", "dsc"): PublishedValue(0.748, 0.032)},
        },
        p_values={
            "enhancing_tumour": {
                (RowKey("combo"), RowKey("focal_tversky")): 0.312,
                (RowKey("mixed_focal"), RowKey("focal_tversky")): 0.176,
                (RowKey("mixed_focal"), RowKey("combo")): 0.018,
            }
        },
    ),
    "unified_focal_kits19_ds": PublishedTable(
        source="Yeung et al. 2022 (Unified Focal), abstract: Unified Focal loss with deep supervision",
        performance={
            RowKey("asymmetric_unified_focal", True): {
                ("kidney", "dsc"): PublishedValue(0.948, 0.012),
                ("tumour", "dsc"): PublishedValue(0.758, 0.066),
            }
        },
        p_values={},
    ),
    "unified_focal_brats20_ds": PublishedTable(
        source="Yeung et al. 2022 (Unified Focal), abstract: Unified Focal loss with deep supervision",
        performance={
            RowKey("asymmetric_unified_focal", True): {
                ("enhancing_tumour", "dsc"): PublishedValue(0.800, 0.030),
            }
        },
        p_values={},
    ),
    "unified_focal_bus2017_ds": PublishedTable(
        source="Yeung et al. 2022 (Unified Focal), abstract: Unified Focal loss with deep supervision",
        performance={RowKey("asymmetric_unified_focal", True): {("lesion", "dsc"): PublishedValue(0.948, 0.009)}},
        p_values={},
    ),
}
"""Published numbers per paper table id."""
