"""A BraTS20-like brain MRI phantom: four co-registered modalities and the tumour labels.

Drawn in millimetres (x right -> left, y anterior -> posterior, z up, the
BraTS array axes): a skull-stripped brain (zeros outside) of white matter,
a folded grey-matter cortex and two CSF ventricles with bright choroid
plexus in T1-CE (an enhancing distractor), and a glioma:

- label 2 oedema: an irregular region around the core (bright in T2 and FLAIR);
- label 4 enhancing tumour: a 2.5-6 mm rim, bright in T1-CE only;
- label 1 necrotic core inside the rim (dark in T1 and T1-CE, bright in T2).

A share of cases (``with_enhancing=False``) are non-enhancing: the core is
label 1 throughout, no label 4, as in low-grade gliomas (BraTS20 has such cases).
Intensities follow each sequence's usual tissue contrast, scaled by a smooth
bias field and a fine tissue texture (shared by the co-registered sequences),
with Gaussian noise, stored as int16.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.phantom_shapes import Grid

MODALITIES = ("flair", "t1", "t1ce", "t2")
#: Mean intensity per tissue and modality (arbitrary MR units, like BraTS' int16 volumes).
TISSUE_INTENSITY = {
    #                 flair  t1   t1ce   t2
    "white_matter": (450, 800, 800, 400),
    "grey_matter": (550, 600, 620, 600),
    "csf": (150, 250, 260, 1500),
    "choroid_plexus": (300, 500, 1300, 900),
    "oedema": (1100, 550, 560, 1200),
    "enhancing": (900, 700, 1400, 900),
    "necrosis": (500, 300, 320, 1400),
}


def brats20_affine(spacing: tuple[float, float, float], shape: tuple[int, int, int]) -> np.ndarray:
    """BraTS20's affine: diag(-1, -1, 1) mm with the y origin at the far edge (orientation L, P, S)."""
    return np.array(
        [
            [-spacing[0], 0.0, 0.0, 0.0],
            [0.0, -spacing[1], 0.0, (shape[1] - 1) * spacing[1]],
            [0.0, 0.0, spacing[2], 0.0],
            [0.0, 0.0, 0.0, 1.0],
        ]
    )


def brats20_phantom(
    rng: np.random.Generator,
    shape: tuple[int, int, int],
    spacing: tuple[float, float, float],
    with_enhancing: bool = True,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Draw one case: ``{modality: int16 volume}`` and the labels (uint8: 0, 1, 2, 4).

    ``shape`` is (x, y, z) as in BraTS ((240, 240, 155) at 1 mm); the brain
    fills the field of view as in the real data.
    """
    grid = Grid(shape, spacing)
    extent = np.array(grid.extent)
    brain_radii = extent * [0.29, 0.36, 0.38] * rng.uniform(0.92, 1.05, size=3)
    brain_radius = grid.ellipsoid_radius((0, 0, 0), brain_radii)
    folds = grid.smooth_noise(rng, 6)
    brain = brain_radius + 0.03 * folds < 1.0
    scale = brain_radii[0] / 68.0

    code = {name: index for index, name in enumerate(TISSUE_INTENSITY)}
    tissue = np.full(grid.shape, code["white_matter"], dtype=np.uint8)
    tissue[brain_radius + 0.06 * folds > 1.0 - 0.07] = code["grey_matter"]
    for side in (-1, 1):
        tissue[grid.ellipsoid((side * 9 * scale, -5 * scale, 8 * scale), np.array([5, 25, 9]) * scale)] = code["csf"]
        plexus = grid.ellipsoid((side * 9 * scale, 12 * scale, 6 * scale), np.array([2.5, 4, 3]) * scale)
        tissue[plexus] = code["choroid_plexus"]

    label = np.zeros(grid.shape, dtype=np.uint8)
    hemisphere = rng.choice([-1, 1])
    centre = np.array([hemisphere * rng.uniform(20, 40), rng.uniform(-40, 40), rng.uniform(-15, 25)]) * scale
    core_mm = rng.uniform(10, 25) * scale
    core_radius = grid.ellipsoid_radius(centre, core_mm * rng.uniform(0.8, 1.2, size=3)) + 0.12 * grid.smooth_noise(
        rng, 6
    )
    oedema_radius = core_radius * core_mm / (core_mm + rng.uniform(8, 25) * scale) + 0.1 * grid.smooth_noise(rng, 10)
    oedema = (oedema_radius < 1.0) & brain
    label[oedema] = 2
    tissue[oedema] = code["oedema"]
    core = (core_radius < 1.0) & brain
    if with_enhancing:
        rim_mm = rng.uniform(2.5, 6)
        necrosis = core & (core_radius < 1.0 - rim_mm / core_mm)
        label[core] = 4
        tissue[core] = code["enhancing"]
    else:
        necrosis = core
    label[necrosis] = 1
    tissue[necrosis] = code["necrosis"]

    modulation = (1.0 + 0.08 * grid.smooth_noise(rng, 60)) * (1.0 + 0.05 * grid.smooth_noise(rng, 4))
    volumes = {}
    for channel, modality in enumerate(MODALITIES):
        means = np.array([intensity[channel] for intensity in TISSUE_INTENSITY.values()], dtype=np.float32)
        volume = means[tissue] * modulation
        volume += rng.normal(0, 0.03 * means[0], size=grid.shape).astype(np.float32)
        volume = np.where(brain, np.clip(volume, 1, None), 0)
        volumes[modality] = np.rint(volume).astype(np.int16)
    return volumes, label
