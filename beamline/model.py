"""The BTF -> PADME line as an xtrack model whose knobs are magnet currents.

>>> bl = BeamLine("run3_2022", energy_mev=282.5, match_dipoles=True)
>>> bl.set_current("DHSTB01", 179.0)       # A, through the calibration module
>>> bl.set_gap("SLTB4", 1.9)               # mm
>>> tw = bl.twiss()                         # see beamline.optics

Strengths follow the currents through deferred expressions (MAD-X ``:=``); a dipole's
``k0`` is never left to follow its geometry. Both 45 degree dipoles use the exact
``bend-kick-bend`` map with one kick (see ``configure_fast_bends``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from . import calibration
from .beam import BeamParameters, load_beam
from .constants import ELECTRON_MASS_EV, ELECTRON_MASS_MEV, momentum_mev_from_energy
from .errors import BeamlineInputError, LatticeDataError
from .lattice import LineSpec, Settings, line_spec, load_settings, madx_deck, reference_rigidity_tm
from .names import DIPOLES, MAGNETS, QUADRUPOLES, SLITS, check_slit, lattice_element

if TYPE_CHECKING:  # pragma: no cover
    import xtrack as xt

#: lattice elements of the dipoles (``dhstb01``, ``dhstb02``)
BENDS: tuple[str, ...] = tuple(lattice_element(m) for m in DIPOLES)


def configure_fast_bends(line: xt.Line, names: Iterable[str] = BENDS) -> None:
    """Exact, fast map for the pure sector dipoles: one kick between two exact bend maps.

    Set per element: ``configure_bend_model`` would touch every element of the line.
    """
    for name in names:
        line[name].model = "bend-kick-bend"
        line[name].num_multipole_kicks = 1


def _slit_key(slit: str) -> str:
    return check_slit(slit).lower()


class BeamLine:
    """xtrack model of the line for one settings entry, driven by currents [A] and gaps [mm].

    Parameters
    ----------
    settings:
        Settings name under ``lattices/btf_padme/settings`` (default: the line's default).
    energy_mev:
        Reference total beam energy [MeV] (default: the settings' reference energy).
    match_dipoles:
        Set DHSTB01 and DHSTB02 to the currents that bend ``energy_mev`` onto the design
        orbit (calibration of the settings). Otherwise the currents of the settings file
        are kept and a beam of another energy goes off axis, as in the real line.
    fast_bends:
        Use the exact fast dipole map (default). ``False`` keeps xtrack's default bend
        model (for benchmarks only).
    beam:
        Initial beam parameters (default: the beam named by the settings).
    """

    def __init__(
        self,
        settings: str | None = None,
        energy_mev: float | None = None,
        *,
        match_dipoles: bool = False,
        fast_bends: bool = True,
        beam: BeamParameters | None = None,
    ) -> None:
        import xtrack as xt

        self.spec: LineSpec = line_spec()
        self.settings: Settings = load_settings(settings)
        energy = self.settings.reference_energy_mev if energy_mev is None else energy_mev
        self.spec.check_energy(energy)
        try:
            self.env = xt.load(string=madx_deck(self.settings.name, energy), format="madx")
        except BeamlineInputError:
            raise
        except Exception as exc:  # the MAD-X parser raises assorted exception types
            raise LatticeDataError(f"malformed lattice or settings file: {exc}") from exc
        self.line: xt.Line = self.env[self.spec.sequence_name]
        self._check_links()
        if fast_bends:
            configure_fast_bends(self.line)
        self.beam = beam or load_beam(self.settings.beam)
        self._energy_mev = math.nan
        self.set_energy(energy, match_dipoles=match_dipoles)
        for magnet in MAGNETS:
            calibration.magnet_spec(magnet).check_current(self.current_a(magnet))
        for slit in SLITS:
            self._check_gap(slit, self.gap_mm(slit))
        self.line.build_tracker()

    # ---- structure ---------------------------------------------------------------------
    def _check_links(self) -> None:
        """Refuse a lattice whose dipoles or quads are not tied to the current knobs."""
        for name in (*BENDS, *(lattice_element(q) for q in QUADRUPOLES)):
            attr = "k0" if name in BENDS else "k1"
            expr = getattr(self.line.ref[name], attr)._expr
            if expr is None:
                raise LatticeDataError(
                    f"element '{name}' has a frozen {attr} in the lattice file: it must be a "
                    "deferred expression (:=) of the current knobs"
                )
            if name in BENDS and getattr(self.line[name], "k0_from_h", False):
                raise LatticeDataError(f"dipole '{name}' follows its geometry (k0_from_h)")

    @property
    def s_frame_m(self) -> float:
        """Offset [m] between line coordinates and facts-file s (0 at the DHSTB01 entrance)."""
        return float(self.env["s_frame_m"])

    def element_names(self) -> list[str]:
        return list(self.line.element_names)

    def check_element(self, name: str) -> str:
        """Return the element name (lower case) or raise a clear error."""
        key = name.lower()
        if key in ("_end_point", "end"):
            return "_end_point"
        if key not in self.line.element_names:
            named = [n for n in self.line.element_names if not n.startswith(("||", "drift"))]
            raise BeamlineInputError(f"unknown element '{name}'; elements: {', '.join(named)}")
        return key

    # ---- energy ------------------------------------------------------------------------
    @property
    def energy_mev(self) -> float:
        """Reference total beam energy [MeV]."""
        return self._energy_mev

    @property
    def momentum_mev(self) -> float:
        return momentum_mev_from_energy(self._energy_mev, ELECTRON_MASS_MEV)

    def set_energy(self, energy_mev: float, *, match_dipoles: bool = False) -> None:
        """Change the reference beam energy [MeV] (and optionally re-match the dipoles)."""
        import xtrack as xt

        self.spec.check_energy(energy_mev)
        self.line.particle_ref = xt.Particles(
            mass0=ELECTRON_MASS_EV, q0=1, energy0=energy_mev * 1e6
        )
        self.env["brho_tm"] = reference_rigidity_tm(energy_mev)
        self._energy_mev = float(energy_mev)
        if match_dipoles:
            for magnet in DIPOLES:
                self.set_current(magnet, self.matched_dipole_current_a(magnet, energy_mev))

    def matched_dipole_current_a(self, magnet: str, energy_mev: float | None = None) -> float:
        """Current [A] that bends a beam of ``energy_mev`` (default: reference) onto the arc."""
        energy = self._energy_mev if energy_mev is None else energy_mev
        return calibration.dipole_current_for_momentum(
            magnet, momentum_mev_from_energy(energy), self.settings.dipole_calibration
        )

    # ---- knobs -------------------------------------------------------------------------
    def current_a(self, magnet: str) -> float:
        """Present current [A] of a dipole or quadrupole."""
        spec = calibration.magnet_spec(magnet)
        return float(self.env[spec.knob])

    def currents_a(self) -> dict[str, float]:
        return {m: self.current_a(m) for m in MAGNETS}

    def set_current(self, magnet: str, current_a: float) -> None:
        """Set a magnet current [A]; out-of-range values raise before anything changes."""
        spec = calibration.magnet_spec(magnet)
        if not math.isfinite(current_a):
            raise BeamlineInputError(f"{spec.name} current must be a finite number of A")
        spec.check_current(current_a)
        self.env[spec.knob] = float(current_a)

    def set_currents(self, currents_a: dict[str, float]) -> None:
        """Set several currents at once; all are checked before any is applied."""
        for magnet, value in currents_a.items():
            calibration.magnet_spec(magnet).check_current(value)
        for magnet, value in currents_a.items():
            self.set_current(magnet, value)

    def polarity(self, quad: str) -> int:
        spec = calibration.magnet_spec(quad)
        return int(self.env[f"pol_{spec.lattice_element}"])

    def set_polarity(self, quad: str, sign: int) -> None:
        spec = calibration.magnet_spec(quad)
        if spec.name not in QUADRUPOLES or sign not in (1, -1):
            raise BeamlineInputError(f"polarity is +1 or -1 for {', '.join(QUADRUPOLES)}")
        self.env[f"pol_{spec.lattice_element}"] = sign

    def gap_mm(self, slit: str) -> float:
        """Full gap [mm] of a slit."""
        return float(self.env[f"{_slit_key(slit)}_gap_mm"])

    def center_mm(self, slit: str) -> float:
        """Offset [mm] of the jaw centre from the axis."""
        return float(self.env[f"{_slit_key(slit)}_center_mm"])

    def _check_gap(self, slit: str, gap_mm: float) -> None:
        key = _slit_key(slit)
        max_gap = self.spec.slit(key).max_gap_mm
        if not (math.isfinite(gap_mm) and 0 < gap_mm <= max_gap):
            raise BeamlineInputError(
                f"{key.upper()} gap {gap_mm:g} mm not allowed: must be > 0 and <= {max_gap:g} mm "
                "(the vacuum chamber)"
            )

    def set_gap(self, slit: str, gap_mm: float, center_mm: float | None = None) -> None:
        """Set a slit's full gap [mm] and optionally its jaw-centre offset [mm]."""
        key = _slit_key(slit)
        self._check_gap(slit, gap_mm)
        self.env[f"{key}_gap_mm"] = float(gap_mm)
        if center_mm is not None:
            self.env[f"{key}_center_mm"] = float(center_mm)

    def set_jaws(self, slit: str, negative_mm: float, positive_mm: float) -> None:
        """Set independent jaw positions [mm] (edge of the negative and positive jaw)."""
        if positive_mm <= negative_mm:
            raise BeamlineInputError(
                f"{slit}: the positive jaw ({positive_mm:g} mm) must be above the negative jaw "
                f"({negative_mm:g} mm)"
            )
        self.set_gap(slit, positive_mm - negative_mm, 0.5 * (positive_mm + negative_mm))

    def knob_values(self) -> dict[str, float]:
        """All knobs: currents [A], polarities, gaps and centres [mm], energy [MeV]."""
        out: dict[str, float] = {"energy_mev": self.energy_mev}
        out.update({f"{m.lower()}_current_a": v for m, v in self.currents_a().items()})
        out.update({f"{q.lower()}_polarity": self.polarity(q) for q in QUADRUPOLES})
        for slit in SLITS:
            out[f"{slit.lower()}_gap_mm"] = self.gap_mm(slit)
            out[f"{slit.lower()}_center_mm"] = self.center_mm(slit)
        return out

    # ---- particles and tracking --------------------------------------------------------
    def build_particles(self, **coords: Any) -> xt.Particles:
        """Particles at the line start from the reference particle (offsets as ``delta``)."""
        return self.line.build_particles(**coords)

    def track(self, particles: xt.Particles, **kwargs: Any) -> xt.Particles:
        """Track from the line start (loss positions are then reported correctly)."""
        self.line.track(particles, **kwargs)
        return particles
