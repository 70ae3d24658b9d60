"""Tests for jwst_mbkg_plus.algorithms.selection: vetting whole spectra."""

import numpy as np
import pytest

from jwst_mbkg_plus.algorithms.selection import vet_spectra

pytestmark = pytest.mark.filterwarnings("error")

N_WAVE = 2000


def _spectra(seed, rel_noise, bad=(2, 6), n=9, offset=0.3):
    """Background rising 20x; `bad` spectra carry a smooth continuum of +offset."""
    rng = np.random.default_rng(seed)
    lam = np.linspace(1.0, 5.0, N_WAVE)
    level = 1.0 + 19.0 * (lam - 1.0) / 4.0
    flux = np.tile(level, (n, 1))
    for b in bad:
        flux[b] += offset * level * (1.0 + 0.2 * np.sin(1.3 * lam + b))
    sig = rel_noise * level
    flux = flux + rng.normal(size=flux.shape) * sig
    return flux, np.broadcast_to(sig**2, flux.shape).copy()


@pytest.mark.parametrize("rel_noise", [0.2, 0.02])
@pytest.mark.parametrize("with_var", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_contaminated_spectra_found_exactly(rel_noise, with_var, seed):
    flux, var = _spectra(seed, rel_noise)
    res = vet_spectra(flux, var if with_var else None)
    np.testing.assert_array_equal(np.nonzero(~res.accepted)[0], [2, 6])
    assert all(r.startswith("rejected: median relative deviation") for r in
               np.array(res.reasons)[[2, 6]])
    np.testing.assert_allclose(res.deviation[[2, 6]], 0.3, atol=0.03)


def test_negative_offset_found():
    flux, var = _spectra(3, 0.2, bad=(5,), offset=-0.3)
    res = vet_spectra(flux, var)
    np.testing.assert_array_equal(np.nonzero(~res.accepted)[0], [5])


def test_false_rejection_rate_and_score_calibration():
    """9 clean spectra, 100 seeds x 2 noise levels: no false rejection."""
    n_false, scores = 0, []
    for seed in range(100):
        for rel_noise in (0.2, 0.02):
            flux, var = _spectra(seed, rel_noise, bad=())
            res = vet_spectra(flux, var)
            n_false += int((~res.accepted).sum())
            scores.append(res.score)
    assert n_false == 0
    scores = np.concatenate(scores)
    # the significance is calibrated: unit-variance scores on clean data
    assert abs(scores.mean()) < 0.1
    assert 0.85 < scores.std() < 1.15


def test_false_rejection_without_variance():
    n_false = 0
    for seed in range(40):
        flux, _ = _spectra(seed, 0.2, bad=())
        n_false += int((~vet_spectra(flux).accepted).sum())
    assert n_false == 0


def test_robust_to_cosmic_rays_and_too_few_points():
    flux, var = _spectra(4, 0.2, bad=())
    flux[1, ::50] += 100.0  # 2 % of samples hit hard
    flux[3, 300:] = np.nan  # only 15 % usable
    res = vet_spectra(flux, var)
    assert res.accepted[1]
    assert not res.accepted[3] and "usable samples" in res.reasons[3]
    assert res.accepted.sum() == 8


def test_min_accepted_and_inputs_unchanged():
    flux, var = _spectra(5, 0.02, bad=(0, 1, 2))
    flux, var = flux[:4], var[:4]
    fc, vc = flux.copy(), var.copy()
    res = vet_spectra(flux, var, min_accepted=3)
    assert res.accepted.sum() == 3
    np.testing.assert_array_equal(flux, fc)
    np.testing.assert_array_equal(var, vc)


def test_bad_arguments():
    with pytest.raises(ValueError, match="2-D"):
        vet_spectra(np.ones(10))
    with pytest.raises(ValueError, match="var shape"):
        vet_spectra(np.ones((3, 10)), np.ones((3, 9)))
