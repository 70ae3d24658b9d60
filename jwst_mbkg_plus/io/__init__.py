"""File formats: user background spectra, x1d/cal spectra, slits and the step's products."""
