"""Model prediction of the TimePix spot for the step checker and the simulator.

:class:`SpotPredictor` wraps :func:`beamline.spot.predict_spot` on one
:class:`beamline.model.BeamLine` with a thread-safe LRU cache keyed by the currents rounded
to ``resolution_a``; the defaults of resolution and cache size come from
``lattices/checks/tolerances.toml``, the spread from the plan or the physics model, the
settings (None) from ``line.toml``'s ``default_settings``.

With ``linear`` (the checker's ``[linear_model]`` tolerances) a prediction asked for with
``anchor=True`` (the plan point's currents) also linearises the model there
(:mod:`scanplan.check.linear_spot`, cached on disk), and later predictions within range of
that anchor (the measured currents) are evaluated from it: a check then builds no xtrack
line. The simulator predicts with the full model only.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .linear_spot import LinearSpot, linearise
from .tolerances import CheckTolerances, LinearModelTolerances

if TYPE_CHECKING:  # heavy (xtrack) imports only when a model is built
    from beamline.model import BeamLine
    from beamline.spot import SpotPrediction


@functools.cache
def _linear_code_hash() -> str:
    """The linearisation's own code, part of its disk-cache key (the model sources already
    are); read on the first anchor, not at import."""
    sources = (Path(__file__).parent / name for name in ("linear_spot.py", "predictor.py"))
    return hashlib.sha256(b"".join(path.read_bytes() for path in sources)).hexdigest()[:16]


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
        linear: LinearModelTolerances | None = None,
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
        #: where first-order models may stand in for the full one (None: never)
        self.linear = linear
        self._anchors: list[LinearSpot] = []
        self.hits = 0
        self.misses = 0
        #: predictions evaluated from a linear model (a subset of the misses)
        self.linear_hits = 0

    @property
    def beamline(self) -> BeamLine:
        with self._lock:
            return self._beamline()

    def _beamline(self) -> BeamLine:
        if self._bl is None:
            from beamline.model import BeamLine

            self._bl = BeamLine(self.settings)
        return self._bl

    def _settings_quads(self) -> dict[str, float]:
        """The settings' quadrupole currents [A] (from the given BeamLine, else read from the
        settings entry without building one)."""
        if self._settings_quads_a is None:
            from beamline.names import QUADRUPOLES

            if self._bl is not None:
                self._settings_quads_a = {q: self._bl.current_a(q) for q in QUADRUPOLES}
            else:
                from beamline.lattice import settings_currents_a

                currents = settings_currents_a(self.settings)
                self._settings_quads_a = {q: currents[q] for q in QUADRUPOLES}
        return self._settings_quads_a

    def check_settings(self) -> None:
        """Read the settings entry now, so that a bad one is a clear error before any reading
        (without building the line)."""
        with self._lock:
            self._settings_quads()

    def predict(
        self,
        dhstb01_current_a: float,
        dhstb02_current_a: float,
        quadrupoles_a: Mapping[str, float] | None = None,
        *,
        anchor: bool = False,
    ) -> SpotPrediction:
        """Predicted spot for the DHSTB01/DHSTB02 currents [A] and the quadrupole currents
        ``quadrupoles_a`` (magnet name Q1..Q4 -> A; a quad not given, or all when None: the
        settings' current). ``anchor``: these are a plan point's currents; with ``linear``
        set, linearise the model here for the predictions that follow. Model input errors
        raise :class:`beamline.errors.BeamlineInputError`."""
        from beamline.errors import BeamlineInputError
        from beamline.names import QUADRUPOLES

        quads = dict(quadrupoles_a or {})
        unknown = set(quads) - set(QUADRUPOLES)
        if unknown:
            raise BeamlineInputError(f"unknown quadrupoles {sorted(unknown)}; {QUADRUPOLES}")
        if not all(
            math.isfinite(v) for v in (dhstb01_current_a, dhstb02_current_a, *quads.values())
        ):
            raise BeamlineInputError("magnet currents must be finite to predict the beam spot")
        with self._lock:
            quads = {**self._settings_quads(), **quads}
        key = tuple(
            round(v / self.resolution_a)
            for v in (dhstb01_current_a, dhstb02_current_a, *(quads[q] for q in QUADRUPOLES))
        )
        currents = tuple(k * self.resolution_a for k in key)
        with self._lock:
            if anchor and self.linear is not None and self._anchor_for(currents) is None:
                self._add_anchor(currents)
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                self.hits += 1
                return hit
            self.misses += 1
            pred = self._from_linear(currents) or self._full(currents)
            self._cache[key] = pred
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return pred

    # -- the full model and its linearisations (the lock is held) -------------------------
    def _full(self, currents: tuple[float, ...]) -> SpotPrediction:
        from beamline.errors import BeamlineInputError
        from beamline.names import QUADRUPOLES
        from beamline.spot import predict_spot

        i1, i2, *iq = currents
        bl = self._beamline()
        try:
            bl.set_currents(dict(zip(QUADRUPOLES, iq, strict=True)))
            with np.errstate(all="raise"):  # numpy's error state is per thread
                return predict_spot(bl, i1, i2, rel_spread=self.rel_spread)
        except FloatingPointError as exc:
            raise BeamlineInputError(
                f"no model prediction for DHSTB01 {i1:.3f} A, DHSTB02 {i2:.3f} A "
                f"(optics undefined: {exc})"
            ) from None

    def _anchor_for(self, currents: tuple[float, ...]) -> LinearSpot | None:
        """The first linear model whose range holds ``currents``, if any."""
        return next((model for model in self._anchors if model.covers(currents)), None)

    def _add_anchor(self, currents: tuple[float, ...]) -> None:
        """Linearise the model at ``currents`` (disk-cached); a point where the model cannot
        be linearised (a step outside a magnet's range) just keeps the full model."""
        from beamline.errors import BeamlineInputError
        from beamline.names import QUADRUPOLES

        from ..model_cache import cached_json

        lin = self.linear
        assert lin is not None
        n_quads = len(QUADRUPOLES)
        steps = (lin.dipole_step_a,) * 2 + (lin.quadrupole_step_a,) * n_quads
        ranges = (lin.dipole_range_a,) * 2 + (lin.quadrupole_range_a,) * n_quads
        knobs = ("DHSTB01", "DHSTB02", *QUADRUPOLES)
        params = {
            "code": _linear_code_hash(),
            "settings": self.settings,
            "rel_spread": self.rel_spread,
            "anchor_a": list(currents),
            "step_a": list(steps),
            "range_a": list(ranges),
        }

        def compute() -> dict[str, object]:
            fit = linearise(
                lambda c: self._full(tuple(c)).as_dict(), knobs, currents, step_a=steps,
                range_a=ranges,
            )  # fmt: skip
            return fit.model_dump(mode="json")

        try:
            doc = cached_json("spot-linear", params, compute)
            self._anchors.append(LinearSpot.model_validate(doc))
        except (BeamlineInputError, ValueError):  # pydantic's ValidationError is a ValueError
            return

    def _from_linear(self, currents: tuple[float, ...]) -> SpotPrediction | None:
        from beamline.spot import SpotPrediction

        model = self._anchor_for(currents)
        if model is None:
            return None
        self.linear_hits += 1
        return SpotPrediction(
            dhstb01_current_a=currents[0],
            dhstb02_current_a=currents[1],
            rel_spread=self.rel_spread,
            **model.evaluate(currents),
        )
