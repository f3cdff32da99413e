"""Evaluation as its own stage: score predicted label-map files against reference label maps.

    evaluate PRED_DIR REF_DIR [--classes NAME ...] [--regions NAME=L,L ...]
             [--nsd-tolerance MM | NAME=MM ...] [--label-map L=C,L=C] [--spacing MM MM]
             [--fold K] [--out FILE]
    evaluate RUN_DIR [--name NAME] [--regions NAME=L,L ...] [--nsd-tolerance MM | NAME=MM ...]

Scores come from files alone, so a new metric never needs a new prediction.
Per case and structure (each foreground class, then each composite region) a
row keeps the voxel counts (TP, FP, FN, reference and prediction voxels), the
ratios (DSC, precision, recall; ``pipeline.evaluation.metrics``) and the
surface metrics (HD95, NSD in mm from the image spacing;
``pipeline.evaluation.surface``), with the empty-mask conventions documented there.

``run-experiment`` calls :func:`evaluate_cases` on each fold's
``predictions/`` folder with the data set's masks as references;
``evaluate`` does the same for any two folders:

* ``PRED_DIR``: ``<case_id><suffix>`` for every suffix with a reader
  (:data:`READERS`: ``.nii.gz``, ``.nii``; ``.png``, ``.tif``, ``.tiff`` for
  2D images, 0/255 binary masks read as 0/1); other files are ignored.
* ``REF_DIR``: ``<case_id><suffix>`` (the nnU-Net ``labelsTr`` layout), or a
  case folder ``<case_id>/`` holding one label file with "seg" in its name
  (KiTS19 ``segmentation.nii.gz``, BraTS ``<case>_seg.nii.gz``). Reference
  labels are scored as stored, or through ``--label-map`` (published label ->
  class; labels it leaves out become background, as ``data.label_map``).
* 2D files carry no geometry: their pixels are 1 unit apart unless
  ``--spacing`` gives the mm per pixel (rows, then columns) for HD95 and NSD.

``evaluate RUN_DIR`` rescores a finished run (``pipeline.evaluation.rescore``).

Every prediction needs a reference on the same grid (shape, and the affine up to
1 µm where both files have one), with labels in ``[0, len(classes))``.
Everything is read and scored before ``metrics.csv`` (default
``PRED_DIR/metrics.csv``) and ``summary.json`` beside it are written, each atomically.
A NIfTI file with one voxel along an axis is scored as a 2-D image.
"""

from __future__ import annotations

import argparse
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable, Mapping, Sequence

import numpy as np

from pipeline import console
from pipeline.data.image_files import PIXEL_SPACING, read_label_png
from pipeline.data.nifti import AFFINE_TOLERANCE_MM, read_mask
from pipeline.errors import ConfigError, DataError, UnifocalError, exits_cleanly
from pipeline.evaluation.metrics import (
    confusion_matrix,
    ratios,
    region_counts,
    structures,
    write_metrics_csv,
    write_summary_json,
)
from pipeline.evaluation.surface import surface_scores

logger = logging.getLogger(__name__)

DEFAULT_NSD_TOLERANCE_MM = 2.0
"""NSD tolerance when none is configured (CHOSEN: about two in-plane CT voxels)."""

Tolerance = float | Mapping[str, float]
"""One NSD tolerance in mm for every structure, or one per structure name."""


@dataclass(frozen=True, eq=False)
class LabelMap:
    """A label map as read from a file: integer labels, mm per array axis, and the affine if the format has one."""

    path: Path
    labels: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray | None = None


Reader = Callable[[Path], LabelMap]


def read_nifti_labels(path: Path) -> LabelMap:
    """A NIfTI label map; axes of one voxel are dropped (a 2-D image stored as a volume)."""
    volume = read_mask(path)
    kept = [axis for axis, size in enumerate(volume.shape) if size > 1] or [0]
    labels = integer_labels(np.asarray(volume.data).reshape([volume.shape[axis] for axis in kept]), path)
    return LabelMap(
        path=Path(path), labels=labels, spacing=tuple(volume.spacing[axis] for axis in kept), affine=volume.affine
    )


