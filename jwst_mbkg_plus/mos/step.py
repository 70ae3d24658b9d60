"""The MOS master background step of calwebb_spec2, plus."""

import logging
from pathlib import Path

from jwst.master_background import MasterBackgroundMosStep
from stpipe.step import preserve_step_pars

from jwst_mbkg_plus import input_checks, output_checks
from jwst_mbkg_plus.input_checks import ParameterError
from jwst_mbkg_plus.io.products import plain_record, write_qa
from jwst_mbkg_plus.io.slits import BackgroundSelectionError
from jwst_mbkg_plus.io.user_background import UserBackgroundError, read_user_background
from jwst_mbkg_plus.jwst_internals import record_step_status
from jwst_mbkg_plus.mos.calibration import calibrate_as_extended, uncalibrate_like_jwst
from jwst_mbkg_plus.mos.master import master_from_slits, master_from_user
from jwst_mbkg_plus.mos.options import (
    JWST_EQUIVALENT_SETTINGS,
    REJECTED_DQ,
    MasterBackgroundError,
    MasterOptions,
    normalise_slit_scale,
)
from jwst_mbkg_plus.mos.qa import log_summary, residual_qa
from jwst_mbkg_plus.mos.slit_spectra import wavelength_range
from jwst_mbkg_plus.mos.source_sky import add_source_sky
from jwst_mbkg_plus.mos.subtract import subtract_master
from jwst_mbkg_plus.plus_step import PlusMixin
from jwst_mbkg_plus.safe_io import OutputWriteError

__all__ = ["JWST_EQUIVALENT_SETTINGS", "MasterBackgroundMosPlusStep"]

log = logging.getLogger(__name__)

