"""Calibration of softmax outputs: expected calibration error, Brier score and negative log-likelihood per case.

Dice-trained networks are over-confident (Mehrtash et al., IEEE TMI 2020) and
focal losses were introduced partly to calibrate (Mukhoti et al., NeurIPS
2020), so a loss comparison reports calibration beside overlap. Every number
is computed per case from the class probabilities ``p`` on the original grid
(the softmax the label map was arg-maxed from) against the reference labels
``y``, over the voxels scored (DRIVE: its field of view). With ``N`` voxels,
15 equal-width confidence bins ``B_b = ((b-1)/15, b/15]`` (bin 1 also takes 0)
and ``eps = 1e-7`` (SPEC section 1's clip):

Rows of ``calibration.csv`` (columns ``case, fold, class, voxels, ece, brier, nll``):

* ``class = all`` (the whole prediction):
  - ``ece``: top-label ECE (Guo et al., ICML 2017): the confidence
    ``max_c p_c`` binned; ``sum_b (n_b / N) |acc_b - conf_b|`` with ``acc_b``
    the fraction of bin ``b``'s voxels whose arg-max class is ``y`` and
    ``conf_b`` their mean confidence;
  - ``brier``: ``mean over voxels of sum_c (p_c - [y = c])^2`` (in [0, 2]);
  - ``nll``: ``mean over voxels of -log max(p_y, eps)``.
* one row per foreground class ``c`` and per composite region (``p`` the sum
  of its classes' probabilities, ``[y in region]`` its indicator), as in
  ``metrics.csv``:
  - ``ece``: class-wise ECE (Kull et al., NeurIPS 2019) of that class:
    ``p_c`` binned; ``sum_b (n_b / N) |freq_b - conf_b|`` with ``freq_b`` the
    fraction of bin ``b``'s voxels of class ``c``;
  - ``brier``: ``mean (p_c - [y = c])^2`` (in [0, 1]);
  - ``nll``: the binary cross entropy ``mean -([y = c] log p_c + [y != c] log(1 - p_c))``,
    both probabilities clipped to ``[eps, 1 - eps]``.

``calibration_bins.csv`` keeps each case's top-label bins (``case, fold, bin,
voxels, confidence, correct``: the count, the sum of confidences and of
correct arg-maxes) so that ``compare-losses`` can pool them into a
reliability diagram.

Memory: the probabilities arrive one class at a time (as
``pipeline.preprocessing.resampling.probabilities_to_labels`` and the
``.npz`` files of ``predict --save-probabilities`` provide them), and every
float64 computation runs over slabs of the first axis of at most
:data:`SLAB_VOXELS` voxels. Besides the class in hand, a case holds three
float32 volumes (the running maximum, ``p_y`` and the arg-max agreement via
a uint8 label volume) and one float32 volume per composite region.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Callable, Iterator, Mapping, Sequence

import numpy as np

from pipeline.atomic_files import write_atomically
from pipeline.errors import DataError
from pipeline.evaluation.metrics import structures
from pipeline.run_layout import csv_text

BINS = 15
"""Equal-width confidence bins (Guo et al.'s choice)."""
EPSILON = 1e-7
"""Probabilities are clipped to [EPSILON, 1 - EPSILON] before any log (SPEC section 1)."""
SLAB_VOXELS = 1 << 22
"""Voxels per float64 slab (32 MiB per temporary array)."""
TOP_LABEL = "all"
"""The ``class`` of the row computed over every class (top-label ECE, multiclass Brier, categorical NLL)."""


def _bin_of(confidence: np.ndarray) -> np.ndarray:
    """Bin index 0..BINS-1 of confidences in [0, 1]: bin b holds ((b)/BINS, (b+1)/BINS], bin 0 also 0."""
    return np.clip(np.ceil(confidence * BINS).astype(np.int64) - 1, 0, BINS - 1)


class _BinnedCalibration:
    """Sums over voxels for one probability against one binary truth: bins, squared error, log loss."""

    def __init__(self):
        self.count = np.zeros(BINS)
        self.confidence = np.zeros(BINS)
        self.hits = np.zeros(BINS)
        self.squared_error = 0.0
        self.log_loss = 0.0
        self.voxels = 0

    def add(self, probability: np.ndarray, truth: np.ndarray) -> None:
        """``probability`` float (n,), ``truth`` bool (n,): add the binary (class-wise) sums."""
        probability = probability.astype(np.float64)
        bins = _bin_of(probability)
        self.count += np.bincount(bins, minlength=BINS)
        self.confidence += np.bincount(bins, weights=probability, minlength=BINS)
        self.hits += np.bincount(bins, weights=truth, minlength=BINS)
        self.squared_error += float(np.sum((probability - truth) ** 2))
        clipped = np.clip(probability, EPSILON, 1 - EPSILON)
        self.log_loss += float(-np.sum(np.where(truth, np.log(clipped), np.log1p(-clipped))))
        self.voxels += probability.size

    def ece(self) -> float:
        return float(np.sum(np.abs(self.hits - self.confidence)) / max(self.voxels, 1))


class CaseCalibration:
    """Accumulates one case's calibration from its class probabilities, given one class at a time.

    Args:
        reference: the reference labels (int, (D, H, W) or (H, W)) on the probabilities' grid.
        class_names: one name per label, background first (rows for every foreground class).
        regions: composite regions, name -> labels (rows beside the classes, as ``metrics.csv``).
        region_mask: bool, the voxels scored (DRIVE's field of view); ``None``: all.

    Call :meth:`add_class` for labels 0, 1, ... in order (the ``each_class`` callback of
    ``probabilities_to_labels``), then :meth:`rows` and :meth:`bins`.
    """

    def __init__(
        self,
        reference: np.ndarray,
        class_names: Sequence[str],
        regions: Mapping[str, Sequence[int]] | None = None,
        region_mask: np.ndarray | None = None,
    ):
        self.reference = np.asarray(reference)
        self.class_names = tuple(class_names)
        self.mask = None if region_mask is None else np.asarray(region_mask, dtype=bool)
        self.num_classes = len(class_names)
        self.structures = structures(class_names, regions)
        self.stats = {name: _BinnedCalibration() for name in self.structures}
        self.region_sums = {
            name: np.zeros(self.reference.shape, np.float32)
            for name, labels in self.structures.items()
            if len(labels) > 1
        }
        self.best = np.full(self.reference.shape, -np.inf, np.float32)
        self.best_label = np.zeros(self.reference.shape, np.uint8)
        self.true_probability = np.zeros(self.reference.shape, np.float32)
        self.squared_error = 0.0
        self.next_label = 0

    def _slabs(self) -> Iterator[slice]:
        per_slab = max(1, SLAB_VOXELS // max(1, int(np.prod(self.reference.shape[1:]))))
        for start in range(0, self.reference.shape[0], per_slab):
            yield slice(start, start + per_slab)

    def _scored(self, array: np.ndarray, slab: slice) -> np.ndarray:
        part = array[slab]
        return part.ravel() if self.mask is None else part[self.mask[slab]]

    def add_class(self, label: int, probabilities: np.ndarray) -> None:
        """Class ``label``'s probabilities on the reference's grid (float, the reference's shape)."""
        if label != self.next_label:
            raise ValueError(f"class {label} given out of order (expected {self.next_label})")
        if probabilities.shape != self.reference.shape:
            raise ValueError(f"probabilities of shape {probabilities.shape} for a reference of {self.reference.shape}")
        self.next_label += 1
        own = [name for name, labels in self.structures.items() if list(labels) == [label]]
        for slab in self._slabs():
            probability, truth = self._scored(probabilities, slab), self._scored(self.reference, slab) == label
            for name in own:
                self.stats[name].add(probability, truth)
            self.squared_error += float(np.sum((probability.astype(np.float64) - truth) ** 2))
        for name, total in self.region_sums.items():
            if label in self.structures[name]:
                total += probabilities
        np.copyto(self.true_probability, probabilities, where=self.reference == label)
        self.best_label[probabilities > self.best] = label
        np.maximum(self.best, probabilities, out=self.best)

    def _finish(self) -> None:
        if self.next_label != self.num_classes:
            raise ValueError(f"{self.next_label} of {self.num_classes} classes given")
        if self.region_sums:
            for slab in self._slabs():
                reference = self._scored(self.reference, slab)
                for name, total in self.region_sums.items():
                    self.stats[name].add(self._scored(total, slab), np.isin(reference, self.structures[name]))
            self.region_sums = {}

    def rows(self) -> list[dict]:
        """``calibration.csv`` rows of this case (without ``case`` and ``fold``): ``all``, then each structure."""
        self._finish()
        top = self.top_label_bins()
        voxels = int(top["voxels"].sum())
        nll = 0.0
        for slab in self._slabs():
            nll += float(
                -np.sum(np.log(np.maximum(self._scored(self.true_probability, slab).astype(np.float64), EPSILON)))
            )
        rows = [
            {
                "class": TOP_LABEL,
                "voxels": voxels,
                "ece": float(np.sum(np.abs(top["correct"] - top["confidence"])) / max(voxels, 1)),
                "brier": self.squared_error / max(voxels, 1),
                "nll": nll / max(voxels, 1),
            }
        ]
        for name, stats in self.stats.items():
            rows.append(
                {
                    "class": name,
                    "voxels": stats.voxels,
                    "ece": stats.ece(),
                    "brier": stats.squared_error / max(stats.voxels, 1),
                    "nll": stats.log_loss / max(stats.voxels, 1),
                }
            )
        return rows

    def top_label_bins(self) -> dict[str, np.ndarray]:
        """Per bin: ``voxels``, the sum of ``confidence`` (max_c p_c) and of ``correct`` arg-maxes."""
        sums = {"voxels": np.zeros(BINS), "confidence": np.zeros(BINS), "correct": np.zeros(BINS)}
        for slab in self._slabs():
            confidence = self._scored(self.best, slab).astype(np.float64)
            correct = self._scored(self.best_label, slab) == self._scored(self.reference, slab)
            bins = _bin_of(confidence)
            sums["voxels"] += np.bincount(bins, minlength=BINS)
            sums["confidence"] += np.bincount(bins, weights=confidence, minlength=BINS)
            sums["correct"] += np.bincount(bins, weights=correct, minlength=BINS)
        return sums


def case_calibration(
    probabilities: np.ndarray,
    reference: np.ndarray,
    class_names: Sequence[str],
    regions: Mapping[str, Sequence[int]] | None = None,
    region_mask: np.ndarray | None = None,
) -> CaseCalibration:
    """A :class:`CaseCalibration` fed every class of ``probabilities`` (C, *spatial), class axis first."""
    calibration = CaseCalibration(reference, class_names, regions, region_mask)
    for label in range(probabilities.shape[0]):
        calibration.add_class(label, probabilities[label])
    return calibration


def _header(member) -> tuple:
    """``(shape, fortran_order, dtype)`` of an open ``.npy`` stream."""
    version = np.lib.format.read_magic(member)
    return (np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0)(member)


def file_calibration(
    path: Path,
    reference: np.ndarray,
    class_names: Sequence[str] | None = None,
    regions: Mapping[str, Sequence[int]] | None = None,
) -> CaseCalibration:
    """A case's calibration from its ``.npz`` probabilities (``predict --save-probabilities``), read one class at
    a time from one open file (bounded memory).

    ``class_names``: default ``background, label_1 .. label_{C-1}`` for the file's ``C`` classes.

    Raises:
        DataError: a missing or unreadable file, or probabilities whose classes or grid differ from the reference's.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "missing: no probabilities of this case (predict --save-probabilities)")
    try:
        with zipfile.ZipFile(path) as archive, archive.open("probabilities.npy") as member:
            version = np.lib.format.read_magic(member)
            read_header = (
                np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            )
            shape, fortran_order, dtype = read_header(member)
            if class_names is None:
                class_names = ["background", *(f"label_{label}" for label in range(1, shape[0]))]
            if fortran_order or tuple(shape) != (len(class_names), *reference.shape):
                raise DataError(
                    path,
                    f"probabilities of shape {tuple(shape)}, but {len(class_names)} classes on the "
                    f"reference's grid {reference.shape} expected",
                )
            calibration = CaseCalibration(reference, class_names, regions)
            per_class = int(np.prod(shape[1:])) * dtype.itemsize
            for label in range(shape[0]):
                calibration.add_class(label, np.frombuffer(member.read(per_class), dtype=dtype).reshape(shape[1:]))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as error:
        raise DataError(path, f"not a predict --save-probabilities file ({error})") from None
    return calibration


def calibrate_files(
    case_ids: Sequence[str],
    probability_file: Callable[[str], Path],
    reference_labels: Callable[[str], np.ndarray],
    class_names: Sequence[str] | None = None,
    regions: Mapping[str, Sequence[int]] | None = None,
    fold: int = 0,
) -> tuple[list[dict], list[dict]]:
    """``calibration.csv`` and ``calibration_bins.csv`` rows of every case from its ``.npz`` probabilities
    (:func:`file_calibration`; without ``class_names`` the first file's classes name every case's)."""
    rows, bin_rows = [], []
    for case_id in case_ids:
        calibration = file_calibration(probability_file(case_id), reference_labels(case_id), class_names, regions)
        class_names = calibration.class_names
        case_scores, case_bins = case_rows(case_id, fold, calibration)
        rows += case_scores
        bin_rows += case_bins
    return rows, bin_rows


def case_rows(case_id: str, fold: int, calibration: CaseCalibration) -> tuple[list[dict], list[dict]]:
    """This case's ``calibration.csv`` and ``calibration_bins.csv`` rows."""
    rows = [{"case": case_id, "fold": fold, **row} for row in calibration.rows()]
    bins = calibration.top_label_bins()
    bin_rows = [
        {
            "case": case_id,
            "fold": fold,
            "bin": index,
            "voxels": int(bins["voxels"][index]),
            "confidence": float(bins["confidence"][index]),
            "correct": int(bins["correct"][index]),
        }
        for index in range(BINS)
    ]
    return rows, bin_rows


def write_calibration(folder: Path, rows: Sequence[Mapping], bin_rows: Sequence[Mapping]) -> None:
    """``folder/calibration.csv`` and ``folder/calibration_bins.csv``, atomically."""
    write_atomically(Path(folder) / "calibration.csv", csv_text(rows))
    write_atomically(Path(folder) / "calibration_bins.csv", csv_text(bin_rows))