def read_image_labels(path: Path) -> LabelMap:
    """A 2D label map in an image file (PNG, TIFF; 0/255 binary read as 0/1); one unit per pixel, no affine."""
    return LabelMap(path=Path(path), labels=read_label_png(path), spacing=PIXEL_SPACING)


READERS: dict[str, Reader] = {
    ".nii.gz": read_nifti_labels,
    ".nii": read_nifti_labels,
    ".png": read_image_labels,
    ".tif": read_image_labels,
    ".tiff": read_image_labels,
}
"""Label-map readers by file suffix; another format registers itself here (e.g. ``READERS[".bmp"] = ...``)."""


def parse_label_map(text: str) -> dict[int, int]:
    """``"4=1,1=0,2=0"`` as ``{4: 1, 1: 0, 2: 0}`` (published label -> class).

    Raises:
        UnifocalError: not ``LABEL=CLASS`` pairs of whole numbers >= 0, or a label given twice.
    """
    mapping: dict[int, int] = {}
    for entry in text.split(","):
        source, sep, target = (part.strip() for part in entry.partition("="))
        if not (sep and source.isdigit() and target.isdigit()):
            raise UnifocalError(f"--label-map {text!r}: expected LABEL=CLASS pairs of whole numbers, e.g. 4=1,1=0,2=0")
        if int(source) in mapping:
            raise UnifocalError(f"--label-map {text!r}: label {int(source)} given twice")
        mapping[int(source)] = int(target)
    return mapping


def mapped(label_map: LabelMap, mapping: Mapping[int, int]) -> LabelMap:
    """``label_map`` with its labels mapped (labels ``mapping`` leaves out become 0, as ``data.label_map``)."""
    lookup = np.zeros(max([*mapping, int(label_map.labels.max(initial=0))]) + 1, dtype=np.uint8)
    for source, target in mapping.items():
        lookup[source] = target
    return replace(label_map, labels=lookup[label_map.labels])


def with_spacing(label_map: LabelMap, spacing: Sequence[float] | None) -> LabelMap:
    """``label_map`` with ``spacing`` (mm per axis) if given; only files without geometry (PNG, TIFF) take one.

    Raises:
        UnifocalError: the file has its own geometry (NIfTI), or the spacing has another number of axes.
    """
    if spacing is None:
        return label_map
    if label_map.affine is not None:
        raise UnifocalError(
            f"--spacing: {label_map.path} has its own spacing in its header; --spacing is for "
            f"2D images (PNG, TIFF) without one"
        )
    if len(spacing) != label_map.labels.ndim:
        raise UnifocalError(
            f"--spacing {' '.join(map(str, spacing))}: {label_map.path} has "
            f"{label_map.labels.ndim} axes; give one spacing per axis"
        )
    return replace(label_map, spacing=tuple(float(value) for value in spacing))


def integer_labels(array: np.ndarray, path) -> np.ndarray:
    """``array`` as non-negative integer labels, or ``DataError`` naming ``path``."""
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or not np.array_equal(array, np.round(array)):
            raise DataError(path, "label map holds non-integer values")
    if array.size and array.min() < 0:
        raise DataError(path, f"label map holds a negative label ({array.min():g})")
    if not np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.uint8 if array.size == 0 or array.max() < 256 else np.int32)
    return array


def suffix_of(path: Path) -> str | None:
    """The registered suffix ``path`` ends with (longest first), or ``None``."""
    return next((suffix for suffix in sorted(READERS, key=len, reverse=True) if path.name.endswith(suffix)), None)


def read_label_map(path) -> LabelMap:
    """Read ``path`` with the reader of its suffix."""
    path = Path(path)
    suffix = suffix_of(path)
    if suffix is None:
        raise DataError(path, f"no label-map reader for this file type (known: {', '.join(READERS)})")
    return READERS[suffix](path)


