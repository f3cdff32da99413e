"""``run-experiment CONFIG --plan``: what an experiment will do, before it does anything.

Resolves the data set (cases, exclusions, classes, channels, median spacing
and size from the image headers: no voxel is read, except by a data set that
must read masks to choose its cases, BraTS20's ``exclude_without_label``), the
preprocessing (target spacing, the median shape it gives, the patch as a
fraction of it), the model (parameters and training memory under the
configured precision) and the folds. Writes nothing: no run folder, no cache
folder, no splits file.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pipeline.config import ExperimentConfig
from pipeline.data import open_dataset
from pipeline.errors import DataError
from pipeline.preprocessing.cache import cache_key
from pipeline.preprocessing.resampling import resampled_shape
from pipeline.training.cross_validation import make_splits, read_splits
from pipeline.training.memory import GIB, training_memory
from pipeline.training.train import build_model


def experiment_plan(config: ExperimentConfig) -> dict:
    """The plan as a JSON-ready mapping (``format_plan`` prints it)."""
    dataset = open_dataset(config.data.dataset, config.data.root, **config.data.dataset_options())
    case_ids = dataset.case_ids()
    geometries = [dataset.geometry(case_id) for case_id in case_ids]
    shapes = np.array([geometry.shape for geometry in geometries])
    spacings = np.array([geometry.spacing for geometry in geometries])
    settings = config.preprocessing.settings()
    target = settings.target_spacing
    resampled = (
        shapes
        if target is None
        else np.array([resampled_shape(shape, spacing, target) for shape, spacing in zip(shapes, spacings)])
    )
    if settings.target_shape is not None:  # a fixed grid (2D images of varying size)
        resampled = np.array([settings.target_shape] * len(shapes))
    median_shape = np.median(resampled, axis=0)
    patch = np.array(config.sampling.patch_shape)
    num_channels, num_classes = len(dataset.modalities), dataset.num_classes
    spatial_dims = len(config.sampling.patch_shape)
    memory = training_memory(
        lambda: build_model(config.model, num_channels, num_classes, spatial_dims),
        config.sampling.patch_shape,
        config.sampling.batch_size,
        num_channels,
        config.training.precision,
    )
    key, _ = cache_key(dataset, settings)
    cache_folder = Path(config.preprocessing.cache_dir) / key
    return {
        "data": {
            "dataset": dataset.name,
            "root": str(config.data.root),
            "cases": len(case_ids),
            "excluded": list(dataset.excluded),
            "skipped_without_mask": list(dataset.skipped_without_mask),
            "excluded_without_label": list(dataset.excluded_without_label),
            # None: the data set has no such option (2D sets and MIScnn interfaces keep every case)
            "exclude_without_label": getattr(dataset, "exclude_without_label", None),
            "test_cases": len(dataset.test_images()) if hasattr(dataset, "test_images") else None,
            "classes": list(dataset.class_names),
            "channels": list(dataset.modalities),
            "median_spacing": _numbers(np.median(spacings, axis=0)),
            "spacing_range": [_numbers(spacings.min(axis=0)), _numbers(spacings.max(axis=0))],
            "median_shape": _numbers(np.median(shapes, axis=0)),
            "shape_range": [_numbers(shapes.min(axis=0)), _numbers(shapes.max(axis=0))],
        },
        "preprocessing": {
            "clip": None if settings.clip is None else list(settings.clip),
            "normalization": settings.normalization,
            "target_spacing": None if target is None else list(target),
            "target_shape": None if settings.target_shape is None else list(settings.target_shape),
            "median_shape": _numbers(median_shape),
            "shape_range": [_numbers(resampled.min(axis=0)), _numbers(resampled.max(axis=0))],
            "patch_shape": patch.tolist(),
            "patch_fraction": _numbers(patch / median_shape, 2),
            "cache": str(cache_folder),
            "cached_cases": sum((cache_folder / case_id / "meta.json").exists() for case_id in case_ids),
        },
        "model": {
            "architecture": config.model.architecture,
            "settings": config.model.model_dump(mode="json"),
            "parameters": memory.parameters,
            "precision": config.training.precision,
            "batch_size": config.sampling.batch_size,
            "memory_gib": round(memory.estimate_bytes / GIB, 2),
        },
        "training": {
            "loss": config.loss.name,
            "params": config.loss.params,
            "epochs": config.training.epochs,
            "batches_per_epoch": config.sampling.batches_per_epoch,
            "learning_rate": config.training.learning_rate,
        },
        "folds": _folds(config, case_ids),
        "run_dir": str(config.run_dir),
        "done_folds": _done_folds(config),
        "seeds": config.experiment.training_seeds,
    }


def _done_folds(config: ExperimentConfig) -> list:
    """Folds with ``done.json``: fold numbers, or with several seeds ``[seed, fold]`` pairs."""
    done = [task for task in config.run_folds() if (task.path / "done.json").exists()]
    return [[task.seed, task.fold] if config.seeded_layout else task.fold for task in done]


def _folds(config: ExperimentConfig, case_ids: list[str]) -> dict:
    """Validation cases per fold: from the splits file in use if it exists (checked), else as they will be drawn."""
    folds, seed = config.cross_validation.folds, config.experiment.seed
    path = config.cross_validation.splits_file or config.run_dir / "splits.json"
    splits = read_splits(path, case_ids, folds)
    source = f"{path} (exists)" if splits is not None else f"{path} (to be written, seed {seed})"
    if splits is None:
        try:
            splits = make_splits(case_ids, folds, seed)
        except ValueError as error:
            raise DataError(config.data.root, f"{error} (cross_validation.folds={folds})") from None
    return {"folds": folds, "splits": source, "val_cases": [len(split["val"]) for split in splits]}


def _numbers(values, digits: int = 3) -> list:
    return [int(value) if float(value).is_integer() else round(float(value), digits) for value in values]


def format_plan(plan: dict) -> str:
    """The plan as the lines ``run-experiment --plan`` prints."""
    data, pre, model, training, folds = (plan[key] for key in ("data", "preprocessing", "model", "training", "folds"))
    reasons = [("excluded", "excluded"), ("skipped_without_mask", "skipped for want of a mask")]
    if data["exclude_without_label"]:
        reasons.append(("excluded_without_label", "excluded for an empty mask (no foreground voxel)"))
    left_out = [
        f"{len(data[key])} {label}"
        + (f" ({', '.join(map(str, data[key][:8]))}{' ...' if len(data[key]) > 8 else ''})" if data[key] else "")
        for key, label in reasons
    ]
    if data["exclude_without_label"] is False:
        left_out.append("cases with an empty mask kept (data.exclude_without_label: false)")
    test = "" if data["test_cases"] is None else f"; {data['test_cases']} unlabelled test case(s)"
    patch_share = " x ".join(f"{share:.2f}" for share in pre["patch_fraction"])
    padded = (
        "; larger than the median size along axis "
        + ", ".join(str(axis) for axis, share in enumerate(pre["patch_fraction"]) if share > 1)
        + ": cases are padded"
        if max(pre["patch_fraction"]) > 1
        else ""
    )
    lines = [
        f"data set     {data['dataset']} at {data['root']}",
        f"  cases      {data['cases']} used; {', '.join(left_out)}{test}",
        f"  classes    {', '.join(data['classes'])} ({len(data['classes'])})",
        f"  channels   {', '.join(data['channels'])} ({len(data['channels'])})",
        f"  spacing    median {_shape(data['median_spacing'])} mm "
        f"(range {_shape(data['spacing_range'][0])} to {_shape(data['spacing_range'][1])})",
        f"  size       median {_shape(data['median_shape'])} voxels "
        f"(range {_shape(data['shape_range'][0])} to {_shape(data['shape_range'][1])})",
        "preprocessing",
        f"  intensity  clip {pre['clip'] or 'none'}, normalization {pre['normalization']}",
        "  spacing    "
        + (
            f"resized to {_shape(pre['target_shape'])}"
            if pre["target_shape"] is not None
            else "each case's own"
            if pre["target_spacing"] is None
            else f"resampled to {_shape(pre['target_spacing'])} mm"
        ),
        f"  size       median {_shape(pre['median_shape'])} voxels "
        f"(range {_shape(pre['shape_range'][0])} to {_shape(pre['shape_range'][1])})",
        f"  patch      {_shape(pre['patch_shape'])} = {patch_share} of the median size{padded}",
        f"  cache      {pre['cache']} ({pre['cached_cases']} of {data['cases']} cases cached)",
        "model",
        f"  network    {model['architecture']} U-Net, "
        + ", ".join(f"{key} {value}" for key, value in model["settings"].items() if key != "architecture"),
        f"  size       {model['parameters']:,} parameters; about {model['memory_gib']:.2f} GiB per training step "
        f"({model['precision']}, batch {model['batch_size']})",
        "training",
        f"  loss       {training['loss']} {json.dumps(training['params'])}",
        f"  schedule   {training['epochs']} epochs x {training['batches_per_epoch']} batches, "
        f"learning rate {training['learning_rate']}",
        f"folds        {folds['folds']}, validation cases per fold {folds['val_cases']}; splits {folds['splits']}",
    ]
    seeds = plan["seeds"]
    if len(seeds) > 1:
        lines.append(
            f"seeds        {len(seeds)} ({', '.join(map(str, seeds))}): the cross-validation once per seed, "
            f"same split; {len(seeds) * folds['folds']} training tasks in seed_<S>/fold_<K>/"
        )
        done = ", ".join(f"seed {seed} fold {fold}" for seed, fold in plan["done_folds"])
    else:
        done = plan["done_folds"]
    lines.append(f"run folder   {plan['run_dir']}" + (f" (folds done: {done})" if plan["done_folds"] else ""))
    return "\n".join(lines)


def _shape(values) -> str:
    return " x ".join(str(value) for value in values)
