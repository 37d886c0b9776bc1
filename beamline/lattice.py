"""The BTF -> PADME lattice as data: settings catalogue and the MAD-X deck both codes read.

A *deck* is the MAD-X text made of, in order: the calibration definitions
(:func:`beamline.calibration.madx_definitions`), the sequence file, the settings (.str)
file and the reference rigidity ``brho_tm``. xtrack (``xt.load``) and MAD-X (cpymad
``Madx.input``) are given the very same text.
"""

from __future__ import annotations

import argparse
import functools
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from . import calibration
from .constants import ELECTRON_MASS_MEV, momentum_mev_from_energy, rigidity_tm_from_momentum
from .datafiles import data_names, named_data_file, read_toml, require
from .errors import BeamlineInputError, LatticeDataError
from .paths import data_file

LINE_DIR = "btf_padme"


@dataclass(frozen=True)
class LineSpec:
    """Line-level parameters from ``lattices/btf_padme/line.toml``."""

    version: str
    sequence_file: Path
    sequence_name: str
    default_settings: str
    energy_range_mev: tuple[float, float]
    key_points: dict[str, str]
    slits: dict[str, dict]

    def check_energy(self, energy_mev: float) -> float:
        lo, hi = self.energy_range_mev
        if not (lo <= energy_mev <= hi):
            raise BeamlineInputError(
                f"beam energy {energy_mev:g} MeV is outside the line's range {lo:g}..{hi:g} MeV"
            )
        return energy_mev


@dataclass(frozen=True)
class Settings:
    """A named settings entry: the .str strength file and its metadata."""

    name: str
    version: str
    description: str
    strength_file: Path
    beam: str
    reference_energy_mev: float
    dipole_calibration: str
    quadrupole_calibration: str


@functools.cache
def line_spec() -> LineSpec:
    path = data_file(LINE_DIR, "line.toml")
    raw = read_toml(path)
    w = str(path)
    lo, hi = require(raw, "energy_range_mev", w)
    return LineSpec(
        version=require(raw, "version", w),
        sequence_file=data_file(LINE_DIR, require(raw, "sequence_file", w)),
        sequence_name=require(raw, "sequence_name", w),
        default_settings=require(raw, "default_settings", w),
        energy_range_mev=(float(lo), float(hi)),
        key_points=dict(require(raw, "key_points", w)),
        slits=dict(require(raw, "slits", w)),
    )


def available_settings() -> list[str]:
    """Names of the settings entries under ``lattices/btf_padme/settings``."""
    return data_names(LINE_DIR, "settings")


@functools.cache
def load_settings(name: str | None = None) -> Settings:
    """Settings entry by name (the line's default when ``None``)."""
    name = name or line_spec().default_settings
    path = named_data_file("settings", name, LINE_DIR, "settings")
    raw = read_toml(path)
    w = str(path)
    return Settings(
        name=name,
        version=require(raw, "version", w),
        description=raw.get("description", ""),
        strength_file=data_file(LINE_DIR, "settings", require(raw, "strength_file", w)),
        beam=require(raw, "beam", w),
        reference_energy_mev=float(require(raw, "reference_energy_mev", w)),
        dipole_calibration=require(raw, "dipole_calibration", w),
        quadrupole_calibration=require(raw, "quadrupole_calibration", w),
    )


_STATEMENT = re.compile(r"^\s*([a-z_][a-z0-9_.]*)\s*:?=\s*([^;]+);", re.IGNORECASE | re.MULTILINE)


def read_strength_values(path: Path) -> dict[str, float]:
    """Numeric ``name = value;`` assignments of a settings file (for validation and display).

    Raises ``LatticeDataError`` for a statement whose value is not a plain number.
    """
    text = Path(path).read_text()
    values: dict[str, float] = {}
    for line in text.splitlines():
        code = line.split("!", 1)[0]
        for m in _STATEMENT.finditer(code):
            key, raw = m.group(1).lower(), m.group(2).strip()
            try:
                values[key] = float(raw)
            except ValueError:
                raise LatticeDataError(
                    f"{path}: '{key}' must be a plain number in a settings file, got '{raw}'"
                ) from None
    return values


@functools.cache
def sequence_constant(name: str) -> float:
    """A plain-number geometry constant of the sequence file (e.g. ``rho_dip_m``)."""
    path = line_spec().sequence_file
    pattern = re.compile(rf"^\s*{re.escape(name)}\s*=\s*([-+0-9.eE]+)\s*;", re.MULTILINE)
    m = pattern.search(path.read_text())
    if m is None:
        raise LatticeDataError(f"{path}: no plain-number assignment of '{name}'")
    return float(m.group(1))


def bend_radius_m() -> float:
    """Geometric bending radius [m] of the 45 degree dipoles (the sequence's ``rho_dip_m``)."""
    return sequence_constant("rho_dip_m")


def reference_rigidity_tm(energy_mev: float) -> float:
    """B*rho [T m] of a positron of total energy ``energy_mev``."""
    return rigidity_tm_from_momentum(momentum_mev_from_energy(energy_mev, ELECTRON_MASS_MEV))