def label_map_files(folder) -> dict[str, Path]:
    """``{case_id: path}`` of the files in ``folder`` that have a reader, sorted by case id."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "folder not found")
    files: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        suffix = suffix_of(path)
        if suffix is None or not path.is_file():
            continue
        case_id = path.name[: -len(suffix)]
        if case_id in files:
            raise DataError(path, f"a second label map of case {case_id} (also {files[case_id].name})")
        files[case_id] = path
    return dict(sorted(files.items()))


def reference_file(reference_dir, case_id: str) -> Path:
    """The reference of ``case_id`` in ``reference_dir`` (flat file, or one ``*seg*`` file in a case folder)."""
    reference_dir = Path(reference_dir)
    for suffix in READERS:
        if (reference_dir / f"{case_id}{suffix}").is_file():
            return reference_dir / f"{case_id}{suffix}"
    folder = reference_dir / case_id
    if folder.is_dir():
        candidates = sorted(
            path for path in folder.iterdir() if path.is_file() and suffix_of(path) and "seg" in path.name.lower()
        )
        if len(candidates) == 1:
            return candidates[0]
        if candidates:
            raise DataError(
                folder, f"several label maps could be the reference: {', '.join(path.name for path in candidates)}"
            )
    raise DataError(
        reference_dir / f"{case_id}.nii.gz",
        f"missing reference of case {case_id} (nor {case_id}/ with a *seg* label map)",
    )


def check_tolerances(nsd_tolerance: Tolerance, names: Iterable[str]) -> None:
    """Raise ``ConfigError`` unless every structure has a positive NSD tolerance."""
    if isinstance(nsd_tolerance, Mapping):
        missing = [name for name in names if name not in nsd_tolerance]
        if missing:
            raise ConfigError(
                f"evaluation.nsd_tolerance_mm: no tolerance for {', '.join(missing)} "
                f"(give one number, or one per class and region)"
            )
        values = nsd_tolerance.values()
    else:
        values = [nsd_tolerance]
    if any(not float(value) > 0 for value in values):
        raise ConfigError(f"evaluation.nsd_tolerance_mm: tolerances must be positive, got {nsd_tolerance}")


def check_evaluation(
    class_names: Sequence[str], regions: Mapping[str, Sequence[int]] | None, nsd_tolerance: Tolerance
) -> None:
    """Raise ``ConfigError`` for regions or NSD tolerances that do not fit the classes (before any work)."""
    try:
        names = list(structures(class_names, regions))
    except ValueError as error:
        raise ConfigError(f"evaluation.regions: {error}") from None
    check_tolerances(nsd_tolerance, names)


def _tolerance(nsd_tolerance: Tolerance, name: str) -> float:
    return float(nsd_tolerance[name] if isinstance(nsd_tolerance, Mapping) else nsd_tolerance)


def check_same_grid(prediction: LabelMap, reference: LabelMap) -> None:
    """Raise ``DataError`` naming the prediction unless it lies on the reference's grid."""
    if prediction.labels.shape != reference.labels.shape:
        raise DataError(
            prediction.path,
            f"shape {prediction.labels.shape} differs from {reference.labels.shape} of the reference {reference.path}",
        )
    if (
        prediction.affine is not None
        and reference.affine is not None
        and not np.allclose(prediction.affine, reference.affine, rtol=0, atol=AFFINE_TOLERANCE_MM)
    ):
        raise DataError(
            prediction.path, f"affine differs from that of the reference {reference.path} (not the same voxel grid)"
        )


def score_label_maps(
    prediction: LabelMap,
    reference: LabelMap,
    class_names: Sequence[str],
    regions: Mapping[str, Sequence[int]] | None = None,
    nsd_tolerance: Tolerance = DEFAULT_NSD_TOLERANCE_MM,
) -> list[dict]:
    """One row per structure: counts, DSC, precision, recall, HD95 and NSD (with its tolerance).

    The spacing is the reference's. Raises ``DataError`` naming the file for
    grids that differ or labels outside ``[0, len(class_names))``.
    """
    check_same_grid(prediction, reference)
    for label_map in (reference, prediction):
        if label_map.labels.size and label_map.labels.max() >= len(class_names):
            raise DataError(
                label_map.path,
                f"label {int(label_map.labels.max())} is not one of the "
                f"{len(class_names)} classes ({', '.join(class_names)})",
            )
    confusion = confusion_matrix(reference.labels, prediction.labels, len(class_names))
    rows = []
    for name, labels in structures(class_names, regions).items():
        counts = region_counts(confusion, labels)
        scores = ratios(counts)
        if len(labels) == 1:
            truth_mask, predicted_mask = reference.labels == labels[0], prediction.labels == labels[0]
        else:
            truth_mask, predicted_mask = np.isin(reference.labels, labels), np.isin(prediction.labels, labels)
        surface = surface_scores(truth_mask, predicted_mask, reference.spacing, _tolerance(nsd_tolerance, name))
        rows.append(
            {
                "class": name,
                "tp": counts.tp,
                "fp": counts.fp,
                "fn": counts.fn,
                "reference_voxels": counts.reference_voxels,
                "prediction_voxels": counts.prediction_voxels,
                "dsc": scores.dsc,
                "precision": scores.precision,
                "recall": scores.recall,
                "hd95": surface.hd95,
                "nsd": surface.nsd,
                "nsd_tolerance_mm": surface.tolerance_mm,
            }
        )
    return rows


