"""Point sources along the slit: a Gaussian or a Moffat profile, and a second source.

A point source's light along the slit is a Gaussian (``Scene.point_sigma``) or
a Moffat profile of the same FWHM (``Scene(point_profile='moffat')``, the
profile of `~jwst_mbkg_plus.synthetic.spec3_scenes.source_profile` with index
``Scene.moffat_beta``), whose wings reach the neighbouring shutters, the trap
of a sky measured beside the source. A slitlet may hold a second point source
(its *companion*, `~jwst_mbkg_plus.synthetic.layout.add_companions`) in a
shutter next to the declared one, undeclared in the MSA file.
"""

import numpy as np

import jwst_mbkg_plus.synthetic.instrument as instrument
from jwst_mbkg_plus.synthetic.spec3_scenes import source_profile

__all__ = ["PIXELS_PER_SLIT_UNIT", "SHUTTER_PITCH", "companion_slit_y", "point_profile",
           "point_sources_truth"]

#: Pixels along the slit per slit-frame y unit (one open shutter height).
PIXELS_PER_SLIT_UNIT = (
    instrument.MSA_PITCH[1]
    / instrument.MSA_PITCH_TO_SIZE[1]
    * instrument.CAMERA_FOCAL_LENGTH
    / instrument.COLLIMATOR_FOCAL_LENGTH[1]
    / instrument.PIXEL_SIZE
)

#: Slit-frame distance between the centres of neighbouring shutters (jwst's slit frame).
SHUTTER_PITCH = 1.15


def point_profile(scene, slitlet, slit_y, y_src):
    """
    Profile along the slit (peak 1) of a point-source slitlet's light.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene (``point_profile``, ``point_sigma``, ``moffat_beta``).
    slitlet : `~jwst_mbkg_plus.synthetic.slitlet.Slitlet`
        The slitlet (its companion, if any).
    slit_y : ndarray
        Slit-frame y of every pixel.
    y_src : float
        The primary source's slit-frame y (jwst's ``source_ypos``).

    Returns
    -------
    ndarray
        The primary's profile, plus ``companion_flux`` times the same profile
        at the companion's position (`companion_slit_y`).
    """
    sigma = scene.point_sigma / PIXELS_PER_SLIT_UNIT
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0)) * sigma

    def one(centre):
        if scene.point_profile == "moffat":
            return source_profile(slit_y, centre, fwhm, wings=True, beta=scene.moffat_beta)
        return np.exp(-0.5 * ((slit_y - centre) / sigma) ** 2)

    profile = one(y_src)
    if slitlet.companion_shutter is not None:
        profile = profile + slitlet.companion_flux * one(companion_slit_y(slitlet, y_src))
    return profile


def point_sources_truth(scene, slitlet, y_src):
    """
    The truth file's ``point_sources`` entry of a point-source slitlet.

    Parameters
    ----------
    scene : `~jwst_mbkg_plus.synthetic.scene.Scene`
        The scene.
    slitlet : `~jwst_mbkg_plus.synthetic.slitlet.Slitlet`
        The slitlet.
    y_src : float
        The declared source's slit-frame y.

    Returns
    -------
    list of dict
        The declared source, then the companion if any: ``slit_y``, ``shutter``,
        ``relative_flux``, ``declared``, ``profile``, ``fwhm_pixels``, ``moffat_beta``.
    """
    fwhm = 2.0 * np.sqrt(2.0 * np.log(2.0)) * scene.point_sigma
    common = {"profile": scene.point_profile, "fwhm_pixels": float(fwhm),
              "moffat_beta": float(scene.moffat_beta)}
    out = [{"slit_y": float(y_src), "shutter": int(slitlet.primary), "relative_flux": 1.0,
            "declared": True, **common}]
    if slitlet.companion_shutter is not None:
        out.append({"slit_y": companion_slit_y(slitlet, y_src),
                    "shutter": int(slitlet.companion_shutter),
                    "relative_flux": float(slitlet.companion_flux), "declared": False,
                    **common})
    return out


def companion_slit_y(slitlet, y_src):
    """
    Slit-frame y of a slitlet's companion source.

    Parameters
    ----------
    slitlet : `~jwst_mbkg_plus.synthetic.slitlet.Slitlet`
        A slitlet with ``companion_shutter`` set.
    y_src : float
        The primary source's slit-frame y.

    Returns
    -------
    float
        ``y_src`` moved by the shutters between them (pitch 1.15, as jwst's
        slit frame) and by the difference of their positions in their shutters.
    """
    shutters = slitlet.companion_shutter - slitlet.primary
    return float(y_src + SHUTTER_PITCH * shutters + (slitlet.companion_y - slitlet.source_y))