class MasterBackgroundMosPlusStep(PlusMixin, MasterBackgroundMosStep):
    """
    Compute and subtract a NIRSpec MOS master background, plus.

    A drop-in replacement for `~jwst.master_background.MasterBackgroundMosStep`:
    the same nested steps (flat_field, pathloss, barshadow, photom,
    pixel_replace, resample_spec, extract_1d) and the same parameters, so
    existing ``steps`` dictionaries and parameter files keep working. It
    records its status under ``meta.cal_step.master_background``.

    What it adds: background slitlets chosen by parameter; whole background
    spectra vetted against the consensus; hot pixels and other outliers of the
    background slitlets rejected against the expanded master, and flagged
    OUTLIER + DO_NOT_USE in the output DQ (``flag_rejected``); a per-wavelength
    robust combination; a NaN-aware median filter; the master background's
    uncertainty propagated into the science variance arrays; one calibration
    pass instead of two (the master background is un-calibrated with the
    per-pixel factors the forward pass applied); a QA record with robust pulls
    (1.4826 x MAD, fraction beyond 5) over the pixels the step kept.

    jwst-equivalent mode: with ``combine_method='jwst'`` and the rest of
    ``jwst_mbkg_plus.JWST_EQUIVALENT_SETTINGS`` (``bkg_method='extract_1d'``,
    ``vet_spectra=False``, ``reject_pixels=False``, ``propagate_errors=False``,
    ``outside_range='nan'``) the master is jwst's and is un-calibrated with
    jwst's own float32 arithmetic: photom runs again
    with ``inverse=True``, the barshadow and pathloss corrections and the flat
    the forward pass stored are multiplied back in jwst's order
    (:func:`~jwst_mbkg_plus.mos.calibration.uncalibrate_like_jwst`). Output,
    DQ and ``masterbg2d`` data then equal jwst's step bit for bit.

    ``inverse=True`` is not supported (the step records SKIPPED). An even
    ``median_kernel`` is rounded down to the next odd number, as jwst does.

    Inside `~jwst_mbkg_plus.Spec2PipelinePlus` the NIRSpec flat interpolated by
    the forward pass is handed to the pipeline's own flat_field
    (:meth:`take_flat_handover`), which then does not interpolate it again.
    """

    class_alias = "master_background_mos_plus"

    # Keys added here merge with jwst's spec along the MRO.
    spec = """
        bkg_slits = force_list(default=None)  # Slitlet ids or source names to use as background, one or several (12 or 12,13) (default: the MSA file's BKG/BACKGROUND slitlets)
        exclude_slits = force_list(default=None)  # Slitlet ids or source names never to use as background, one or several
        bkg_method = option("full_slitlet", "extract_1d", default="full_slitlet")  # 1-D background per slitlet: all calibrated pixels binned in wavelength, or jwst's resample_spec + extract_1d
        combine_method = option("clipped_mean", "median", "weighted_mean", "mean", "jwst", default="clipped_mean")  # Per-wavelength combination of the background spectra; 'jwst' is combine_1d (needs bkg_method='extract_1d')
        master_smoothing = option("adaptive", "none", default="adaptive")  # Smoothing of the master in wavelength: 'adaptive' fits local quadratics over a ladder of widths, keeps per sample the widest that agrees with the narrower ones (wide on a noisy continuum, none across lines or steep rises, one-sided beside them; variances scaled by the measured correlation of neighbouring samples) and corrects the kernels' own bias with the same kernels (twicing); 'none' keeps every sample; median_kernel > 1 replaces it with jwst's running median
        min_spectra = integer(default=2, min=1)  # Fewest background spectra for the robust combination; fewer falls back to their mean, recorded in N_INPUT
        vet_spectra = boolean(default=True)  # Reject whole background spectra that deviate from the consensus
        vet_threshold = float(default=5.0, min=0)  # Significance above which a background spectrum is rejected
        reject_pixels = boolean(default=True)  # Reject outlying pixels (hot pixels, clusters, cosmic rays) of the background slitlets
        pixel_sigma = float(default=5.0, min=0)  # Rejection threshold for background-slitlet pixels, in sigma
        pixel_maxiters = integer(default=3, min=1)  # Iterations of pixel rejection and master re-estimation
        flag_rejected = boolean(default=True)  # Flag the background-slitlet pixels rejected by reject_pixels as OUTLIER + DO_NOT_USE in the output DQ, so later steps leave them out
        propagate_errors = boolean(default=True)  # Add the master background's variance to the science VAR_RNOISE and ERR
        error_extraction_height = integer(default=None, min=1)  # Rows summed by a typical extraction, for the correlated background error (default: median valid rows per column)
        outside_range = option("flag", "nearest", "nan", default="flag")  # Pixels beyond the background's wavelengths: no subtraction + DO_NOT_USE (as jwst), the end value, or NaN
        spatial_model = option("none", "plane", "quadrant", "plane_quadrant", "auto", default="auto")  # Background level across the MSA: the master times a spatial factor fitted to the background slitlets' levels ('auto': the supported model with the lowest BIC whose extra terms pass an F-test against the constant at p = 0.01 for all candidates together)
        slit_scale = pass(default="auto")  # Per-slitlet calibration: 'auto' measures the slitlet-to-slitlet calibration scatter from the background slitlets and, where it is detected, rescales every slitlet with source-free pixels by its own smooth factor in wavelength (the others get the scatter in ERR); True/'always' rescales regardless; False/'none' does neither
        slit_scale_guard = float(default=1.0, min=0)  # Smallest distance from the source (slit-frame units, about one shutter) of the pixels slit_scale fits; the source's measured profile may push it further
        use_source_sky = boolean(default=True)  # Add the source-free rows of the source slitlets that slit_scale rescaled (each divided by its fitted sky factor) to the master, vetted and combined with the background slitlets, then fit the factors again against that master
        user_background_min_overlap = float(default=0.5, min=0, max=1)  # Smallest fraction of the science wavelength range the master background (computed or given) must cover; less ends FAILED
        save_qa = boolean(default=False)  # Save the QA record as an ASDF file (suffix 'mbkgqa'); also saved with save_background
        visit_companions = force_list(default=None)  # Visit master: other exposures of the same visit and detector whose background slitlets join the master, each at a fitted sky level: files (*_bkgcal.fits of jwst_mbkg_plus.mos.visit.prepare_companion, or rate files), spec2 association files (their science members of this exposure's visit and detector), or 'association' (in calwebb_spec2_plus: the other science members of the association it runs on); default: this exposure's alone
    """  # noqa: E501

    def process(self, data):
        """
        Compute and subtract a master background from NIRSpec MOS slits.

        Parameters
        ----------
        data : `~stdatamodels.jwst.datamodels.MultiSlitModel` or str
            The extracted 2-D slits (count rate), as after extract_2d and srctype.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.MultiSlitModel`
            The background-subtracted slits; the input is not modified when the
            step runs standalone.
        """
        self._flat_handover = None
        self.bkg_slits = input_checks.list_parameter(self.bkg_slits, "bkg_slits")
        self.exclude_slits = input_checks.list_parameter(self.exclude_slits, "exclude_slits")
        contradiction = self._parameter_problem()
        if contradiction:
            raise ParameterError(f"{type(self).__name__}: {contradiction}")
        output_model = self.open_input(data)

        problem = input_checks.mos_input_problem(output_model, source=data)
        if problem:
            return self._fail(output_model, problem)

        if not self.force_subtract and self._already_subtracted(output_model):
            log.info("Background subtraction has already occurred. Skipping.")
            record_step_status(output_model, "master_background", status="SKIPPED")
            return output_model

        if self.inverse:
            log.error("inverse=True is not supported by %s; use jwst's step. Step skipped.",
                      type(self).__name__)
            record_step_status(output_model, "master_background", status="SKIPPED")
            return output_model

        problem = (
            input_checks.mos_calibration_problem(output_model)
            or input_checks.mos_parameter_problem(self, output_model)
            or self._user_background_problem()
            or self.output_problem()
            or input_checks.mos_slit_problem(output_model)
        )
        if problem:
            return self._fail(output_model, problem)

        options = MasterOptions.from_step(self)
        # combine_method='jwst': un-calibrate with jwst's own inverse arithmetic.
        jwst_arithmetic = options.combine_method == "jwst"
        takes_flat = self._parent_takes_flat()
        uncalibrated = None
        with preserve_step_pars(self):
            self.set_pars_from_parent()
            log.info("Calibrating all slits as extended: flat_field, pathloss, barshadow, photom")
            try:
                forward = calibrate_as_extended(
                    self, output_model, keep_flat=takes_flat or jwst_arithmetic
                )
            except Exception as err:  # noqa: BLE001 - no jwst exception reaches the user
                return self._fail(output_model, input_checks.calibration_failure(err))
            self._flat_handover = forward.flat if takes_flat else None
            try:
                if self.user_background:
                    master = master_from_user(
                        self._user_spectrum, self.user_background, options
                    )
                elif self.visit_companions:
                    master = self._visit_master(forward.model, options)
                else:
                    master = master_from_slits(self, forward.model, options)
                first_pass = None  # the expansion against an unchanged master, reused
                if (options.use_source_sky and not self.user_background
                        and not jwst_arithmetic):
                    master, first_pass = add_source_sky(forward.model, master, options)
                problem = output_checks.coverage_problem(
                    master.wavelength, master.surf_bright, wavelength_range(forward.model),
                    self.user_background_min_overlap,
                    what="user background" if self.user_background else "master background")
                if problem:
                    raise MasterBackgroundError(problem)
                if jwst_arithmetic:
                    log.info(
                        "Un-calibrating the master background as jwst does: "
                        "photom, barshadow, pathloss, flat_field inverted"
                    )
                    uncalibrated = uncalibrate_like_jwst(
                        self, forward, master.wavelength, master.surf_bright
                    )
            except (BackgroundSelectionError, MasterBackgroundError) as err:
                log.error("%s No background subtracted: master_background FAILED.", err)
                record_step_status(output_model, "master_background", status="FAILED")
                forward.model.close()
                return output_model
            finally:
                if forward.flat is not None and not takes_flat:
                    forward.flat.close()
                    forward.flat = None

        result, background_2d = subtract_master(
            output_model, forward, master, options, uncalibrated=uncalibrated,
            expanded=first_pass,
        )
        qa = residual_qa(result, forward, master, background_2d,
                         propagate_errors=options.propagate_errors)
        master.qa.update(qa)
        output_checks.mos_result_checks(result, background_2d, master, REJECTED_DQ,
                                        guard=not jwst_arithmetic)
        master.qa["step"] = self.class_alias
        # The QA record travels with the product (saved in its ASDF extension).
        result.meta.master_background_qa = plain_record(master.qa)
        if self.user_background:
            result.meta.background.master_background_file = Path(self.user_background).name

        record_step_status(result, "master_background", status="COMPLETE")
        log_summary(master)
        try:
            self._save_products(result, master, background_2d)
        except OutputWriteError as err:
            log.error("%s The background was subtracted but its products are incomplete. "
                      "Step failed.", err)
            record_step_status(result, "master_background", status="FAILED")
        background_2d.close()
        forward.model.close()
        return result

    def _save_products(self, result, master, background_2d):
        """Save masterbg1d, masterbg2d, bkgx1d and the QA record as asked."""
        if self.save_background:
            master_1d = master.to_model(template=result)
            self.save_model(master_1d, suffix="masterbg1d", force=True)
            self.save_model(background_2d, suffix="masterbg2d", force=True)
            if master.bkg_x1d is not None:
                self.save_model(master.bkg_x1d, suffix="bkgx1d", force=True)
            master_1d.close()
        if self.save_qa or self.save_background:
            qa_path = self.make_output_path(basepath=result.meta.filename, suffix="mbkgqa")
            qa_path = str(Path(qa_path).with_suffix(".asdf"))
            write_qa(master.qa, qa_path)
            log.info("Saved QA record %s", qa_path)

    def _visit_master(self, cal_model, options):
        """The master from this exposure's and its companions' background slitlets."""
        from jwst_mbkg_plus.mos import companions as companion_files
        from jwst_mbkg_plus.mos import visit

        try:
            paths, ignored = companion_files.resolve_companions(
                self.visit_companions, cal_model,
                association=getattr(self, "_association_members", None),
                this_path=getattr(self, "_association_current", None))
        except (OSError, ValueError) as err:
            raise MasterBackgroundError(f"Visit master: {err}") from err
        for path, reason in ignored:
            log.info("Visit master: association member %s ignored: %s",
                     getattr(path, "name", path), reason)
        ignored_record = {str(getattr(p, "name", p)): reason for p, reason in ignored}
        if not paths:
            # Nothing to add (e.g. a one-exposure group): this exposure's own master.
            log.warning("Visit master: no companion exposure of this visit and detector; "
                        "master from this exposure alone")
            master = master_from_slits(self, cal_model, options)
            label = visit.exposure_name(cal_model.meta.filename)
            master.qa["visit"] = {"exposure": label, "n_exposures": 1, "exposures": [label],
                                  "level": 1.0, "level_error": 0.0, "ignored": ignored_record}
            return master
        cache = getattr(self, "_companion_cache", None)
        if cache is not None:
            return self._with_ignored(visit.visit_master(
                self, cal_model, cache.get(self, paths, options), options), ignored_record)
        loaded = visit.load_companions(self, paths, options)
        try:
            return self._with_ignored(visit.visit_master(self, cal_model, loaded, options),
                                      ignored_record)
        finally:
            for _, model in loaded:
                model.close()

    @staticmethod
    def _with_ignored(master, ignored):
        master.qa["visit"]["ignored"] = ignored
        return master

    def take_flat_handover(self):
        """
        Return the interpolated flat of the last forward pass, once, and forget it.

        Returns
        -------
        `~jwst_mbkg_plus.mos.flat_handover.FlatHandover` or None
            The flat, or None if the last run kept none (run standalone, the
            nested flat_field skipped or given a user-supplied flat, or the
            step returned before calibrating).
        """
        handover = getattr(self, "_flat_handover", None)
        self._flat_handover = None
        return handover

    def _parent_takes_flat(self):
        """Whether the parent pipeline's flat_field will reuse the forward pass's flat."""
        return bool(getattr(self.parent, "takes_flat_handover", False))

    @staticmethod
    def _fail(model, problem):
        log.error("%s Step failed.", problem)
        record_step_status(model, "master_background", status="FAILED")
        return model

    @staticmethod
    def _already_subtracted(model):
        return "COMPLETE" in [
            getattr(model.meta.cal_step, "bkg_subtract", None),
            getattr(model.meta.cal_step, "master_background", None),
        ]

    def _user_background_problem(self):
        """Return a message if user_background cannot be read, else ''; keep what was read."""
        self._user_spectrum = None
        if not self.user_background:
            return ""

        try:
            # Read once, now (a small file): a bad one fails before the calibration pass,
            # and its warnings are logged once.
            self._user_spectrum = read_user_background(self.user_background)
        except UserBackgroundError as err:
            return str(err)
        return ""

    def _association_keyword_problem(self):
        """Return a message if ``visit_companions`` misuses the keyword 'association', else ''."""
        from jwst_mbkg_plus.mos.companions import ASSOCIATION, is_association_keyword

        entries = [str(e).strip().lower() for e in self.visit_companions]
        if ASSOCIATION in entries and len(entries) > 1:
            return (f"visit_companions={ASSOCIATION!r} takes the association's members: "
                    "give it alone, or give files without it.")
        if (is_association_keyword(self.visit_companions)
                and getattr(self, "_association_members", None) is None):
            return (f"visit_companions={ASSOCIATION!r} takes the other science members of the "
                    "association calwebb_spec2_plus runs on; this step runs on one exposure "
                    "without it: give the association file (visit_companions=<name>_asn.json) "
                    "or the companion files instead.")
        return ""

    def _parameter_problem(self):
        """Return a message if the parameters contradict each other, else ''."""
        if self.combine_method == "jwst" and self.bkg_method != "extract_1d":
            return (
                "combine_method='jwst' combines jwst's extract_1d spectra: "
                "set bkg_method='extract_1d' as well."
            )
        if self.visit_companions and (self.combine_method == "jwst" or self.user_background):
            return ("visit_companions builds a visit master from background slitlets: it "
                    "cannot be combined with combine_method='jwst' or user_background.")
        if self.visit_companions:
            problem = self._association_keyword_problem()
            if problem:
                return problem
        try:
            slit_scale = normalise_slit_scale(self.slit_scale)
        except ValueError as err:
            return str(err)
        explicit_spatial = self.spatial_model not in ("none", "auto")
        if self.combine_method == "jwst" and (explicit_spatial or slit_scale == "always"):
            return (
                "combine_method='jwst' reproduces jwst's master background, which has no "
                "spatial model: set spatial_model='none' and slit_scale=False, or choose "
                "another combine_method."
            )
        return ""