def evaluate_cases(
    case_ids: Sequence[str],
    read_prediction: Callable[[str], LabelMap],
    read_reference: Callable[[str], LabelMap],
    class_names: Sequence[str],
    regions: Mapping[str, Sequence[int]] | None = None,
    nsd_tolerance: Tolerance = DEFAULT_NSD_TOLERANCE_MM,
    fold: int = 0,
) -> list[dict]:
    """``metrics.csv`` rows of every case: :func:`score_label_maps` with ``case`` and ``fold`` first.

    Args:
        case_ids: cases in row order.
        read_prediction, read_reference: case id -> :class:`LabelMap`.
        class_names: one name per label, background first (not scored).
        regions: composite regions, name -> labels scored as one structure.
        nsd_tolerance: mm, one for all or one per structure name.
        fold: the fold column.
    """
    check_evaluation(class_names, regions, nsd_tolerance)
    rows = []
    for case_id in console.progress(case_ids, description="evaluate", unit="case", leave=False):
        scored = score_label_maps(
            read_prediction(case_id), read_reference(case_id), class_names, regions, nsd_tolerance
        )
        rows += [{"case": case_id, "fold": fold, **row} for row in scored]
    return rows


def reference_reader(
    reference_dir,
    case_ids: Sequence[str],
    label_map: Mapping[int, int] | None = None,
    spacing: Sequence[float] | None = None,
) -> Callable[[str], LabelMap]:
    """case id -> its reference in ``reference_dir``, through ``label_map`` and with ``spacing`` (if given).

    Raises ``DataError`` for a case without a reference (before anything is read).
    """
    references = {case_id: reference_file(reference_dir, case_id) for case_id in case_ids}

    def read_reference(case_id: str) -> LabelMap:
        reference = with_spacing(read_label_map(references[case_id]), spacing)
        return reference if label_map is None else mapped(reference, label_map)

    return read_reference


def evaluate_folders(
    prediction_dir,
    reference_dir,
    class_names: Sequence[str] | None = None,
    regions: Mapping[str, Sequence[int]] | None = None,
    nsd_tolerance: Tolerance = DEFAULT_NSD_TOLERANCE_MM,
    fold: int = 0,
    label_map: Mapping[int, int] | None = None,
    spacing: Sequence[float] | None = None,
) -> list[dict]:
    """Rows of every prediction in ``prediction_dir`` against its reference in ``reference_dir``.

    Without ``class_names`` the classes are ``background, label_1 .. label_K``
    with ``K`` the largest label in any file (read in a first pass, references
    after ``label_map``). ``label_map`` maps the references' labels to classes
    (:func:`mapped`); ``spacing`` sets the mm per pixel of 2D image files
    (:func:`with_spacing`).
    """
    predictions = label_map_files(prediction_dir)
    if not predictions:
        raise DataError(prediction_dir, f"no label maps ({', '.join(f'*{suffix}' for suffix in READERS)})")
    read_reference = reference_reader(reference_dir, list(predictions), label_map, spacing)

    def read_prediction(case_id: str) -> LabelMap:
        return with_spacing(read_label_map(predictions[case_id]), spacing)

    if class_names is None:
        largest = max(
            int(read(case_id).labels.max(initial=0))
            for case_id in predictions
            for read in (read_prediction, read_reference)
        )
        class_names = ["background", *(f"label_{label}" for label in range(1, largest + 1))]
    return evaluate_cases(list(predictions), read_prediction, read_reference, class_names, regions, nsd_tolerance, fold)


