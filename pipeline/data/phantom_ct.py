"""A KiTS19-like abdominal CT phantom: HU values, anatomy and label map.

Drawn in millimetres around the volume's centre (z along the slices, y
anterior -> posterior, x across the patient):

- air outside the body (-1000 HU), subcutaneous fat (-100) around a soft
  tissue abdomen (40, with smooth texture), a liver (60) and gas in the bowel;
- the spine (vertebral bodies ~300 HU cancellous in a ~800 HU cortical
  shell, discs ~80 HU), a contrast-filled aorta (~250) and vena cava (~160);
- two kidneys in perirenal fat, contrast-enhanced (nephrographic phase):
  cortex ~190 HU around a darker medulla (~130) and a hilar sinus of fat;
- one tumour (label 2), hypodense and heterogeneous (20-60 HU), exophytic
  (half outside the kidney) in three cases out of four, else inside it;
- Gaussian noise (sigma 8-20 HU).

Every size is drawn at random per case within anatomical ranges, so cases
differ like patients do. Kidney and tumour occupy ~1 % and ~0.1 % of a
full-size volume's voxels, as in KiTS19.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.phantom_shapes import Grid

AIR, FAT, SOFT_TISSUE, LIVER = -1000.0, -100.0, 40.0, 60.0


def kits19_affine(spacing: tuple[float, float, float]) -> np.ndarray:
    """KiTS19's affine: array axes (slices, H, W) -> world (-z, -y, -x), i.e. orientation I, P, L."""
    slice_mm, row_mm, column_mm = spacing
    return np.array(
        [[0.0, 0.0, -column_mm, 0.0], [0.0, -row_mm, 0.0, 0.0], [-slice_mm, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
    )


def kits19_phantom(
    rng: np.random.Generator, shape: tuple[int, int, int], spacing: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one case: CT (int16, HU) and its labels (uint8: 0 background, 1 kidney, 2 tumour).

    ``shape`` is (slices, H, W) and ``spacing`` its voxel size in mm. The body
    fills about 80 % of the in-plane field of view, as in clinical scans.
    """
    grid = Grid(shape, spacing)
    _, field_h, field_w = grid.extent
    body_w = field_w * rng.uniform(0.36, 0.42)  # semi-axes of the body
    body_h = min(body_w * rng.uniform(0.70, 0.82), field_h * 0.42)
    scale = body_w / 160.0  # organ sizes follow the patient's

    image = np.full(grid.shape, AIR, dtype=np.float32)
    body = grid.ellipsoid((0, 0, 0), (1e6, body_h, body_w))
    image[body] = FAT
    fat_mm = rng.uniform(10, 25) * scale
    abdomen = grid.ellipsoid((0, 0, 0), (1e6, body_h - fat_mm, body_w - fat_mm))
    image[abdomen] = SOFT_TISSUE + 8 * grid.smooth_noise(rng, 30)[abdomen]

    liver_side = rng.choice([-1, 1])  # patient's right, either image side
    liver = abdomen & grid.ellipsoid(
        (rng.uniform(40, 80) * scale, -0.1 * body_h, liver_side * 0.45 * body_w),
        (90 * scale, 0.6 * body_h, 0.45 * body_w),
    )
    image[liver] = LIVER + 6 * grid.smooth_noise(rng, 20)[liver]
    gas = abdomen & (grid.smooth_noise(rng, 15) > 2.2) & (grid.y < 0.1 * body_h)
    image[gas] = AIR + 50

    # Spine and great vessels, posterior on the midline.
    spine_y = body_h - fat_mm - 35 * scale
    vertebra = grid.ellipsoid((0, spine_y, 0), (1e6, 15 * scale, 20 * scale))
    image[vertebra] = 800
    image[grid.ellipsoid((0, spine_y, 0), (1e6, 12 * scale, 17 * scale))] = 300
    process = grid.ellipsoid((0, spine_y + 25 * scale, 0), (1e6, 14 * scale, 5 * scale))
    image[process] = 700
    vertebra_mm = rng.uniform(28, 34)
    disc = vertebra & (np.abs((grid.z + rng.uniform(0, vertebra_mm)) % vertebra_mm - vertebra_mm / 2) < 3.5)
    image[disc] = 80
    image[grid.ellipsoid((0, spine_y - 25 * scale, 12 * scale), (1e6, 10 * scale, 10 * scale))] = rng.uniform(200, 300)
    image[grid.ellipsoid((0, spine_y - 25 * scale, -20 * scale), (1e6, 11 * scale, 13 * scale))] = rng.uniform(130, 180)

    label = np.zeros(grid.shape, dtype=np.uint8)
    kidneys = []
    for side in (-1, 1):
        radii = np.array([rng.uniform(45, 58), rng.uniform(22, 28), rng.uniform(24, 30)]) * [1, scale, scale]
        centre = np.array(
            [
                rng.uniform(-15, 15),
                spine_y - rng.uniform(5, 15) * scale,
                side * (rng.uniform(50, 62) * scale + radii[2]),
            ]
        )
        tilt = side * rng.uniform(15, 35)
        fat_radii = radii + [8, 8 * scale, 8 * scale]
        region, box = grid.box(centre, [fat_radii.max()] * 3)
        patch, patch_label = image[region], label[region]
        perirenal = box.ellipsoid(centre, fat_radii, tilt) & abdomen[region]
        patch[perirenal & (patch < 150)] = FAT + 20
        radius = box.ellipsoid_radius(centre, radii, tilt)
        sinus = box.ellipsoid(centre + [0, 0, -side * 0.55 * radii[2]], radii * [0.55, 0.45, 0.5], tilt)
        kidney = (radius < 1.0) & ~sinus
        cortex_hu, medulla_hu = rng.uniform(170, 210), rng.uniform(110, 150)
        parenchyma = np.where(radius > rng.uniform(0.72, 0.8), cortex_hu, medulla_hu + 15 * box.smooth_noise(rng, 6))
        patch[kidney] = parenchyma[kidney]
        patch[(radius < 1.0) & sinus] = FAT + 40
        patch_label[kidney] = 1
        kidneys.append((centre, radii))

    centre, radii = kidneys[rng.integers(2)]
    direction = rng.standard_normal(3)
    direction[2] = abs(direction[2]) * (1 if centre[2] > 0 else -1)  # grows laterally, away from the hilum
    direction /= np.linalg.norm(direction)
    depth = rng.uniform(0.85, 1.05) if rng.random() < 0.75 else rng.uniform(0.2, 0.5)
    tumour_centre = centre + direction * radii * depth
    tumour_radii = rng.uniform(10, 30) * max(scale, 0.8) * rng.uniform(0.8, 1.2, size=3)
    region, box = grid.box(tumour_centre, [1.5 * tumour_radii.max()] * 3)
    tumour_radius = box.ellipsoid_radius(tumour_centre, tumour_radii)
    tumour = (tumour_radius + 0.15 * box.smooth_noise(rng, 8) < 1.0) & abdomen[region]
    texture = rng.uniform(30, 50) + 12 * box.smooth_noise(rng, 5) - 15 * (tumour_radius < 0.5)
    image[region][tumour] = texture[tumour]
    label[region][tumour] = 2

    image += rng.normal(0, rng.uniform(8, 20), size=grid.shape).astype(np.float32)
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16), label
