"""User-supplied background spectra: read, validate and write them.

The formats people actually have (jwst x1d/c1d products, FITS tables, ECSV,
CSV and whitespace text, with or without units) are read by
:func:`read_user_background`, checked and converted to micron and MJy/sr;
:func:`write_user_background` writes one in the format jwst's
``user_background`` parameter takes.
"""

from jwst_mbkg_plus.io.user_background.columns_units import (
    ERROR_NAMES,
    MIN_POINTS,
    SURF_BRIGHT_NAMES,
    WAVELENGTH_NAMES,
)
from jwst_mbkg_plus.io.user_background.errors import (
    UserBackgroundColumnError,
    UserBackgroundCoverageError,
    UserBackgroundError,
    UserBackgroundFileNotFoundError,
    UserBackgroundFormatError,
    UserBackgroundUnitError,
    UserBackgroundUnreadableError,
    UserBackgroundValueError,
)
from jwst_mbkg_plus.io.user_background.validate import UserBackground, read_user_background
from jwst_mbkg_plus.io.user_background.writer import write_user_background

__all__ = [
    "ERROR_NAMES",
    "MIN_POINTS",
    "SURF_BRIGHT_NAMES",
    "WAVELENGTH_NAMES",
    "UserBackground",
    "UserBackgroundColumnError",
    "UserBackgroundCoverageError",
    "UserBackgroundError",
    "UserBackgroundFileNotFoundError",
    "UserBackgroundFormatError",
    "UserBackgroundUnitError",
    "UserBackgroundUnreadableError",
    "UserBackgroundValueError",
    "read_user_background",
    "write_user_background",
]