def summary_lines(summary: Mapping[str, Mapping[str, float]]) -> list[str]:
    """One line per structure: its means (``summary.json``'s content), for the console.

    With several seeds each mean is followed by its seed-to-seed SD: ``DSC 0.812 (seed SD 0.004)``.
    """
    titles = {"dsc": "DSC", "precision": "precision", "recall": "recall", "hd95": "HD95 (mm)", "nsd": "NSD"}

    def value(means, metric):
        text = f"{means[metric]:.3f}"
        return f"{text} (seed SD {means[metric + '_seed_sd']:.3f})" if f"{metric}_seed_sd" in means else text

    return [
        f"  {name:<20} "
        + "  ".join(f"{title} {value(means, metric)}" for metric, title in titles.items() if metric in means)
        for name, means in summary.items()
    ]


# --- command line -----------------------------------------------------------------------------


def _regions(entries: Sequence[str]) -> dict[str, list[int]]:
    regions = {}
    for entry in entries:
        name, sep, labels = entry.partition("=")
        try:
            regions[name] = [int(label) for label in labels.split(",")]
        except ValueError:
            sep = ""
        if not sep or not name:
            raise UnifocalError(f"--regions {entry!r}: expected NAME=LABEL,LABEL (e.g. kidney_and_tumour=1,2)")
    return regions


def _tolerances(entries: Sequence[str]) -> Tolerance:
    try:
        if len(entries) == 1 and "=" not in entries[0]:
            return float(entries[0])
        return {name: float(value) for name, _, value in (entry.partition("=") for entry in entries) if name and value}
    except ValueError:
        pass
    raise UnifocalError(f"--nsd-tolerance {' '.join(entries)}: expected MM, or NAME=MM for every class and region")


def _spacing(values: Sequence[str] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    try:
        spacing = tuple(float(value) for value in ",".join(values).split(",") if value)
    except ValueError:
        spacing = ()
    if not spacing or not all(value > 0 for value in spacing):
        raise UnifocalError(f"--spacing {' '.join(values)}: expected positive mm per pixel, e.g. --spacing 0.5 0.5")
    return spacing


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="evaluate",
        description="Score predicted label maps against references: voxel counts, DSC, precision, recall, "
        "HD95 and NSD per case and class; writes metrics.csv and summary.json. Given a run folder "
        "alone, rescore its saved predictions into RUN_DIR/rescored/NAME/.",
    )
    parser.add_argument(
        "prediction_dir",
        metavar="PRED_DIR",
        help="folder of <case_id>.nii.gz (2D: .png, .tif) label maps, or a finished run folder",
    )
    parser.add_argument(
        "reference_dir",
        metavar="REF_DIR",
        nargs="?",
        help="folder of <case_id>.nii.gz (2D: .png, .tif) references, or of <case_id>/ folders "
        "with a *seg* file; left out for a run folder",
    )
    parser.add_argument(
        "--classes",
        nargs="+",
        metavar="NAME",
        help="names of labels 1, 2, ... (default: label_1 .. label_K, K the largest label found)",
    )
    parser.add_argument(
        "--regions",
        nargs="+",
        metavar="NAME=L,L",
        help="composite regions scored beside the classes, e.g. kidney_and_tumour=1,2 "
        "(a run: replaces its evaluation.regions)",
    )
    parser.add_argument(
        "--nsd-tolerance",
        nargs="+",
        metavar="MM",
        help=f"NSD tolerance in mm: one number, or NAME=MM for every class and region "
        f"(default {DEFAULT_NSD_TOLERANCE_MM}; a run: its evaluation.nsd_tolerance_mm)",
    )
    parser.add_argument(
        "--label-map",
        metavar="L=C,L=C",
        help="map reference labels to classes before scoring, e.g. 4=1,1=0,2=0 (labels left out "
        "become background; a run: its data.label_map)",
    )
    parser.add_argument(
        "--spacing",
        nargs="+",
        metavar="MM",
        help="mm per pixel of 2D image files (PNG, TIFF), rows then columns (default 1 1)",
    )
    parser.add_argument(
        "--probabilities",
        nargs="?",
        const="",
        metavar="DIR",
        help="also score calibration (ECE, Brier, NLL) from predict --save-probabilities files "
        "<case>.npz in DIR (default PRED_DIR): calibration.csv and calibration_bins.csv "
        "beside metrics.csv",
    )
    parser.add_argument("--fold", type=int, default=0, metavar="K", help="value of the fold column (default 0)")
    parser.add_argument(
        "--out", metavar="FILE", help="metrics CSV (default PRED_DIR/metrics.csv); summary.json is written beside it"
    )
    parser.add_argument(
        "--name",
        default="rescore",
        metavar="NAME",
        help="a run's rescoring folder, RUN_DIR/rescored/NAME/ (default rescore)",
    )
    return console.add_arguments(parser)


