"""Detector noise and defects of a synthetic exposure: photon and read noise, hot pixels."""

import logging

import numpy as np

__all__ = [
    "add_hot_pixels",
    "photon_noise",
]

log = logging.getLogger(__name__)


def photon_noise(scene, painted, signal, rng, floor):
    """
    Poisson noise on all signal plus Gaussian read noise, in electrons.

    The gain (electrons per DN/s) puts the median background of the background
    slitlets' pixels at ``scene.sky_electrons``. VAR_POISSON is estimated from
    each pixel's own value, as ramp fitting does (0 where it is negative), so
    the variance is correlated with the noise; VAR_RNOISE is the read noise.

    Returns
    -------
    sci, var_poisson, var_rnoise : ndarray
        Count rate and its variances (float64).
    """
    sky = [
        p.arrays["counts"][p.arrays["valid"]]
        for p in painted
        if p.slitlet.kind == "background"
    ]
    sky = np.concatenate(sky) if sky else signal[signal > 0]
    sky = sky[sky > 0]
    if not sky.size:
        raise ValueError("photon noise needs a positive background somewhere on the detector")
    gain = scene.sky_electrons / float(np.median(sky))
    electrons = rng.poisson(np.clip(signal, 0.0, None) * gain).astype(np.float64)
    electrons += rng.normal(0.0, scene.read_noise_electrons, signal.shape)
    sci = np.where(signal != 0, electrons / gain, 0.0)
    var_poisson = np.where(signal != 0, np.clip(electrons, 0.0, None) / gain**2, 0.0)
    var_rnoise = np.full(signal.shape, (scene.read_noise_electrons / gain) ** 2 + floor**2)
    return sci, var_poisson, var_rnoise


_HOT_DTYPE = [
    ("detector", "U4"),
    ("slitlet_id", "i4"),
    ("x", "i4"),
    ("y", "i4"),
    ("rate", "f4"),
    ("cluster", "i4"),
]


def add_hot_pixels(scene, painted, sci, signal, rng, detector):
    rows = []
    n_single = scene.hot_pixels_per_slit
    n_cluster = scene.hot_clusters_per_slit
    if not (n_single or n_cluster):
        return np.zeros(0, dtype=_HOT_DTYPE)
    cluster_id = 0
    shapes = ((2, 2), (1, 3), (3, 1))
    for p in painted:
        if p.slitlet.kind != "background":
            continue
        valid = p.arrays["valid"]
        iy, ix = np.nonzero(valid)
        if iy.size == 0:
            continue
        picks = [(1, 1)] * n_single + [shapes[rng.integers(len(shapes))] for _ in range(n_cluster)]
        for h, w in picks:
            k = rng.integers(iy.size)
            y0 = p.ystart - 1 + iy[k]
            x0 = p.xstart - 1 + ix[k]
            cluster_id += 1
            for dy in range(h):
                for dx in range(w):
                    yy, xx = min(y0 + dy, 2047), min(x0 + dx, 2047)
                    level = scene.hot_pixel_level * max(
                        float(signal[yy, xx]), float(np.median(p.arrays["counts"][valid]))
                    )
                    sci[yy, xx] += level
                    rows.append((detector, p.name, xx, yy, level, cluster_id if h * w > 1 else 0))
    return np.array(rows, dtype=_HOT_DTYPE)
