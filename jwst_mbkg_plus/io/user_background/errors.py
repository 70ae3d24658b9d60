"""Errors of the user-background reader: each names the file and the fix.
"""

from __future__ import annotations

import logging

from jwst_mbkg_plus.safe_io import (
    PackageInputError,
)

__all__ = [
    "UserBackgroundColumnError",
    "UserBackgroundCoverageError",
    "UserBackgroundError",
    "UserBackgroundFileNotFoundError",
    "UserBackgroundFormatError",
    "UserBackgroundUnitError",
    "UserBackgroundUnreadableError",
    "UserBackgroundValueError",
]

log = logging.getLogger(__name__)

class UserBackgroundError(PackageInputError):
    """A user background file cannot be used; the message names the file and the fix."""


class UserBackgroundFileNotFoundError(UserBackgroundError, FileNotFoundError):
    """The user background file does not exist."""


class UserBackgroundFormatError(UserBackgroundError):
    """The file is unreadable, of an unsupported format, or holds no table."""


class UserBackgroundUnreadableError(UserBackgroundFormatError):
    """The file cannot be opened: a folder, no read permission, an I/O error."""


class UserBackgroundColumnError(UserBackgroundError):
    """A required column is missing or not numeric."""


class UserBackgroundUnitError(UserBackgroundError):
    """A unit is unparsable, of the wrong kind, or missing where it is needed."""


class UserBackgroundValueError(UserBackgroundError):
    """The values are unusable: no or too few finite points, bad wavelengths, negative errors."""


class UserBackgroundCoverageError(UserBackgroundError):
    """The background covers too little of the science wavelength range."""