def _is_run_dir(path) -> bool:
    return (Path(path) / "config.yaml").is_file()


@exits_cleanly
def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console.configure(args)
    regions = None if args.regions is None else _regions(args.regions)
    tolerance = None if args.nsd_tolerance is None else _tolerances(args.nsd_tolerance)
    if args.reference_dir is None:
        if not _is_run_dir(args.prediction_dir):
            raise UnifocalError(
                f"{args.prediction_dir}: give REF_DIR, or a run-experiment folder (with config.yaml) to rescore"
            )
        given = [
            option
            for option, value in (
                ("--classes", args.classes),
                ("--label-map", args.label_map),
                ("--spacing", args.spacing),
                ("--out", args.out),
                ("--probabilities", args.probabilities),
            )
            if value is not None
        ] + (["--fold"] if args.fold else [])
        if given:
            raise UnifocalError(
                f"{given[0]}: not for a run folder (its config.yaml gives the classes, label map and "
                f"spacing; the scores go to {Path(args.prediction_dir) / 'rescored' / args.name})"
            )
        from pipeline.evaluation.rescore import rescore_run

        out_dir, rows, summary = rescore_run(args.prediction_dir, args.name, regions, tolerance)
        print(f"{out_dir}: mean over {len({row['case'] for row in rows})} cases")
        print("\n".join(summary_lines(summary)))
        return 0
    label_map = None if args.label_map is None else parse_label_map(args.label_map)
    spacing = _spacing(args.spacing)
    class_names = None if args.classes is None else ["background", *args.classes]
    out = Path(args.out) if args.out else Path(args.prediction_dir) / "metrics.csv"
    if out.is_dir():
        raise UnifocalError(f"{out}: --out is a folder; name the CSV file")
    rows = evaluate_folders(
        args.prediction_dir,
        args.reference_dir,
        class_names,
        regions or {},
        DEFAULT_NSD_TOLERANCE_MM if tolerance is None else tolerance,
        args.fold,
        label_map,
        spacing,
    )
    calibration = None
    if args.probabilities is not None:  # every file read and checked before the first write
        from pipeline.evaluation.calibration import calibrate_files

        probability_dir = Path(args.probabilities or args.prediction_dir)
        case_ids = list(dict.fromkeys(row["case"] for row in rows))
        read_reference = reference_reader(args.reference_dir, case_ids, label_map, spacing)
        calibration = calibrate_files(
            case_ids,
            lambda case_id: probability_dir / f"{case_id}.npz",
            lambda case_id: read_reference(case_id).labels,
            class_names,
            regions,
            args.fold,
        )
    write_metrics_csv(out, rows)
    if calibration is not None:
        from pipeline.evaluation.calibration import write_calibration

        write_calibration(out.parent, *calibration)
        logger.info("wrote %s and %s", out.with_name("calibration.csv"), out.with_name("calibration_bins.csv"))
    summary = write_summary_json(out.with_name("summary.json"), rows)
    print(f"{args.prediction_dir}: mean over {len({row['case'] for row in rows})} cases")
    print("\n".join(summary_lines(summary)))
    logger.info("wrote %s and %s", out, out.with_name("summary.json"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
