"""The LINAC positron beam entering the line: parameters, material layers, seeded particles.

A :class:`BeamSource` bundles the beam (:class:`beamline.beam.BeamParameters`: Twiss at the
line start, geometric rms emittances, rms momentum spread, mean momentum offset, positrons
per bunch) with the thin scattering layers of the beam file (``[scattering]`` of
``lattices/btf_padme/beams/<name>.toml``) and the switch that enables them.

Particles are Gaussian in the 5 transverse/momentum coordinates (no longitudinal dynamics in
the line: ``zeta = 0``). Seeding: particle ``i`` of a run with base seed ``s`` takes its
standard normals from block ``i // BLOCK``, drawn from ``SeedSequence(s, spawn_key=(block,))``,
so its numbers depend only on ``(s, i)``: never on the chunk size, the energy, the aperture
grid or the number of workers ("common random numbers": every energy of a scan sees the same
normalised particles). ASSUMED: the geometric emittances of
the beam file hold at every scan energy.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from .beam import BeamParameters, load_beam, load_beam_file
from .datafiles import replace_fields
from .errors import BeamlineInputError
from .lattice import load_settings
from .scattering import ScatteringLayer

#: Number of standard-normal deviates per particle for the beam (x, x', y, y', delta).
N_BEAM_DEVIATES = 5
#: Deviates per particle and layer for the scattering kicks (x, y).
N_KICK_DEVIATES = 2


@dataclass(frozen=True)
class BeamSource:
    """Beam parameters plus the thin material layers and whether they scatter.

    ``scattering``: Highland angle kicks at each layer of ``layers`` not named in
    ``disabled_layers`` (layers switched off keep their place, hence their random numbers).
    """

    beam: BeamParameters
    layers: tuple[ScatteringLayer, ...]
    scattering: bool
    disabled_layers: frozenset[str] = frozenset()
    #: energy loss in the active layers (beamline.energy_loss): "full", "mean" or "off"
    energy_loss: str = "full"

    @property
    def name(self) -> str:
        return self.beam.name

    @property
    def version(self) -> str:
        return self.beam.version

    @property
    def active_layers(self) -> tuple[ScatteringLayer, ...]:
        """The layers that kick (none when scattering is off)."""
        if not self.scattering:
            return ()
        return tuple(la for la in self.layers if la.name not in self.disabled_layers)

    def with_beam(self, **changes: float) -> BeamSource:
        """A copy with beam parameters overridden (``BeamParameters.replace`` names)."""
        return dataclasses.replace(self, beam=self.beam.replace(**changes))

    def with_energy_loss(self, mode: str) -> BeamSource:
        """A copy with energy loss "full" (mean and fluctuations), "mean" or "off"."""
        if mode not in ("full", "mean", "off"):
            raise BeamlineInputError(f"energy loss must be full, mean or off, got {mode!r}")
        return dataclasses.replace(self, energy_loss=mode)

    def with_scattering(self, enabled: bool) -> BeamSource:
        return dataclasses.replace(self, scattering=bool(enabled))

    def with_layer(self, name: str, **changes: float) -> BeamSource:
        """A copy with one layer's ``thickness_m``/``radiation_length_m`` overridden."""
        names = [layer.name for layer in self.layers]
        if name not in names:
            raise BeamlineInputError(f"unknown scattering layer '{name}'; layers: {names}")
        layers = tuple(
            replace_fields(layer, f"scattering layer {name}", changes)
            if layer.name == name
            else layer
            for layer in self.layers
        )
        return dataclasses.replace(self, layers=layers)

    def without_layer(self, name: str) -> BeamSource:
        """A copy without layer ``name`` (the other layers keep their random numbers)."""
        if name not in [layer.name for layer in self.layers]:
            raise BeamlineInputError(f"unknown scattering layer '{name}'")
        return dataclasses.replace(self, disabled_layers=self.disabled_layers | {name})

    def with_divergence_scale(self, factor: float) -> BeamSource:
        """A copy whose rms divergence at the beam waist is ``factor`` times larger, the waist
        size and position unchanged (both planes)."""
        return dataclasses.replace(self, beam=scale_divergence(self.beam, factor))

    def metadata(self) -> dict[str, object]:
        """Flat description for result metadata."""
        b = self.beam
        out: dict[str, object] = {
            "beam": b.name,
            "beam_version": b.version,
            "emit_x_m": b.emit_x_m,
            "emit_y_m": b.emit_y_m,
            "betx_m": b.betx_m,
            "alfx": b.alfx,
            "bety_m": b.bety_m,
            "alfy": b.alfy,
            "sigma_delta": b.sigma_delta,
            "delta_offset": b.delta_offset,
            "beam_definition": b.definition,
            "source_element": b.injection_element or "line start",
            "positrons_per_bunch": b.positrons_per_bunch,
            "scattering": "highland" if self.scattering else "off",
            "energy_loss": self.energy_loss if self.active_layers else "off",
        }
        for layer in self.layers:
            out[f"layer_{layer.name}"] = (
                f"{layer.material} {layer.thickness_m * 1e6:g} um, X0 {layer.radiation_length_m:g} m"
                + ("" if layer in self.active_layers else " (no scattering)")
            )
        return out


def waist(beam: BeamParameters, plane: str = "x") -> tuple[float, float]:
    """Distance [m] from the line start to the beam waist (drift optics) and beta* [m]."""
    beta, alpha = (beam.betx_m, beam.alfx) if plane == "x" else (beam.bety_m, beam.alfy)
    gamma = (1.0 + alpha * alpha) / beta
    return alpha / gamma, 1.0 / gamma


