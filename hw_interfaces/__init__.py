"""Hardware adapters: protocols and byte layouts only, no physics, nothing from the other
packages. Every call has a timeout and its errors (``hw_interfaces.errors``) name the device
and key that failed.

- ``protocols``: the seams the checker and the guided run use (``PowerSupplySource``,
  ``MachineStateSource``, ``BeamSpotSource``, ``SetPointWriter``, ``RunControl``)
- ``btf_controls``: BTF power supplies and machine state from memcached (``BtfControls``);
  records in ``btf_records``, set-point rules and audit in ``btf_setpoint``
- ``clock``: the one UTC helper and the injectable ``Clock``
- ``fakes``: deterministic in-memory fakes of the protocols (logic tests)
- ``labview``: table-driven LabVIEW cluster decoder/encoder (layouts in ``layouts/*.toml``)
- ``timepix``: TimePix geometry, beam-spot estimator, Serval-style HTTP client
- ``runcontrol``: PADME RunControl framed-TCP client
- ``padme_db``: PadmeDAQ database access (errors in ``db_errors``)
- ``sim``: the facility simulator's servers (memcached publisher, HTTP, TCP)
"""
