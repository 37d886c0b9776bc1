"""Hardware adapters: protocols and byte layouts only, no physics, nothing from the other
packages. Every call has a timeout and its errors (``hw_interfaces.errors``) name the device
and key that failed.

- ``btf_controls``: BTF power supplies and machine state from memcached (``BtfControls``)
- ``labview``: table-driven LabVIEW cluster decoder/encoder (layouts in ``layouts/*.toml``)
- ``timepix``: TimePix geometry, beam-spot estimator, Serval-style HTTP client
- ``runcontrol``: PADME RunControl framed-TCP client
- ``padme_db``: PadmeDAQ database access (errors in ``db_errors``)
- ``sim``: the facility simulator's servers (memcached publisher, HTTP, TCP)
"""
