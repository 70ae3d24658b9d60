"""A source of known profile and free amplitude per column, eliminated from a sky fit.

A point-source slitlet's pixels hold the sky and the source,

    d(y, x) = f(lambda) B(y, x) + a(x) P(y, x) + noise,

with ``P`` the source's profile along the slit (measured,
`~jwst_mbkg_plus.algorithms.pooled_profile`) and ``a(x)`` its spectrum, free
in every column (lines, breaks, anything). Least squares in ``f`` and every
``a(x)`` at once (variable projection): per column, the weighted data and
every column of the sky factor's design are projected orthogonally to the
weighted profile, and ``f`` is fitted to what is left. Its estimate and
covariance are those of the joint fit: the amplitudes are not guessed (no
smoothed flux, no feedback of the sky's noise into the wings subtracted), and
each column spends on its amplitude only the information of the sky that
looks like the source, about ``(sum w P)^2 / sum w P^2`` pixels' worth, so the
rows beside the core, where the profile is small and steep, keep nearly all
of their sky.
"""

import logging

import numpy as np

__all__ = ["ProfileNuisance"]

log = logging.getLogger(__name__)


class ProfileNuisance:
    """
    A free amplitude per group (column) times a known profile, for `fit_sky_factor`.

    Parameters
    ----------
    profile : array_like
        The source's profile at each pixel (any normalisation; 0 where it has
        no light).
    group : array_like of int
        The group (column) of each pixel: one amplitude per group.
    """

    def __init__(self, profile, group):
        self.profile = np.asarray(profile, dtype=float).ravel()
        self.group = np.asarray(group).ravel()
        if self.profile.shape != self.group.shape:
            raise ValueError("profile and group must have the same size")
        small = self.group.size == 0 or (self.group.min() >= 0
                                         and self.group.max() < 4 * self.group.size)
        if np.issubdtype(self.group.dtype, np.integer) and small:
            self.index = self.group  # small non-negative labels (columns) already
        else:
            _, self.index = np.unique(self.group, return_inverse=True)

    def subset(self, mask):
        """The same nuisance on the pixels of ``mask`` (a boolean mask or an index)."""
        out = object.__new__(ProfileNuisance)
        out.profile, out.group, out.index = (a[mask] for a in (self.profile, self.group,
                                                                self.index))
        return out

    def _amplitudes(self, pw, values, use):
        """Per group, the weighted least-squares amplitude of ``values`` on ``pw``."""
        n = int(self.index.max()) + 1 if self.index.size else 0
        pp = np.bincount(self.index[use], pw[use] ** 2, minlength=n)
        has = pp > 0
        safe = np.where(has, pp, 1.0)
        if values.ndim == 1:
            return np.where(has, np.bincount(self.index[use], pw[use] * values[use],
                                             minlength=n) / safe, 0.0), has
        cols = [np.bincount(self.index[use], pw[use] * values[use, j], minlength=n)
                for j in range(values.shape[1])]
        return np.where(has[:, None], np.stack(cols, axis=1) / safe[:, None], 0.0), has

    def n_free(self):
        """Amplitudes fitted: groups with light of the profile."""
        return int(np.unique(self.index[self.profile != 0]).size)

    def project(self, aw, bw, sigma):
        """
        Whitened design and data, each group's profile component removed.

        Parameters
        ----------
        aw : ndarray
            Design over ``sigma`` (n, p).
        bw : ndarray
            Data over ``sigma`` (n,).
        sigma : ndarray
            Standard deviations of the pixels (n,).

        Returns
        -------
        aw, bw : ndarray
            Projected copies.
        """
        pw = self.profile / sigma
        use = np.ones(pw.size, dtype=bool)
        a_design, _ = self._amplitudes(pw, aw, use)
        a_data, _ = self._amplitudes(pw, bw, use)
        return aw - pw[:, None] * a_design[self.index], bw - pw * a_data[self.index]

    def residual(self, zw, sigma, use):
        """
        Whitened residuals of every pixel with the amplitudes fitted on ``use``.

        Parameters
        ----------
        zw : ndarray
            Residuals of the sky model over ``sigma`` (n,).
        sigma : ndarray
            Standard deviations (n,).
        use : ndarray of bool
            Pixels the amplitudes are fitted on (the others, e.g. clipped, get
            the same amplitudes).

        Returns
        -------
        ndarray
        """
        pw = self.profile / sigma
        amplitude, _ = self._amplitudes(pw, zw, use)
        return zw - pw * amplitude[self.index]
