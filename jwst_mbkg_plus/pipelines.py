"""jwst's calwebb_spec2 and calwebb_spec3 with the plus master background steps.

stpipe builds sub-steps from the class's ``step_defs`` and ignores any ``class``
key given for a sub-step, so the only clean way to swap a sub-step is a
pipeline subclass. The sub-step names are jwst's, so existing ``steps``
dictionaries and parameter files work after changing the pipeline class only.
"""

import logging
import os
from pathlib import Path

from jwst.pipeline import Spec2Pipeline, Spec3Pipeline

from jwst_mbkg_plus.batch.inputs import header_key
from jwst_mbkg_plus.mos.flat_handover import FlatFieldReuseStep
from jwst_mbkg_plus.mos.step import MasterBackgroundMosPlusStep
from jwst_mbkg_plus.plus_step import PipelinePlusMixin
from jwst_mbkg_plus.spec3.step import MasterBackgroundPlusStep

__all__ = ["FlatFieldReuseStep", "Spec2PipelinePlus", "Spec3PipelinePlus"]

log = logging.getLogger(__name__)


class Spec2PipelinePlus(PipelinePlusMixin, Spec2Pipeline):
    """
    `~jwst.pipeline.Spec2Pipeline` with `MasterBackgroundMosPlusStep`.

    The sub-step keeps jwst's name, ``master_background_mos``. For NIRSpec MOS
    with the master background on, the pipeline's flat_field applies the flat
    the master background step already interpolated, where it is valid for
    the slit, instead of interpolating it a second time; the results are
    jwst's.

    Visit master (the sub-step's ``visit_companions``): each companion
    exposure is calibrated once for the whole run, not once per exposure that
    uses it. With ``visit_companions = association`` the companions of each
    science member are the association's other science members of the same
    visit and detector; the members of other visits or detectors are left out
    and logged; a member alone in its visit and detector gets a per-exposure
    master.
    """

    class_alias = "calwebb_spec2_plus"

    #: master_background_mos keeps its interpolated flat for flat_field.
    takes_flat_handover = True

    step_defs = {
        **Spec2Pipeline.step_defs,
        "master_background_mos": MasterBackgroundMosPlusStep,
        "flat_field": FlatFieldReuseStep,
    }

    def process(self, data):
        """
        Run calwebb_spec2 with the plus steps, the visit master's companions kept once.

        Parameters
        ----------
        data : str, Level2 Association, or `~stdatamodels.jwst.datamodels.JwstDataModel`
            As for `~jwst.pipeline.Spec2Pipeline.process`.

        Returns
        -------
        list of `~stdatamodels.jwst.datamodels.JwstDataModel`
            The calibrated data models.
        """
        from jwst_mbkg_plus.mos.companions import CompanionCache, is_association_keyword

        mbkg = self.master_background_mos
        self._pending_members = []
        if not mbkg.visit_companions:
            return super().process(data)
        mbkg._companion_cache = CompanionCache()
        if is_association_keyword(mbkg.visit_companions):
            members = self._science_members(data)
            mbkg._association_members = members
            self._pending_members = [(path, header_key(path)) for path in members]
            groups = {key for _, key in self._pending_members}
            log.info("Visit master: %d science members of the association in %d "
                     "visit/detector groups", len(members), len(groups))
        try:
            return super().process(data)
        finally:
            mbkg._companion_cache.close()
            mbkg._companion_cache = None
            mbkg._association_members = None
            self._pending_members = []

    def _science_members(self, data):
        """The association's science member files, resolved as the pipeline opens them."""
        asn = self.load_as_level2_asn(data)
        members = []
        for product in asn["products"]:
            for member in product["members"]:
                name = member["expname"]
                if member["exptype"].lower() == "science" and isinstance(name, str | os.PathLike):
                    members.append(Path(name).resolve())
        return list(dict.fromkeys(members))

    def process_exposure_product(self, *args, **kwargs):
        """
        Calibrate one exposure; a flat kept for another exposure is never reused.

        Parameters
        ----------
        *args, **kwargs
            As for `~jwst.pipeline.Spec2Pipeline.process_exposure_product`.

        Returns
        -------
        `~stdatamodels.jwst.datamodels.JwstDataModel`
            The calibrated product.
        """
        self._drop_flat_handover()
        product = args[0] if args else kwargs.get("exp_product")
        current = self._product_science(product)
        self.master_background_mos._association_current = current
        try:
            return super().process_exposure_product(*args, **kwargs)
        finally:
            self._drop_flat_handover()
            self.master_background_mos._association_current = None
            self._release_companions(current)

    @staticmethod
    def _product_science(product):
        """The science member file of an association product, or None."""
        for member in (product or {}).get("members", []):
            name = member.get("expname")
            if str(member.get("exptype", "")).lower() == "science" and \
                    isinstance(name, str | os.PathLike):
                return Path(name).resolve()
        return None

    def _release_companions(self, done):
        """Close the companions no exposure still to run needs (its group is finished)."""
        pending = getattr(self, "_pending_members", None)
        cache = getattr(self.master_background_mos, "_companion_cache", None)
        if not pending or cache is None:
            return
        self._pending_members = [(p, key) for p, key in pending if p != done]
        cache.release({key for _, key in self._pending_members})

    def _drop_flat_handover(self):
        handover = self.master_background_mos.take_flat_handover()
        if handover is not None:
            handover.close()


class Spec3PipelinePlus(PipelinePlusMixin, Spec3Pipeline):
    """
    `~jwst.pipeline.Spec3Pipeline` with `MasterBackgroundPlusStep`.

    The sub-step keeps jwst's name, ``master_background``.
    """

    class_alias = "calwebb_spec3_plus"

    step_defs = {**Spec3Pipeline.step_defs, "master_background": MasterBackgroundPlusStep}

