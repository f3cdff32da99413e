"""Phantom CVC-ClinicDB, DRIVE and BUS2017 images: what each modality looks like, at small cost.

Each generator returns 8-bit arrays as the publisher stores them (RGB or
grey image, binary mask) and is a pure function of its Generator. The
pictures imitate what makes each task hard: a pale, bumpy polyp on mucosa
under uneven light with specular highlights (CVC-ClinicDB); thin dark
vessels branching from the optic disc inside a circular field of view, a few
percent of the pixels (DRIVE); a dark, irregular lesion in speckle with
posterior shadowing (BUS2017).
"""

from __future__ import annotations

import numpy as np

from pipeline.console import lazy_module

ndimage = lazy_module("scipy.ndimage")  # loaded on first use, so that make-phantoms --help answers at once


def _smooth_noise(rng: np.random.Generator, shape, sigma: float) -> np.ndarray:
    """Zero-mean, unit-std smooth random field."""
    field = ndimage.gaussian_filter(rng.normal(size=shape), sigma, mode="reflect")
    return (field - field.mean()) / (field.std() or 1.0)


def _coordinates(shape) -> tuple[np.ndarray, np.ndarray]:
    rows, columns = np.mgrid[0 : shape[0], 0 : shape[1]]
    return rows.astype(np.float32), columns.astype(np.float32)


