"""Shapes and textures the phantom generators draw with, in millimetres.

Anatomy is described in physical units and rendered on a voxel grid, so the
same phantom can be drawn at any shape and spacing (demo or full size).
"""

from __future__ import annotations

import numpy as np


class Grid:
    """Voxel-centre coordinates (mm) of a 3-D grid, centred on the volume's middle.

    Coordinates broadcast: ``z`` is array axis 0 (D, 1, 1), ``y`` axis 1
    (1, H, 1), ``x`` axis 2 (1, 1, W), named after KiTS19's (slices, H, W).
    Centres and radii are given in the same (axis 0, 1, 2) order.
    """

    def __init__(
        self,
        shape: tuple[int, int, int],
        spacing: tuple[float, float, float],
        start: tuple[int, int, int] = (0, 0, 0),
        volume_shape: tuple[int, int, int] | None = None,
    ):
        self.shape = tuple(int(n) for n in shape)
        self.spacing = tuple(float(s) for s in spacing)
        self.start = tuple(int(i) for i in start)
        self.volume_shape = self.shape if volume_shape is None else tuple(volume_shape)
        self.extent = tuple(n * s for n, s in zip(self.shape, self.spacing))
        axes = [
            ((np.arange(first, first + n, dtype=np.float32) + 0.5) * s - total * s / 2)
            for first, n, s, total in zip(self.start, self.shape, self.spacing, self.volume_shape)
        ]
        self.z = axes[0][:, None, None]
        self.y = axes[1][None, :, None]
        self.x = axes[2][None, None, :]

    def box(self, centre, half_size) -> tuple[tuple[slice, slice, slice], "Grid"]:
        """The part of the volume within ``centre +- half_size`` (mm): its index and its grid.

        Drawing a small structure there instead of on the whole volume saves most of the work.
        """
        region = []
        for c, h, n, s in zip(centre, half_size, self.volume_shape, self.spacing):
            low = int(np.clip(np.floor((c - h) / s + n / 2), 0, n - 1))
            high = int(np.clip(np.ceil((c + h) / s + n / 2), low + 1, n))
            region.append(slice(low, high))
        return tuple(region), Grid(
            [r.stop - r.start for r in region], self.spacing, [r.start for r in region], self.volume_shape
        )

    def ellipsoid_radius(self, centre, radii, rotation_deg: float = 0.0) -> np.ndarray:
        """Normalised radius: < 1 inside the ellipsoid (z, y, x semi-axes ``radii``), 1 on its surface.

        ``rotation_deg`` turns the ellipsoid in the (y, x) plane.
        """
        dz = (self.z - centre[0]) / radii[0]
        y, x = self.y - centre[1], self.x - centre[2]
        if rotation_deg:
            angle = np.deg2rad(rotation_deg)
            y, x = np.cos(angle) * y - np.sin(angle) * x, np.sin(angle) * y + np.cos(angle) * x
        return np.sqrt(dz**2 + (y / radii[1]) ** 2 + (x / radii[2]) ** 2)

    def ellipsoid(self, centre, radii, rotation_deg: float = 0.0) -> np.ndarray:
        return self.ellipsoid_radius(centre, radii, rotation_deg) < 1.0

    def smooth_noise(self, rng: np.random.Generator, correlation_mm: float) -> np.ndarray:
        """Zero-mean, unit-std random field, smooth over about ``correlation_mm``.

        A sum of Gaussian bumps (sigma = ``correlation_mm / 2``, at least a
        voxel) on a lattice of the same pitch with random weights. The bumps are
        separable, so the sum is three small matrix products: cheap even for
        full-size volumes.
        """
        weights = []
        for coordinates, spacing in zip((self.z.ravel(), self.y.ravel(), self.x.ravel()), self.spacing):
            sigma = max(correlation_mm / 2, spacing)
            nodes = np.arange(coordinates.min() - 2 * sigma, coordinates.max() + 3 * sigma, sigma, dtype=np.float32)
            weights.append(np.exp(-0.5 * ((coordinates[:, None] - nodes[None, :]) / sigma) ** 2))
        lattice = rng.standard_normal([weight.shape[1] for weight in weights]).astype(np.float32)
        field = np.einsum("ak,bl,cm,klm->abc", *weights, lattice, optimize=True)
        field -= field.mean()
        return field / max(float(field.std()), 1e-6)
