"""Facility simulator, protocol side: simulated BTF power supplies (memcached), a
Serval-style TimePix HTTP server and a PADME RunControl TCP server. No physics here: the
beam position comes from a callback that the scanplan layer connects to the model."""

from .control import SimControlClient, SimControlServer
from .facility import FacilitySimulator
from .faults import Fault
from .memcached import MemcachedProcess
from .psu import PsuSimState, PsuSimulator
from .runcontrol import RunControlSimulator, SimRun
from .serval import ServalSimulator

__all__ = [
    "FacilitySimulator",
    "Fault",
    "MemcachedProcess",
    "PsuSimState",
    "PsuSimulator",
    "RunControlSimulator",
    "ServalSimulator",
    "SimControlClient",
    "SimControlServer",
    "SimRun",
]
