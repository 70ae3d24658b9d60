"""Class-level behaviour shared by every plus step and pipeline."""

__all__ = ["PLUGIN_LOGGERS", "PlusMixin"]

#: Loggers stpipe configures for the plus classes: jwst's own plus this package's.
PLUGIN_LOGGERS = ("jwst_mbkg_plus",)


class PlusMixin:
    """
    Keep a plus class native to jwst's CRDS and logging set-up.

    Put first among the bases, before the jwst class it extends.
    """

    @classmethod
    def get_config_reftype(cls):
        """
        Use the CRDS parameter reftype of the jwst class this one extends.

        CRDS ``pars-*`` defaults delivered for jwst's step then apply to the plus
        step too, rather than a reftype CRDS has never heard of.

        Returns
        -------
        str
            The ``pars-<jwstclass>`` reftype.
        """
        for base in cls.__mro__[1:]:
            if base.__module__.startswith("jwst.") and hasattr(base, "get_config_reftype"):
                return base.get_config_reftype()
        return super().get_config_reftype()  # pragma: no cover - always a jwst base

    @staticmethod
    def get_stpipe_loggers():
        """
        Name the loggers stpipe configures, so this package's lines show under strun.

        Returns
        -------
        tuple of str
            jwst's logger names and this package's.
        """
        from jwst.stpipe.core import JwstStep

        return tuple(JwstStep.get_stpipe_loggers()) + PLUGIN_LOGGERS