def scale_divergence(beam: BeamParameters, factor: float) -> BeamParameters:
    """Beam with its waist divergence scaled by ``factor`` (> 0), waist size and position kept.

    At the waist sigma = sqrt(eps beta*), sigma' = sqrt(eps / beta*): eps -> f eps,
    beta* -> beta*/f; the Twiss at the line start follow by drift transport.
    """
    if not (math.isfinite(factor) and factor > 0):
        raise BeamlineInputError(f"divergence scale must be > 0, got {factor!r}")
    changes: dict[str, float] = {}
    for plane, (bk, ak, ek) in {
        "x": ("betx_m", "alfx", "emit_x_m"),
        "y": ("bety_m", "alfy", "emit_y_m"),
    }.items():
        dist, beta_star = waist(beam, plane)
        new_star = beta_star / factor
        changes[bk] = new_star + dist * dist / new_star
        changes[ak] = dist / new_star
        changes[ek] = getattr(beam, ek) * factor
    return beam.replace(**changes)


def load_layers(name: str) -> tuple[tuple[ScatteringLayer, ...], bool]:
    """Scattering layers and the default on/off switch of beam file ``name``."""
    table = load_beam_file(name).scattering
    return table.layers, table.enabled


def load_source(
    name: str | None = None, *, settings: str | None = None, scattering: bool | None = None
) -> BeamSource:
    """Beam source by beam-file name (default: the beam named by ``settings``, the LINAC
    beam before the selection).

    ``scattering`` overrides the file's default switch.
    """
    beam_name = name or load_settings(settings).beam
    layers, enabled = load_layers(beam_name)
    return _source(beam_name, layers, enabled, scattering)


def spread_source(settings: str | None = None, *, scattering: bool | None = None) -> BeamSource:
    """The spread engine's default source of a settings entry: its ``spread_beam`` (the beam
    as PADME's simulation defines it, after the selection, for run3_2022), else its
    ``beam``. The engine's result metadata names the source and where it is defined."""
    s = load_settings(settings)
    name = s.spread_beam or s.beam
    layers, enabled = load_layers(name)
    return _source(name, layers, enabled, scattering)


def _source(
    beam_name: str,
    layers: tuple[ScatteringLayer, ...],
    enabled: bool,
    scattering: bool | None,
) -> BeamSource:
    return BeamSource(
        beam=load_beam(beam_name),
        layers=layers,
        scattering=enabled if scattering is None else bool(scattering),
    )


#: Particles per random block: particle ``i`` takes its deviates from block ``i // BLOCK``.
BLOCK = 50_000


def block_rng(seed: int, block_index: int) -> np.random.Generator:
    """Generator of block ``block_index`` of a run with base ``seed``."""
    if seed < 0 or block_index < 0:
        raise BeamlineInputError("seed and block index must be >= 0")
    return np.random.Generator(
        np.random.PCG64(np.random.SeedSequence(entropy=int(seed), spawn_key=(int(block_index),)))
    )


def draw_deviates(seed: int, start: int, stop: int, n_layers: int) -> np.ndarray:
    """Standard normals of particles ``start <= i < stop``, shape ``(5 + 2 n_layers, n)``.

    Rows: x, x', y, y', delta, then (x, y) kick per scattering layer. Particle ``i`` gets
    the same numbers whatever the chunking, and the beam rows do not depend on
    ``n_layers`` or on whether scattering is on.
    """
    if not 0 <= start <= stop:
        raise BeamlineInputError("particle range must satisfy 0 <= start <= stop")
    rows = N_BEAM_DEVIATES + N_KICK_DEVIATES * n_layers
    out = np.empty((rows, stop - start))
    first, last = start // BLOCK, (stop - 1) // BLOCK if stop > start else start // BLOCK - 1
    for b in range(first, last + 1):
        block = block_rng(seed, b).standard_normal((rows, BLOCK))
        lo, hi = max(start, b * BLOCK), min(stop, (b + 1) * BLOCK)
        out[:, lo - start : hi - start] = block[:, lo - b * BLOCK : hi - b * BLOCK]
    return out


def initial_coordinates(beam: BeamParameters, deviates: np.ndarray) -> dict[str, np.ndarray]:
    """Coordinates at the line start from the first 5 rows of ``deviates``.

    ``x = sqrt(eps beta) u0 + D delta``, ``x' = sqrt(eps/beta)(u1 - alpha u0) + D' delta``,
    ``delta = delta_offset + sigma_delta u4``; the canonical ``px = (1 + delta) x'``
    (xtrack/MAD-X momenta are normalised to the reference momentum). Same for y (no y
    dispersion). Lengths [m], angles [rad].
    """
    u = deviates
    b = beam
    delta = b.delta_offset + b.sigma_delta * u[4]
    sx, sy = math.sqrt(b.emit_x_m * b.betx_m), math.sqrt(b.emit_y_m * b.bety_m)
    spx, spy = math.sqrt(b.emit_x_m / b.betx_m), math.sqrt(b.emit_y_m / b.bety_m)
    x = sx * u[0] + b.dx_m * delta
    xp = spx * (u[1] - b.alfx * u[0]) + b.dpx * delta
    y = sy * u[2]
    yp = spy * (u[3] - b.alfy * u[2])
    one_d = 1.0 + delta
    return {"x": x, "px": xp * one_d, "y": y, "py": yp * one_d, "delta": delta}
