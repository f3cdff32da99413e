"""Every published table this project reproduces: its runs (configs) and its comparison.

Each ``PaperTable`` is one unit of the papers: the runs of one data set that one
table (a performance table and its p-value table) compares. Its Holm family is
its own losses, because ``compare-losses`` adjusts over the pairs of the runs
it is given, and ``reproduce-paper`` gives it exactly one table's runs.

To add a table: call ``register(PaperTable(...))`` below with its configs, and
put whatever numbers the paper published under the same id in
``pipeline.evaluation.published.PUBLISHED``.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.evaluation.published import PUBLISHED, PublishedTable


@dataclass(frozen=True)
class PaperTable:
    """One published table (or pair of tables) reproduced as a unit.

    Attributes:
        id: name on the command line and of the results folder, e.g. ``"mixed_focal_brats20"``.
        dataset: the data set of every run, e.g. ``"brats20"``.
        title: the paper and table numbers, e.g. ``"Mixed Focal paper, Tables 3 and 4 (BraTS20)"``.
        configs: the runs in table order, as config paths relative to the repository root.
        notes: what differs from the publication, each a CHOSEN value with the sentence it stands in for.
    """

    id: str
    dataset: str
    title: str
    configs: tuple[str, ...]
    notes: tuple[str, ...] = ()

    @property
    def published(self) -> PublishedTable | None:
        return PUBLISHED.get(self.id)


TABLES: dict[str, PaperTable] = {}
"""Every registered table by id, in registration order."""


def register(table: PaperTable) -> PaperTable:
    if table.id in TABLES:
        raise ValueError(f"paper table {table.id!r} registered twice")
    TABLES[table.id] = table
    return table


def tables_named(names: list[str] | tuple[str, ...]) -> list[PaperTable]:
    """Tables by id, by data set (every table of ``"kits19"``) or ``"all"``; each once, in registry order.

    Raises:
        KeyError: naming the unknown names.
    """
    unknown = [
        name
        for name in names
        if name != "all" and name not in TABLES and name not in {table.dataset for table in TABLES.values()}
    ]
    if unknown:
        raise KeyError(", ".join(unknown))
    return [table for table in TABLES.values() if "all" in names or table.id in names or table.dataset in names]


def _configs(dataset: str, *names: str) -> tuple[str, ...]:
    return tuple(f"configs/{dataset}_{name}.yaml" for name in names)


MIXED_FOCAL_NOTES = (
    (
        "CHOSEN: epochs, iterations per epoch (250) and validation batches (50) for 'we train each model for [lost] "
        "epochs with [lost] iterations per epoch' (configs/base/*.yaml)."
    ),
    "Combo is the paper's L_CCE - DSC (Eq. 18) times the constant 1/3 (alpha = 2/3, beta = 0.5 in losses/combo.py).",
    "Focal Tversky: the exponent 0.75 = 1/(4/3) for 'gamma = 4/3 as in [40]' (Abraham & Khan's convention).",
)
UNIFIED_FOCAL_NOTES = (
    (
        "CHOSEN: the six comparison losses (cross entropy, focal, Dice, Tversky, focal Tversky, Combo) for 'we compare "
        "our loss function performance against six Dice or cross entropy-based loss functions'; their parameters are "
        "the Mixed Focal paper's."
    ),
    "CHOSEN: epochs and iterations per epoch as in the Mixed Focal tables (lost in extraction).",
)
DEEP_SUPERVISION_NOTES = (
    (
        "CHOSEN: this table (both Unified Focal variants, without and with deep supervision) for 'we use the Unified "
        "Focal loss together with deep supervision to achieve state-of-the-art results'."
    ),
    "CHOSEN: 2 deep-supervision heads (1/2 and 1/4 resolution); their number did not survive.",
    "CHOSEN: the published 'Unified Focal loss with deep supervision' numbers are set beside the asymmetric variant.",
)

register(
    PaperTable(
        "mixed_focal_kits19",
        "kits19",
        "Mixed Focal paper, Tables 1 and 2 (KiTS19, 7 losses)",
        _configs("kits19", "focal", "dice", "tversky", "cosine_tversky", "focal_tversky", "combo", "mixed_focal"),
        MIXED_FOCAL_NOTES,
    )
)
register(
    PaperTable(
        "mixed_focal_brats20",
        "brats20",
        "Mixed Focal paper, Tables 3 and 4 (BraTS20, its top 3 losses)",
        _configs("brats20", "focal_tversky", "combo", "mixed_focal"),
        (*MIXED_FOCAL_NOTES, "CHOSEN: patch 128^3 and 300 epochs for BraTS20's lost patch size and epoch count."),
    )
)
for _dataset in ("kits19", "brats20"):
    register(
        PaperTable(
            f"unified_focal_{_dataset}",
            _dataset,
            f"Unified Focal paper, comparison of losses ({'KiTS19' if _dataset == 'kits19' else 'BraTS20'})",
            _configs(
                _dataset,
                "cross_entropy",
                "focal",
                "dice",
                "tversky",
                "focal_tversky",
                "combo",
                "symmetric_unified_focal",
                "asymmetric_unified_focal",
            ),
            UNIFIED_FOCAL_NOTES,
        )
    )
    register(
        PaperTable(
            f"unified_focal_{_dataset}_ds",
            _dataset,
            f"Unified Focal paper, deep supervision ({'KiTS19' if _dataset == 'kits19' else 'BraTS20'})",
            _configs(
                _dataset, "symmetric_unified_focal", "asymmetric_unified_focal", "symmetric_unified_focal_ds", "unified"
            ),
            DEEP_SUPERVISION_NOTES,
        )
    )

TWO_D_NOTES = (
    "CHOSEN: the 2D training protocol (image size, batch, epochs), lost in extraction: whole 288 x 384 CVC-ClinicDB "
    "frames, 256 x 256 DRIVE patches at native size, BUS2017 resized to 256 x 256; batch 8, 100 epochs of 100 "
    "batches (configs/base/{cvc,drive,bus2017}.yaml).",
    "CHOSEN: DRIVE scored inside its field-of-view masks (data.restrict_to_fov), DRIVE's own protocol.",
)
TWO_D_NAMES = {"cvc": "CVC-ClinicDB", "drive": "DRIVE", "bus2017": "BUS2017"}
for _dataset, _name in TWO_D_NAMES.items():
    register(
        PaperTable(
            f"unified_focal_{_dataset}",
            _dataset,
            f"Unified Focal paper, comparison of losses ({_name}, 2D)",
            _configs(
                _dataset,
                "cross_entropy",
                "focal",
                "dice",
                "tversky",
                "focal_tversky",
                "combo",
                "symmetric_unified_focal",
                "asymmetric_unified_focal",
            ),
            (*UNIFIED_FOCAL_NOTES, *TWO_D_NOTES),
        )
    )
register(
    PaperTable(
        "unified_focal_bus2017_ds",
        "bus2017",
        "Unified Focal paper, deep supervision (BUS2017, 2D)",
        _configs(
            "bus2017", "symmetric_unified_focal", "asymmetric_unified_focal", "symmetric_unified_focal_ds", "unified"
        ),
        (*DEEP_SUPERVISION_NOTES, *TWO_D_NOTES[:1]),
    )
)
