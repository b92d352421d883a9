"""Soft cloud blobs, their shadows and the ``MSK_CLDPRB`` cloud probability band.

A pixel is "cloudy" when ``MSK_CLDPRB > 0``; this includes the faint halo around each
cloud and its shadow (low probabilities, 1..15). Every covered pixel is made clear in
at least one scene.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tiler.tools.demo.grid import (
    LR_FACTOR,
    LR_PAD,
    MASK_NODATA,
    BoolArray,
    FloatArray,
    Grid,
    smooth_noise,
)
from tiler.tools.demo.scenes import Scene, footprint

logger = logging.getLogger(__name__)

__all__ = ["CloudPlan", "Clouds", "clear_somewhere", "cloud_plan", "scene_clouds"]

CloudPlan = tuple[FloatArray, FloatArray]
"""Coarse cloud and shadow fields of a scene, positive where cloudy."""


@dataclass(frozen=True)
class Clouds:
    """One scene's clouds on the full grid.

    Attributes:
        valid: Pixels inside the footprint.
        opacity: Cloud opacity in [0, 1].
        thickness: Cloud thickness in [0, 1] (brightness of the cloud).
        shadow: Shadow strength in [0, 1].
        probability: ``MSK_CLDPRB`` values (255 outside the footprint).
    """

    valid: BoolArray
    opacity: FloatArray
    thickness: FloatArray
    shadow: FloatArray
    probability: npt.NDArray[np.uint8]


# Shadows fall north-west of the clouds (sun in the south-east at 10:50 local time).
_SHADOW_SHIFT = (5, 4)  # coarse pixels: rows to the south, columns to the east


def cloud_plan(scene: Scene, grid: Grid) -> CloudPlan:
    """Coarse cloud and shadow fields of a scene, positive where cloudy.

    Args:
        scene: The scene.
        grid: The demo grid.

    Returns:
        Cloud and shadow fields on the coarse grid, offset so that the share of the
        footprint where either is positive is the scene's cloud target.
    """
    rng = np.random.default_rng(scene.seed)
    lr = grid.coarse
    n = lr + 2 * LR_PAD
    field = smooth_noise(rng, n, scene.cloud_scale, 1.9)
    p = LR_PAD
    sr, sc = _SHADOW_SHIFT
    cloud_lr = field[p : p + lr, p : p + lr]
    shadow_lr = field[p + sr : p + sr + lr, p + sc : p + sc + lr]
    if scene.cloud_target >= 100.0:
        threshold = float(cloud_lr.min()) - 0.05
    else:
        centres = (np.arange(lr, dtype=np.float32) + 0.5) * LR_FACTOR
        valid_lr = footprint(scene, grid, centres[:, None], centres[None, :])
        either = np.maximum(cloud_lr, shadow_lr)[valid_lr]
        threshold = float(np.quantile(either, 1.0 - scene.cloud_target / 100.0))
    offset = np.float32(threshold)
    return (
        np.ascontiguousarray(cloud_lr - offset),
        np.ascontiguousarray(shadow_lr - offset),
    )


def scene_clouds(scene: Scene, plan: CloudPlan, grid: Grid) -> Clouds:
    """Cloud, shadow and cloud probability fields of a scene on the full grid.

    Args:
        scene: The scene.
        plan: The scene's coarse fields, from :func:`cloud_plan`.
        grid: The demo grid.

    Returns:
        The fields.
    """
    rows = (np.arange(grid.size, dtype=np.float32) + 0.5)[:, None]
    cols = (np.arange(grid.size, dtype=np.float32) + 0.5)[None, :]
    valid = footprint(scene, grid, rows, cols)
    edge = np.float32(scene.edge_width)
    cloud = grid.upsample(plan[0])
    shade = grid.upsample(plan[1])
    opacity = np.clip(cloud / edge, 0.0, 1.0)
    thickness = np.clip(cloud / (3.0 * edge), 0.0, 1.0)
    shadow = np.clip(shade / edge, 0.0, 1.0)
    # Probability 1..100 on clouds, 1..15 on shadows, exactly 0 elsewhere.
    prob = np.where(cloud > 0, np.maximum(np.ceil(opacity * 100.0), 1.0), 0.0)
    prob = np.maximum(prob, np.where(shade > 0, np.maximum(np.ceil(shadow * 15.0), 1.0), 0.0))
    probability = np.where(valid, prob, MASK_NODATA).astype(np.uint8)
    return Clouds(
        valid=valid,
        opacity=opacity,
        thickness=thickness,
        shadow=shadow,
        probability=probability,
    )


def clear_somewhere(probabilities: list[npt.NDArray[np.uint8]]) -> list[BoolArray]:
    """Make every covered pixel clear in at least one scene.

    Where all scenes covering a pixel are cloudy, the least cloudy of them is cleared.
    With the built-in recipes this touches no or very few pixels; it is a guarantee.

    Args:
        probabilities: ``MSK_CLDPRB`` of every scene (255 = not covered); modified.

    Returns:
        Per scene, the pixels that were cleared.
    """
    stack = np.stack(probabilities)
    best = stack.argmin(axis=0)
    low = np.take_along_axis(stack, best[None], axis=0)[0]
    fix = (low > 0) & (low < MASK_NODATA)
    cleared = []
    for i, prob in enumerate(probabilities):
        mask = fix & (best == i)
        prob[mask] = 0
        cleared.append(mask)
    if fix.any():
        logger.debug("demo: cleared %d always-cloudy pixels", int(fix.sum()))
    return cleared
