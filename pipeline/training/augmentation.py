"""Augmentation of training patches with batchgenerators, as MIScnn runs it for the papers.

The Unified Focal papers train with MIScnn, which augments every patch with
batchgenerators (Isensee et al.): rotation, mirroring, brightness, contrast,
gamma, elastic deformation and Gaussian noise (Yeung et al. 2021, Sec. III-D).
The defaults of :class:`pipeline.config.AugmentationSettings` are the ranges and per-sample
probabilities of MIScnn 1.4.0's ``Data_Augmentation`` with all of those
enabled. In a YAML config::

    augmentation:
      rotation: {probability: 0.15, degrees: [[-15, 15], [-15, 15], [-15, 15]]}
      elastic: {probability: 0.15, alpha: [0, 900], sigma: [9, 13]}
      noise: {probability: 0.0}        # switch one transform off
      interpolation_order: 1           # faster than cubic, see the benchmark

How a patch is made (:class:`PatchAugmenter`), and where it differs from
calling batchgenerators' ``SpatialTransform`` on a cropped patch, for speed,
not in the distribution of the augmented patches:

* The spatial transforms (elastic deformation, then rotation, then scaling,
  batchgenerators' ``augment_spatial`` order and axis conventions) move the
  patch's coordinate grid *inside the whole volume* and interpolate once from
  there, so a rotated patch shows the neighbouring tissue, not the
  zero-filled corners of a rotated crop; only the bounding box of the moved
  grid is read (and spline-prefiltered).
* The elastic displacement field is batchgenerators' (uniform noise in
  [-1, 1] smoothed by a Gaussian of width sigma, times alpha, in patch voxels)
  computed on a grid coarser by ``k = sigma // 3`` and upsampled linearly
  (:func:`elastic_displacement`): the field is smooth at that scale, and
  filtering a k-times coarser grid costs k**3 times less.
* Mirroring and the intensity transforms then run as batchgenerators
  transforms, in MIScnn's order: mirror, contrast, brightness, gamma, noise.

Determinism: everything random comes from the ``numpy.random.Generator`` the
caller passes. batchgenerators' transforms draw through ``np.random``; in the
calling thread that is a ``RandomState`` seeded from that Generator
(:mod:`pipeline.training.batchgenerators_random`), so the result does not
depend on thread scheduling, threads do not wait for each other, and the
global random streams are left untouched.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import numpy as np
from batchgenerators.augmentations.utils import (
    create_matrix_rotation_2d,
    create_matrix_rotation_x_3d,
    create_matrix_rotation_y_3d,
    create_matrix_rotation_z_3d,
)
from batchgenerators.transforms.abstract_transforms import Compose
from batchgenerators.transforms.color_transforms import (
    BrightnessMultiplicativeTransform,
    ContrastAugmentationTransform,
    GammaTransform,
)
from batchgenerators.transforms.noise_transforms import GaussianNoiseTransform
from batchgenerators.transforms.spatial_transforms import MirrorTransform
from scipy import ndimage

from pipeline.config import AugmentationSettings
from pipeline.training import batchgenerators_random

# Voxels read beyond the moved grid's bounding box, so that the cubic spline
# prefilter's boundary handling (whose influence decays as 0.268**distance)
# does not reach the patch: 0.268**8 < 3e-5.
_SPLINE_MARGIN = 8

batchgenerators_random.install()


def crop_with_padding(
    array: np.ndarray, start: Sequence[int], shape: Sequence[int], fill: Union[float, np.ndarray]
) -> np.ndarray:
    """``array[start : start + shape]`` over the leading axes, ``fill`` where that lies outside.

    Only the part inside the array is read, so ``array`` may be a large
    read-only memmap. Trailing axes (channels) are kept whole.

    Args:
        array: the volume, e.g. an image (D, H, W, M) or a label map (D, H, W).
        start: first voxel of the crop per leading axis; may be negative.
        shape: size of the crop per leading axis.
        fill: value outside the array; a scalar, or one value per channel.

    Returns:
        A new array of shape ``(*shape, *array.shape[len(shape):])``, dtype of ``array``.
    """
    start = np.asarray(start, dtype=np.int64)
    stop = start + np.asarray(shape, dtype=np.int64)
    inner_start = np.maximum(start, 0)
    inner_stop = np.minimum(stop, array.shape[: len(start)])
    source = tuple(slice(a, b) for a, b in zip(inner_start, inner_stop))
    if np.array_equal(inner_start, start) and np.array_equal(inner_stop, stop):
        return np.array(array[source])
    crop = np.empty(tuple(int(s) for s in shape) + array.shape[len(start) :], dtype=array.dtype)
    crop[...] = fill
    if np.all(inner_stop > inner_start):
        target = tuple(slice(a - s, b - s) for a, b, s in zip(inner_start, inner_stop, start))
        crop[target] = array[source]
    return crop


def _linear_upsampling(size: int, coarse_size: int, step: int) -> np.ndarray:
    """Matrix (size, coarse_size) interpolating linearly from nodes every ``step`` voxels."""
    position = np.arange(size) / step
    lower = np.floor(position).astype(np.int64)
    weight = (position - lower).astype(np.float32)
    matrix = np.zeros((size, coarse_size), dtype=np.float32)
    matrix[np.arange(size), lower] = 1.0 - weight
    matrix[np.arange(size), np.minimum(lower + 1, coarse_size - 1)] += weight
    return matrix


def elastic_displacement(
    shape: Sequence[int], alpha: float, sigma: float, rng: np.random.Generator, linear_map: Optional[np.ndarray] = None
) -> np.ndarray:
    """A smooth random displacement field, distributed as batchgenerators' ``elastic_deform_coordinates``.

    batchgenerators: ``alpha * gaussian_filter(U(-1, 1) noise, sigma)`` per
    axis on the full patch grid. Here the noise lives on nodes every
    ``k = max(1, sigma // 3)`` voxels, is filtered with ``sigma / k``, and is
    upsampled linearly. Averaging ``k**d`` independent noise voxels into one
    node divides their variance by ``k**d``, so the coarse field is scaled by
    ``k**(-d/2)`` to keep the displacement variance (checked against
    batchgenerators in the tests).

    Args:
        shape: the patch grid (D, H, W).
        alpha: magnitude, as batchgenerators' ``alpha``.
        sigma: smoothing width in voxels, as batchgenerators' ``sigma``.
        rng: source of the noise.
        linear_map: optional (d, d) matrix applied to every displacement
            vector (the grid's rotation and scaling). Applied on the coarse
            nodes, where it is cheap; exact, as upsampling is linear too.

    Returns:
        float32 (len(shape), *shape): one displacement per axis, in voxels.
    """
    dims = len(shape)
    step = max(1, int(sigma // 3))
    coarse_shape = tuple((size - 1) // step + 2 for size in shape)
    noise = rng.uniform(-1.0, 1.0, size=(dims, *coarse_shape)).astype(np.float32)
    field = ndimage.gaussian_filter(noise, sigma=(0,) + (sigma / step,) * dims, mode="constant")
    field *= alpha * step ** (-dims / 2)
    if linear_map is not None:
        field = np.tensordot(np.asarray(linear_map, dtype=np.float32), field, axes=1)
    for axis, (size, coarse_size) in enumerate(zip(shape, coarse_shape), start=1):
        upsampling = _linear_upsampling(size, coarse_size, step)
        field = np.moveaxis(np.tensordot(upsampling, field, axes=(1, axis)), 0, axis)
    return np.ascontiguousarray(field)


def transformed_grid(patch_shape: Sequence[int], linear_map: np.ndarray, centre: Sequence[float]) -> np.ndarray:
    """``linear_map @ mesh + centre`` for batchgenerators' zero-centred patch mesh, built axis by axis.

    Equal to ``create_zero_centered_coordinate_mesh`` followed by the matrix
    product, without materialising the mesh: each coordinate is a sum of
    one broadcast 1-D ramp per axis (2 or 3).

    Returns:
        float32 (d, *patch_shape), d = len(patch_shape): volume coordinates of every patch voxel.
    """
    dims = len(patch_shape)
    ramps = [np.arange(size, dtype=np.float32) - (size - 1) / 2.0 for size in patch_shape]
    grid = np.empty((dims, *patch_shape), dtype=np.float32)
    for row in range(dims):
        grid[row] = centre[row]
        for column, ramp in enumerate(ramps):
            broadcast = [-1 if axis == column else 1 for axis in range(dims)]
            grid[row] += (linear_map[row, column] * ramp).reshape(broadcast)
    return grid


def rotation_and_scaling(angles: Sequence[float], scale: float) -> np.ndarray:
    """The matrix batchgenerators applies to grid coordinates: ``scale * R.T``, ``R = Rx Ry Rz`` (3x3).

    Matches ``rotate_coords_3d`` followed by ``scale_coords``
    (``batchgenerators.augmentations.utils``); angles in radians. With one
    angle, the 2x2 matrix of ``rotate_coords_2d``.
    """
    if len(angles) == 1:
        return scale * create_matrix_rotation_2d(angles[0]).T
    matrix = create_matrix_rotation_x_3d(angles[0], np.identity(3))
    matrix = create_matrix_rotation_y_3d(angles[1], matrix)
    matrix = create_matrix_rotation_z_3d(angles[2], matrix)
    return scale * matrix.T


def resample(
    image: np.ndarray, label: np.ndarray, grid: np.ndarray, fill: Union[float, np.ndarray], order: int
) -> tuple[np.ndarray, np.ndarray]:
    """Image and label at the volume coordinates ``grid``, reading only the region they cover.

    Args:
        image: (D, H, W, M) volume (a read-only memmap is fine).
        label: (D, H, W) integer label map.
        grid: float32 (3, d, h, w) (2D: (2, h, w)) voxel coordinates into the volume; may
            reach outside it. Modified in place (shifted into the region read).
        fill: image value outside the volume, scalar or one per channel;
            the label is 0 there.
        order: spline order for the image; the label uses 0 (nearest), so
            no label value is ever invented between two others.

    Returns:
        float32 (d, h, w, M) and the label's dtype (d, h, w).
    """
    flat = grid.reshape(len(grid), -1)
    low = np.floor(flat.min(axis=1)).astype(np.int64) - _SPLINE_MARGIN
    high = np.ceil(flat.max(axis=1)).astype(np.int64) + _SPLINE_MARGIN + 1
    region = crop_with_padding(image, low, high - low, fill)
    region_label = crop_with_padding(label, low, high - low, 0)
    grid -= low.astype(np.float32).reshape(-1, *(1,) * (grid.ndim - 1))
    patch = np.empty(grid.shape[1:] + image.shape[-1:], dtype=np.float32)
    for channel in range(image.shape[-1]):
        values = region[..., channel]
        if order > 1:  # B-spline coefficients in float32, without scipy's own padding: 20 % faster
            values = ndimage.spline_filter(values, order, output=np.float32, mode="mirror")
        patch[..., channel] = ndimage.map_coordinates(
            values, grid, order=order, mode="mirror", prefilter=False, output=np.float32
        )
    patch_label = ndimage.map_coordinates(region_label, grid, order=0, mode="nearest", output=region_label.dtype)
    return patch, patch_label


def _batchgenerators_transforms(settings: AugmentationSettings, spatial_dims: int = 3) -> Optional[Compose]:
    """Mirroring and intensity transforms with MIScnn's options, those with a probability > 0."""
    transforms = []
    mirror_axes = tuple(axis for axis in settings.mirroring.axes if axis < spatial_dims)
    if settings.mirroring.probability > 0 and mirror_axes:
        transforms.append(MirrorTransform(axes=mirror_axes, p_per_sample=settings.mirroring.probability))
    if settings.contrast.probability > 0:
        transforms.append(
            ContrastAugmentationTransform(
                settings.contrast.range,
                preserve_range=True,
                per_channel=True,
                p_per_sample=settings.contrast.probability,
            )
        )
    if settings.brightness.probability > 0:
        transforms.append(
            BrightnessMultiplicativeTransform(
                settings.brightness.range, per_channel=True, p_per_sample=settings.brightness.probability
            )
        )
    if settings.gamma.probability > 0:
        transforms.append(
            GammaTransform(
                settings.gamma.range,
                invert_image=False,
                per_channel=True,
                retain_stats=True,
                p_per_sample=settings.gamma.probability,
            )
        )
    if settings.noise.probability > 0:
        transforms.append(GaussianNoiseTransform(settings.noise.variance, p_per_sample=settings.noise.probability))
    return Compose(transforms) if transforms else None


class PatchAugmenter:
    """Cuts one augmented patch out of a volume; thread-safe, a pure function of the Generator's seed.

    Args:
        settings: probabilities and ranges of the transforms.
        spatial_dims: 3 for volumes (D, H, W, M), 2 for images (H, W, M).
    """

    def __init__(self, settings: AugmentationSettings, spatial_dims: int = 3):
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.settings = settings
        self.spatial_dims = spatial_dims
        self._transforms = _batchgenerators_transforms(settings, spatial_dims)

    def extract(
        self,
        image: np.ndarray,
        label: np.ndarray,
        start: Sequence[int],
        patch_shape: Sequence[int],
        fill: Union[float, np.ndarray],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The patch whose unaugmented voxels are ``start : start + patch_shape``, augmented.

        Spatial transforms turn the grid about the patch's centre and read
        from the volume around it; outside the volume the image is ``fill``
        and the label 0.

        Args:
            image: (D, H, W, M), float32 (a read-only memmap is fine).
            label: (D, H, W) integer label map.
            start: first voxel of the patch per axis (may be negative: padding).
            patch_shape: (d, h, w).
            fill: image value outside the volume, scalar or one per channel.
            rng: the only source of randomness.

        Returns:
            ``(image_patch, label_patch)``: float32 (d, h, w, M) and the
            label's dtype (d, h, w), labels never interpolated.
        """
        centre = np.asarray(start) + (np.asarray(patch_shape) - 1) / 2.0
        grid = self._spatial_grid(patch_shape, centre, rng)
        if grid is None:
            patch = crop_with_padding(image, start, patch_shape, fill).astype(np.float32, copy=False)
            patch_label = crop_with_padding(label, start, patch_shape, 0)
        else:
            patch, patch_label = resample(image, label, grid, fill, self.settings.interpolation_order)
        if self._transforms is None:
            return patch, patch_label
        seed = int(rng.integers(2**32))
        data = {"data": np.ascontiguousarray(np.moveaxis(patch, -1, 0)[None]), "seg": patch_label[None, None].copy()}
        with batchgenerators_random.thread_random_state(seed):
            data = self._transforms(**data)
        return np.moveaxis(data["data"][0], 0, -1), data["seg"][0, 0]

    def _spatial_grid(
        self, patch_shape: Sequence[int], centre: np.ndarray, rng: np.random.Generator
    ) -> Optional[np.ndarray]:
        """Volume coordinates of the patch voxels after elastic deformation, rotation and scaling.

        None when the draw applies none of them. As in batchgenerators'
        ``augment_spatial``: ``scale * R.T @ (mesh + displacement) + centre``.
        """
        settings = self.settings
        deform = rng.random() < settings.elastic.probability
        if deform:
            alpha = rng.uniform(*settings.elastic.alpha)
            sigma = rng.uniform(*settings.elastic.sigma)
        ranges = settings.rotation.degrees[: 1 if len(patch_shape) == 2 else 3]
        angles, scale = (0.0,) * len(ranges), 1.0
        rotate = rng.random() < settings.rotation.probability
        if rotate:
            angles = tuple(rng.uniform(*np.radians(bounds)) for bounds in ranges)
        rescale = rng.random() < settings.scaling.probability
        if rescale:
            low, high = settings.scaling.range
            below_one = rng.random() < 0.5 and low < 1
            scale = rng.uniform(low, 1.0) if below_one else rng.uniform(max(low, 1.0), high)
        if not (deform or rotate or rescale):
            return None
        linear_map = rotation_and_scaling(angles, scale).astype(np.float32)
        grid = transformed_grid(patch_shape, linear_map, centre)
        if deform:
            grid += elastic_displacement(patch_shape, alpha, sigma, rng, linear_map)
        return grid