def _irregular_blob(
    rng: np.random.Generator, shape, centre, radii, angle: float, roughness: float
) -> tuple[np.ndarray, np.ndarray]:
    """A rotated ellipse with a wobbly border: (mask, normalised radius r where r < 1 is inside)."""
    rows, columns = _coordinates(shape)
    dy, dx = rows - centre[0], columns - centre[1]
    u = (np.cos(angle) * dx + np.sin(angle) * dy) / radii[1]
    v = (-np.sin(angle) * dx + np.cos(angle) * dy) / radii[0]
    theta = np.arctan2(v, u)
    wobble = sum(rng.normal(0, roughness / k) * np.cos(k * theta + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 5))
    radius = np.hypot(u, v) / (1 + wobble)
    return radius < 1, radius


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def colonoscopy_phantom(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """An RGB colonoscopy frame (H, W, 3) uint8 and its polyp mask (H, W) 0/255."""
    height, width = shape
    rows, columns = _coordinates(shape)
    light = (rng.uniform(0.3, 0.7) * height, rng.uniform(0.3, 0.7) * width)
    distance = np.hypot((rows - light[0]) / height, (columns - light[1]) / width)
    illumination = np.clip(1.15 - 1.3 * distance**1.5, 0.15, 1.0)
    texture = 1 + 0.08 * _smooth_noise(rng, shape, max(1.0, height / 40))
    lumen, _ = _irregular_blob(
        rng,
        shape,
        (rng.uniform(0.2, 0.8) * height, rng.uniform(0.2, 0.8) * width),
        (0.12 * height, 0.12 * width),
        rng.uniform(0, np.pi),
        0.1,
    )
    mucosa = np.array([200.0, 95.0, 75.0]) * rng.uniform(0.85, 1.1, size=3)
    image = mucosa * (illumination * texture)[..., None]
    image[lumen] *= 0.25
    radii = (rng.uniform(0.1, 0.22) * height, rng.uniform(0.1, 0.22) * width)
    margin = np.array(radii) + 4
    centre = (rng.uniform(margin[0], height - margin[0]), rng.uniform(margin[1], width - margin[1]))
    polyp, radius = _irregular_blob(rng, shape, centre, radii, rng.uniform(0, np.pi), 0.08)
    bump = np.clip(1 - radius**2, 0, 1)  # dome shading: brighter towards the top of the polyp
    tint = np.array([1.15, 1.25, 1.2]) * rng.uniform(0.95, 1.05)
    image[polyp] *= tint * (0.85 + 0.35 * bump[polyp])[:, None]
    rim = polyp ^ ndimage.binary_erosion(polyp, iterations=max(1, height // 60))
    image[rim] *= 0.75
    for _ in range(rng.integers(2, 6)):  # specular highlights
        spot = (rng.uniform(0, height), rng.uniform(0, width))
        glare = np.exp(-((rows - spot[0]) ** 2 + (columns - spot[1]) ** 2) / (2 * (0.01 * height + 0.5) ** 2))
        image += 255 * glare[..., None]
    image += rng.normal(0, 3, size=image.shape)
    border = max(1, height // 48)
    image[:border], image[-border:], image[:, :border], image[:, -border:] = 0, 0, 0, 0
    mask = polyp.copy()
    mask[:border], mask[-border:], mask[:, :border], mask[:, -border:] = False, False, False, False
    return _to_uint8(image), mask.astype(np.uint8) * 255


def _vessel_tree(rng: np.random.Generator, shape, disc, fov: np.ndarray, count: int, width: float) -> np.ndarray:
    """Binary vessels: random walks from the optic disc that branch and thin out."""
    vessels = np.zeros(shape, bool)
    step = max(1.0, shape[0] / 150)
    stack = [(disc[0], disc[1], angle, width, 0) for angle in rng.uniform(0, 2 * np.pi, size=count)]
    while stack:
        y, x, angle, thickness, generation = stack.pop()
        for _ in range(int(rng.integers(40, 120) * shape[0] / 300 + 10)):
            angle += rng.normal(0, 0.12)
            y, x = y + step * np.sin(angle), x + step * np.cos(angle)
            iy, ix = int(round(y)), int(round(x))
            if not (0 <= iy < shape[0] and 0 <= ix < shape[1]) or not fov[iy, ix]:
                break
            half = thickness / 2
            vessels[max(0, int(iy - half)) : int(iy + half) + 1, max(0, int(ix - half)) : int(ix + half) + 1] = True
            if generation < 3 and rng.random() < 0.03:
                stack.append(
                    (
                        y,
                        x,
                        angle + rng.choice([-1, 1]) * rng.uniform(0.4, 0.9),
                        max(0.6, thickness * 0.7),
                        generation + 1,
                    )
                )
    return vessels & fov


def fundus_phantom(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An RGB fundus photograph (H, W, 3), its vessel mask and its field-of-view mask (H, W) 0/255."""
    height, width = shape
    rows, columns = _coordinates(shape)
    centre = (height / 2, width / 2)
    fov_radius = 0.46 * min(height, width)
    distance = np.hypot(rows - centre[0], columns - centre[1]) / fov_radius
    fov = distance < 1
    side = rng.choice([-1, 1])
    disc = (centre[0] + rng.uniform(-0.1, 0.1) * height, centre[1] + side * rng.uniform(0.45, 0.6) * fov_radius)
    disc_distance = np.hypot(rows - disc[0], columns - disc[1]) / (0.08 * min(height, width))
    vessels = _vessel_tree(
        rng, shape, disc, fov, count=int(rng.integers(4, 7)), width=max(1.0, min(height, width) / 110)
    )
    background = np.array([205.0, 85.0, 35.0]) * rng.uniform(0.9, 1.1, size=3)
    shading = (1 - 0.35 * distance**2) * (1 + 0.06 * _smooth_noise(rng, shape, max(1.0, height / 30)))
    image = background * shading[..., None]
    image += np.array([50.0, 90.0, 40.0]) * np.exp(-(disc_distance**2))[..., None]
    darkening = ndimage.gaussian_filter(vessels.astype(np.float32), 0.5)
    image *= (1 - 0.45 * np.clip(darkening * 1.5, 0, 1))[..., None]
    image += rng.normal(0, 4, size=image.shape)
    image[~fov] = rng.uniform(0, 4, size=3)
    return _to_uint8(image), vessels.astype(np.uint8) * 255, fov.astype(np.uint8) * 255


def ultrasound_phantom(rng: np.random.Generator, shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A grey breast ultrasound image (H, W) uint8 and its lesion mask (H, W) 0/255."""
    height, width = shape
    rows, _ = _coordinates(shape)
    depth = rows / height
    skin = np.exp(-(((depth - 0.05) / 0.03) ** 2))
    tissue = 0.5 + 0.18 * _smooth_noise(rng, shape, (max(1.0, height / 50), max(1.0, width / 15)))
    echo = (0.35 + 0.9 * skin + tissue * (1 - 0.5 * depth)).clip(0.05)
    radii = (rng.uniform(0.1, 0.22) * height, rng.uniform(0.12, 0.3) * width)
    centre = (rng.uniform(0.3, 0.65) * height, rng.uniform(0.25, 0.75) * width)
    lesion, radius = _irregular_blob(rng, shape, centre, radii, rng.uniform(-0.3, 0.3), rng.uniform(0.03, 0.15))
    echo = np.where(lesion, echo * rng.uniform(0.15, 0.3), echo)
    below = (rows > centre[0]) & (np.abs(_coordinates(shape)[1] - centre[1]) < radii[1] * 0.8) & ~lesion
    echo[below] *= rng.choice([rng.uniform(0.5, 0.75), rng.uniform(1.15, 1.35)])  # shadow or enhancement
    speckle = rng.rayleigh(1.0, size=shape) / np.sqrt(np.pi / 2)
    image = 150 * ndimage.gaussian_filter(echo * speckle, 0.6)
    return _to_uint8(image), lesion.astype(np.uint8) * 255