def madx_deck(settings: str | None = None, energy_mev: float | None = None) -> str:
    """The full MAD-X text (calibrations + sequence + settings + brho) for both codes."""
    s = load_settings(settings)
    spec = line_spec()
    energy = spec.check_energy(s.reference_energy_mev if energy_mev is None else energy_mev)
    calib = calibration.madx_definitions(
        {m: s.dipole_calibration for m in calibration.DIPOLES},
        {m: s.quadrupole_calibration for m in calibration.QUADRUPOLES},
    )
    read_strength_values(s.strength_file)  # fail early on a malformed settings file
    parts = [
        f"! btf-scanplan deck: line {spec.version}, settings {s.name} ({s.version})",
        calib,
        spec.sequence_file.read_text(),
        s.strength_file.read_text(),
        f"! reference beam: positron, total energy {energy!r} MeV",
        f"brho_tm = {reference_rigidity_tm(energy)!r};",
        "",
    ]
    return "\n".join(parts)


def madx_beam_command(energy_mev: float) -> str:
    """MAD-X ``beam`` statement for a positron of total energy ``energy_mev``."""
    return f"beam, particle=positron, energy={energy_mev * 1e-3!r};"


def deck_path(name: str) -> str:
    """Path of a file under ``lattices/btf_padme`` as MAD-X ``call`` needs it: relative to the
    repository root, the directory MAD-X is started in (``madx < lattices/btf_padme/X``)."""
    return f"lattices/{LINE_DIR}/{name}"


def derived_definitions_text(settings: str | None = None) -> str:
    """MAD-X text of the derived variables (``b_*_g``, ``brho_*_tm``, ``g_*_tpm``) for the
    calibrations a settings entry names."""
    s = load_settings(settings)
    calib = calibration.madx_definitions(
        {m: s.dipole_calibration for m in calibration.DIPOLES},
        {m: s.quadrupole_calibration for m in calibration.QUADRUPOLES},
    )
    return (
        f"! Derived variables for settings {s.name} ({s.version}): magnet currents -> fields.\n"
        "! GENERATED by scripts/gen_madx_decks.py from lattices/calibrations: do not edit.\n"
        + calib
    )


def entry_deck_files(settings: str | None = None) -> dict[str, str]:
    """Text of the MAD-X entry files of a settings entry, by file name under
    ``lattices/btf_padme``: ``<name>_derived.madx`` and the entry deck ``<name>.madx``, which
    calls the derived definitions, the sequence and the settings, sets ``brho_tm`` and the
    beam at the reference energy, the initial optics of the settings' beam, and runs twiss.

    Text only: writing the files is the caller's job (``scripts/gen_madx_decks.py``).
    """
    from .beam import load_beam

    s = load_settings(settings)
    spec = line_spec()
    read_strength_values(s.strength_file)  # fail early on a malformed settings file
    energy = spec.check_energy(s.reference_energy_mev)
    twiss0 = load_beam(s.beam).twiss_init()
    derived = f"{s.name}_derived.madx"
    rel_str = s.strength_file.relative_to(spec.sequence_file.parent).as_posix()
    init = ", ".join(f"{k}={v!r}" for k, v in twiss0.items())
    deck = "\n".join(
        [
            f"! MAD-X entry deck: BTF -> PADME line {spec.version}, settings {s.name} "
            f"({s.version}).",
            "! GENERATED by scripts/gen_madx_decks.py (beamline.lattice.entry_deck_files): do "
            "not edit.",
            "! Run from the repository root:  madx < " + deck_path(f"{s.name}.madx"),
            "! (cpymad: Madx().chdir(<repo root>); .call('" + deck_path(f"{s.name}.madx") + "'))",
            "option, -echo, -info;",
            f'call, file="{deck_path(derived)}";',
            f'call, file="{deck_path(spec.sequence_file.name)}";',
            f'call, file="{deck_path(rel_str)}";',
            f"! reference beam: positron, total energy {energy!r} MeV",
            f"brho_tm = {reference_rigidity_tm(energy)!r};",
            madx_beam_command(energy),
            f"use, sequence={spec.sequence_name};",
            f"! initial optics at the line start: beam {s.beam}",
            f"twiss, {init};",
            "",
        ]
    )
    return {derived: derived_definitions_text(s.name), f"{s.name}.madx": deck}


def main(argv: list[str] | None = None) -> int:
    """Print a stand-alone MAD-X deck: ``python -m beamline.lattice > deck.madx``."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--settings", default=None)
    parser.add_argument("--energy-mev", type=float, default=None)
    args = parser.parse_args(argv)
    s = load_settings(args.settings)
    energy = s.reference_energy_mev if args.energy_mev is None else args.energy_mev
    text = madx_deck(args.settings, energy)
    text += madx_beam_command(energy) + f"\nuse, sequence={line_spec().sequence_name};\n"
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
