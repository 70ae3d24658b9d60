"""The master background step of calwebb_spec3, plus."""

import logging
from pathlib import Path

import numpy as np
from jwst.datamodels import ModelContainer
from jwst.master_background import MasterBackgroundStep
from stdatamodels.jwst import datamodels

from jwst_mbkg_plus import output_checks
from jwst_mbkg_plus.input_checks import spec3_science_problem, unique_members
from jwst_mbkg_plus.io.products import masterbg1d_model, write_qa
from jwst_mbkg_plus.jwst_internals import background_requested, record_step_status, split_container
from jwst_mbkg_plus.plus_step import PlusMixin
from jwst_mbkg_plus.safe_io import OutputWriteError
from jwst_mbkg_plus.spec3 import run, subtract

__all__ = ["MasterBackgroundPlusStep"]

log = logging.getLogger(__name__)

_SUPPORTED = (
    ModelContainer,
    datamodels.MultiSlitModel,
    datamodels.ImageModel,
    datamodels.SlitModel,
    datamodels.IFUImageModel,
)


class MasterBackgroundPlusStep(PlusMixin, MasterBackgroundStep):
    """
    Compute and subtract a master background for calwebb_spec3, plus.

    A drop-in replacement for `~jwst.master_background.MasterBackgroundStep`
    (NIRSpec fixed slit and IFU, MIRI LRS and MRS): same inputs (a spec3
    association or `~jwst.datamodels.ModelContainer` of ``cal`` science and
    ``x1d`` background members, or one model with ``user_background``), the
    same parameters and products (``masterbg1d``, ``masterbg2d``) and the same
    status keyword, ``meta.cal_step.master_background``.

    What differs (see `jwst_mbkg_plus.spec3.master`): background spectra
    are vetted and combined robustly per wavelength, the median filter is
    NaN-aware, the master's variance is propagated into ``VAR_RNOISE`` and
    ``ERR``, pixels outside the master's range are flagged rather than left
    with background, the master is scaled to each science exposure's own sky
    where the evidence supports it (``scale_master``, see
    `jwst_mbkg_plus.spec3.exposure_scale`), and a QA record of what was used
    and rejected is logged
    (and saved with ``save_qa`` as ``*_mbkgqa.asdf``, the MOS step's format:
    the same keys where they mean the same, including the pulls of each
    background spectrum against the master made without it). Input models
    are never modified.
    """

    class_alias = "master_background_plus"

    spec = """
        combine_method = option("clipped_mean", "median", "weighted_mean", "mean", default="clipped_mean") # How background spectra are combined per wavelength
        sigma_clip = float(default=3.0, min=0) # Per-wavelength clip threshold in sigma (0: no clipping)
        maxiters = integer(default=5, min=1) # Maximum sigma-clipping iterations
        min_spectra = integer(default=1, min=1) # Fewest background spectra for a defined master at a wavelength
        vet_spectra = boolean(default=True) # Reject whole background spectra that deviate from the others
        vet_threshold = float(default=5.0, min=0) # Vetting significance threshold, in sigma
        vet_min_deviation = float(default=0.05, min=0) # Smallest median relative deviation the vetting rejects
        vet_pair_level_limit = float(default=0.1, min=0) # Two background spectra whose levels differ by more than this (and by vet_threshold sigma): the brighter is rejected as contaminated without shape evidence, as contamination only adds light (a large value turns this off)
        exptime_weights = boolean(default=True) # Weight spectra by exposure time in the (clipped) mean, as jwst does
        propagate_errors = boolean(default=True) # Add the master background variance to VAR_RNOISE and ERR
        edge = option("nan", "nearest", "extrapolate_linear", default="nan") # Pixels outside the master range: NaN + DO_NOT_USE, or extend the master
        user_background_min_overlap = float(default=0.5, min=0, max=1) # Smallest fraction of the science wavelength range the master background (computed from the members or a user background) must cover; less ends FAILED
        scale_master = option("auto", "always", "off", default="auto") # Scale the master to each science exposure's own sky (a smooth factor in wavelength fitted to its source-free pixels): when it differs from 1 beyond its noise (auto), always, or never (off: jwst)
        scale_model = option("auto", "constant", "linear", "spline", default="auto") # Model of that factor (auto: constant, linear or spline chosen by evidence)
        save_qa = boolean(default=False) # Save the QA record (inputs, vetting, clipping, pulls) as an ASDF file (suffix 'mbkgqa')
    """  # noqa: E501

    def process(self, input_data):
        """
        Compute and subtract a master background.

        Parameters
        ----------
        input_data : `~jwst.datamodels.ModelContainer`, datamodel, or str
            A spec3 association (or container) with science and background
            members, or a single science model when ``user_background`` is set.

        Returns
        -------
        `~jwst.datamodels.ModelContainer` or datamodel
            The background-subtracted science models (the background members
            are dropped from a container, as jwst does), status COMPLETE; or
            the input (copy) with status SKIPPED or FAILED.
        """
        output_model = self.open_input(input_data)

        if not background_requested(self, output_model):
            record_step_status(output_model, "master_background", status="SKIPPED")
            return output_model
        if not isinstance(output_model, _SUPPORTED):
            log.error("Input of type %s cannot be handled: give a spec3 association (or "
                      "ModelContainer) of cal science and x1d background members, or one "
                      "cal model with user_background. Step failed.",
                      type(output_model).__name__)
            record_step_status(output_model, "master_background", status="FAILED")
            return output_model

        asn_id = None
        if isinstance(output_model, ModelContainer):
            science, backgrounds = split_container(output_model)
            backgrounds = unique_members(backgrounds)
            asn_id = science.asn_table.get("asn_id")
            result = science
            science_models = list(science)
        else:
            backgrounds = ()
            result = output_model
            science_models = [output_model]

        problem = (
            spec3_science_problem(science_models)
            or self._median_kernel_problem()
            or self.output_problem()
        )
        if problem:
            log.error("%s Step failed.", problem)
            record_step_status(output_model, "master_background", status="FAILED")
            return output_model

        if not self.user_background and not isinstance(output_model, ModelContainer):
            log.error("Input of type %s cannot be handled without a user_background: a "
                      "master background is computed from the background members of a spec3 "
                      "association; master_background FAILED", type(output_model).__name__)
            record_step_status(output_model, "master_background", status="FAILED")
            return output_model
        if not self.user_background and len(backgrounds) == 0:
            log.error("No background member in the association (exptype 'background') and no "
                      "user_background: add background x1d members, or give "
                      "user_background=.... Step failed.")
            record_step_status(output_model, "master_background", status="FAILED")
            return output_model

        try:
            outcome = run.run_master_background(
                science_models,
                backgrounds,
                user_background=self.user_background or None,
                combine={
                    "combine_method": self.combine_method,
                    "sigma_clip": self.sigma_clip or None,
                    "maxiters": self.maxiters,
                    "min_spectra": self.min_spectra,
                    "vet": self.vet_spectra,
                    "vet_threshold": self.vet_threshold,
                    "vet_min_deviation": self.vet_min_deviation,
                    "vet_pair_level_limit": self.vet_pair_level_limit,
                    "exptime_weights": self.exptime_weights,
                },
                median_kernel=self.median_kernel,
                edge=self.edge,
                propagate_errors=self.propagate_errors,
                min_overlap=self.user_background_min_overlap,
                scale_master=self.scale_master,
                scale_model=self.scale_model,
            )
        except (ValueError, TypeError, RuntimeError) as err:
            log.error("Master background subtraction failed: %s Step failed.", err)
            record_step_status(output_model, "master_background", status="FAILED")
            return output_model

        if self.user_background:
            name = Path(self.user_background).name
            for model in science_models:
                model.meta.background.master_background_file = name

        output_checks.spec3_result_checks(science_models, outcome.subtractions,
                                          outcome.master.qa)
        try:
            self._report(outcome)
            self._save_products(outcome, science_models, asn_id)
        except OutputWriteError as err:
            log.error("%s The background was subtracted but its products are incomplete. "
                      "Step failed.", err)
            record_step_status(result, "master_background", status="FAILED")
            return result
        record_step_status(result, "master_background", status="COMPLETE")
        return result

    def _median_kernel_problem(self):
        if self.median_kernel is not None and self.median_kernel < 1:
            return f"median_kernel={self.median_kernel} must be >= 1 (1: no median filter)."
        return ""

    def _report(self, outcome):
        """Log the QA summary; save it with ``save_qa``."""
        qa = {"step": self.class_alias, **outcome.master.qa}
        qa["n_pixels_without_background"] = [s.n_no_background for s in outcome.subtractions]
        qa["scale_master"] = self.scale_master
        qa["exposure_scale"] = [s.to_record() for s in outcome.scales]
        for s in outcome.scales:
            log.info("Sky factor of %s: %s", s.name, s.factor.status)
        for entry in qa.get("inputs", []):
            log.info("Background %s (%s): %s, clipped %.2f%%", entry["name"], entry["column"],
                     entry["reason"], 100 * entry["clipped_fraction"])
        summary = qa.get("pull_summary") or {}
        if summary.get("n_pixels"):
            log.info("Background spectra against the master made without them: pull spread "
                     "%.3f (1.4826 MAD), %.2g of |pull| > 5", summary["pull_spread"],
                     summary["pull_outlier_fraction"])
        if self.save_qa:
            path = self.make_output_path(suffix="mbkgqa", ext="asdf")
            write_qa(qa, path)
            log.info("Saved master background QA record %s", path)

    def _save_products(self, outcome, science_models, asn_id):
        """Save ``masterbg1d`` (computed masters) and ``masterbg2d`` like jwst."""
        if not self.save_background:
            return
        master = outcome.master
        if not self.user_background:
            model_1d = masterbg1d_model(master.wavelength, master.surf_bright,
                                        np.sqrt(master.var), master.n_used,
                                        template=science_models[0])
            self.save_model(model_1d, suffix="masterbg1d", force=True, asn_id=asn_id)
        bkg_2d = ModelContainer([
            subtract.background_2d_model(model, sub)
            for model, sub in zip(science_models, outcome.subtractions, strict=True)
        ])
        self.save_container(bkg_2d, suffix="masterbg2d", force=True, asn_id=asn_id)
