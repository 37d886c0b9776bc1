"""Errors of the planning/checking layer that the CLI reports as one line with exit 2."""


class ScanplanError(ValueError):
    """Bad user input or data at the scanplan level (plan files, ranges, stores)."""
