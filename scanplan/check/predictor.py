"""Model prediction of the TimePix spot for the step checker and the simulator.

:class:`SpotPredictor` wraps :func:`beamline.spot.predict_spot` on one
:class:`beamline.model.BeamLine` with a thread-safe LRU cache keyed by the currents rounded
to ``resolution_a``; the defaults of resolution and cache size come from
``lattices/checks/tolerances.toml``, the spread from the plan or the physics model, the
settings (None) from ``line.toml``'s ``default_settings``.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from .tolerances import CheckTolerances

if TYPE_CHECKING:  # heavy (xtrack) imports only when a model is built
    from beamline.model import BeamLine
    from beamline.spot import SpotPrediction


def default_rel_spread() -> float:
    """The physics model's relative beam-energy spread (``default_bes``, lattices/physics/)."""
    from ..physics.params import load_physics

    return load_physics().signal.default_bes


class SpotPredictor:
    """Thread-safe, cached wrapper of :func:`beamline.spot.predict_spot` on one BeamLine.

    Currents are rounded to ``resolution_a`` for the cache key (LRU of ``cache_size``), so
    repeated predictions (simulator frames, polling) cost a dictionary look-up. The
    BeamLine is built on first use (~1 s, most of it importing xtrack) unless given.
    """

    def __init__(
        self,
        settings: str | None = None,
        *,
        beamline: BeamLine | None = None,
        rel_spread: float | None = None,
        resolution_a: float | None = None,
        cache_size: int | None = None,
    ) -> None:
        shipped = CheckTolerances.shipped()
        self.settings = settings
        # The beam-energy spread is a physics fact with one home (lattices/physics/
        # default_bes); a plan that states its own BES passes it (see predictor_for).
        self.rel_spread = default_rel_spread() if rel_spread is None else rel_spread
        self.resolution_a = (
            shipped.simulator.cache_resolution_a if resolution_a is None else resolution_a
        )
        self.cache_size = shipped.simulator.cache_size if cache_size is None else cache_size
        self._bl = beamline
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[int, ...], SpotPrediction] = OrderedDict()
        #: the settings' quadrupole currents (magnet -> A), used when a call gives none
        self._settings_quads_a: dict[str, float] | None = None
        self.hits = 0
        self.misses = 0

    @property
    def beamline(self) -> BeamLine:
        with self._lock:
            return self._beamline()

    def _beamline(self) -> BeamLine:
        if self._bl is None:
            from beamline.model import BeamLine

            self._bl = BeamLine(self.settings)
        if self._settings_quads_a is None:
            from beamline.names import QUADRUPOLES

            self._settings_quads_a = {q: self._bl.current_a(q) for q in QUADRUPOLES}
        return self._bl

    def predict(
        self,
        dhstb01_current_a: float,
        dhstb02_current_a: float,
        quadrupoles_a: Mapping[str, float] | None = None,
    ) -> SpotPrediction:
        """Predicted spot for the DHSTB01/DHSTB02 currents [A] and the quadrupole currents
        ``quadrupoles_a`` (magnet name Q1..Q4 -> A; a quad not given, or all when None: the
        settings' current). Model input errors raise
        :class:`beamline.errors.BeamlineInputError`."""
        from beamline.errors import BeamlineInputError
        from beamline.names import QUADRUPOLES
        from beamline.spot import predict_spot

        quads = dict(quadrupoles_a or {})
        unknown = set(quads) - set(QUADRUPOLES)
        if unknown:
            raise BeamlineInputError(f"unknown quadrupoles {sorted(unknown)}; {QUADRUPOLES}")
        if not all(
            math.isfinite(v) for v in (dhstb01_current_a, dhstb02_current_a, *quads.values())
        ):
            raise BeamlineInputError("magnet currents must be finite to predict the beam spot")
        with self._lock:
            self._beamline()
            assert self._settings_quads_a is not None
            quads = {**self._settings_quads_a, **quads}
        key = tuple(
            round(v / self.resolution_a)
            for v in (dhstb01_current_a, dhstb02_current_a, *(quads[q] for q in QUADRUPOLES))
        )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit
            self.misses += 1
            i1, i2, *iq = (k * self.resolution_a for k in key)
            bl = self._beamline()
            try:
                bl.set_currents(dict(zip(QUADRUPOLES, iq, strict=True)))
                with np.errstate(all="raise"):  # numpy's error state is per thread
                    pred = predict_spot(bl, i1, i2, rel_spread=self.rel_spread)
            except FloatingPointError as exc:
                raise BeamlineInputError(
                    f"no model prediction for DHSTB01 {i1:.3f} A, DHSTB02 {i2:.3f} A "
                    f"(optics undefined: {exc})"
                ) from None
            self._cache[key] = pred
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return pred
