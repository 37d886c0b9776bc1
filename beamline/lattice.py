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
from pathlib import Path

from . import calibration
from .constants import ELECTRON_MASS_MEV, momentum_mev_from_energy, rigidity_tm_from_momentum
from .datafiles import data_names, load_toml_model, named_data_file
from .errors import LatticeDataError
from .paths import data_file
from .schemas import LineSpec, Settings, SettingsFile

__all__ = [
    "LINE_DIR",
    "LineSpec",
    "Settings",
    "available_settings",
    "bend_radius_m",
    "entry_deck_files",
    "line_spec",
    "load_settings",
    "madx_beam_command",
    "madx_deck",
    "read_strength_values",
    "reference_rigidity_tm",
    "settings_currents_a",
    "standalone_deck",
]

LINE_DIR = "btf_padme"


@functools.cache
def line_spec() -> LineSpec:
    """The line parameters of ``lattices/btf_padme/line.toml`` (sequence file resolved)."""
    spec = load_toml_model(data_file(LINE_DIR, "line.toml"), LineSpec)
    return spec.model_copy(update={"sequence_file": data_file(LINE_DIR, str(spec.sequence_file))})


def available_settings() -> list[str]:
    """Names of the settings entries under ``lattices/btf_padme/settings``."""
    return data_names(LINE_DIR, "settings")


@functools.cache
def load_settings(name: str | None = None) -> Settings:
    """Settings entry by name (the line's default when ``None``)."""
    name = name or line_spec().default_settings
    path = named_data_file("settings", name, LINE_DIR, "settings")
    entry = load_toml_model(path, SettingsFile)
    references = (
        ("beam", entry.beam, data_names(LINE_DIR, "beams")),
        (
            "dipole_calibration",
            entry.dipole_calibration,
            calibration.dipole_calibrations().calibrations,
        ),
        (
            "quadrupole_calibration",
            entry.quadrupole_calibration,
            calibration.quadrupole_calibrations().calibrations,
        ),
    )
    for key, value, known in references:
        if value not in known:
            raise LatticeDataError(
                f"{path}: key '{key}': '{value}' is not defined; known: {', '.join(known)}"
            )
    strength = data_file(LINE_DIR, "settings", str(entry.strength_file))
    return Settings(name=name, **{**dict(entry), "strength_file": strength})


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


def settings_currents_a(settings: str | None = None) -> dict[str, float]:
    """Magnet currents [A] of a settings entry's .str file, by magnet name (``DHSTB01``,
    ``Q1``...), read without building the model (the knobs are ``MagnetSpec.knob``)."""
    s = load_settings(settings)
    values = read_strength_values(s.strength_file)
    magnets = {
        **calibration.dipole_calibrations().magnets,
        **calibration.quadrupole_calibrations().magnets,
    }
    missing = [spec.knob for spec in magnets.values() if spec.knob not in values]
    if missing:
        raise LatticeDataError(f"{s.strength_file}: no value for {', '.join(missing)}")
    return {name: values[spec.knob] for name, spec in magnets.items()}


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
        {m: s.dipole_calibration for m in calibration.dipole_calibrations().magnets},
        {m: s.quadrupole_calibration for m in calibration.quadrupole_calibrations().magnets},
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


def standalone_deck(settings: str | None = None, energy_mev: float | None = None) -> str:
    """A MAD-X deck that runs on its own: :func:`madx_deck` plus ``beam`` and ``use``.

    ``energy_mev`` [MeV] defaults to the settings' reference energy.
    """
    s = load_settings(settings)
    energy = s.reference_energy_mev if energy_mev is None else energy_mev
    text = madx_deck(settings, energy)
    return text + madx_beam_command(energy) + f"\nuse, sequence={line_spec().sequence_name};\n"


def deck_path(name: str) -> str:
    """Path of a file under ``lattices/btf_padme`` as MAD-X ``call`` needs it: relative to the
    repository root, the directory MAD-X is started in (``madx < lattices/btf_padme/X``)."""
    return f"lattices/{LINE_DIR}/{name}"


def derived_definitions_text(settings: str | None = None) -> str:
    """MAD-X text of the derived variables (``b_*_g``, ``brho_*_tm``, ``g_*_tpm``) for the
    calibrations a settings entry names."""
    s = load_settings(settings)
    calib = calibration.madx_definitions(
        {m: s.dipole_calibration for m in calibration.dipole_calibrations().magnets},
        {m: s.quadrupole_calibration for m in calibration.quadrupole_calibrations().magnets},
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
    """Print a stand-alone MAD-X deck: ``python -m beamline.lattice > deck.madx``.

    The deck goes to stdout: ``beamline`` writes no files.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--settings", default=None)
    parser.add_argument("--energy-mev", type=float, default=None)
    args = parser.parse_args(argv)
    print(standalone_deck(args.settings, args.energy_mev), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
