"""Errors raised for bad user input or bad data. The CLI turns them into one line and exit 2."""


class BeamlineInputError(ValueError):
    """A value the user gave (energy, current, gap, element name, settings name) is not allowed."""


class LatticeDataError(BeamlineInputError):
    """A lattice, settings or calibration file is missing or malformed."""
