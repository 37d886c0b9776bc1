"""TimePix beam monitor: detector geometry, beam-spot estimation and the Serval adapter.

* :mod:`.geometry`: :class:`TimepixGeometry`, the one home of the pixel grid;
* :mod:`.spot`: :class:`Frame`, :class:`BeamSpot`, the :class:`BeamSpotSource` protocol and
  the estimator :func:`estimate_beam_spot`;
* :mod:`.jsonimage`: Serval's ``jsonimage`` preview stream format;
* :mod:`.serval`: :class:`ServalClient` (Serval 4.1.x HTTP API) and
  :class:`ServalBeamMonitor` (a :class:`BeamSpotSource` on its preview stream).
"""

from .geometry import TimepixGeometry
from .serval import (
    IDLE,
    MAX_FRAMES,
    MAX_TIMEOUT_S,
    RECORDING,
    ServalBeamMonitor,
    ServalClient,
    check_timeout,
)
from .spot import (
    DEVICE,
    HOT_FACTOR,
    MIN_HITS,
    WINDOW_NSIGMA,
    BeamSpot,
    BeamSpotSource,
    Frame,
    SpotEstimate,
    estimate_beam_spot,
)

__all__ = [
    "DEVICE",
    "HOT_FACTOR",
    "IDLE",
    "MAX_FRAMES",
    "MAX_TIMEOUT_S",
    "MIN_HITS",
    "RECORDING",
    "WINDOW_NSIGMA",
    "BeamSpot",
    "BeamSpotSource",
    "Frame",
    "ServalBeamMonitor",
    "ServalClient",
    "SpotEstimate",
    "TimepixGeometry",
    "check_timeout",
    "estimate_beam_spot",
]
