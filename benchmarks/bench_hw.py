"""Hardware layer speed against the facility simulator on 127.0.0.1 (memcached started here):
one full read cycle (DHSTB001 + DHSTB002 + machine state + TimePix beam spot), a power-supply
read vs a raw memcached get, and the beam-spot estimator alone."""

from __future__ import annotations

import time

from benchmarks.common import Result, best_of


def run(quick: bool = False) -> list[Result]:
    from hw_interfaces.btf_controls import BtfControls
    from hw_interfaces.sim import FacilitySimulator, MemcachedProcess
    from hw_interfaces.timepix import ServalBeamMonitor, ServalClient, estimate_beam_spot

    n_frames, frame_rate_hz = (5, 50.0) if quick else (10, 50.0)
    repeat = 3 if quick else 10
    results: list[Result] = []
    with MemcachedProcess() as mc:
        sim = FacilitySimulator(
            mc.host, mc.port, seed=1, serval_options={"frame_rate_hz": frame_rate_hz}
        )
        with sim, BtfControls(mc.host, mc.port) as btf:
            monitor = ServalBeamMonitor(ServalClient(sim.timepix_url), n_frames=n_frames)

            def cycle() -> None:
                btf.read_power_supply("DHSTB001")
                btf.read_power_supply("DHSTB002")
                btf.read_machine_state()
                monitor.read_beam_spot()

            cycle()  # warm-up
            t_cycle = best_of(cycle, repeat)
            results.append(
                Result(
                    "read cycle (2 PSU + machine state + beam spot)",
                    t_cycle,
                    "s",
                    baseline_name=f"frame wait {n_frames} frames @ {frame_rate_hz:g} Hz",
                    baseline=n_frames / frame_rate_hz,
                    notes={"frames": n_frames},
                )
            )
            raw_client = btf._client  # the same connection, no decoding
            n = 200 if quick else 2000

            def raw() -> None:
                for _ in range(n):
                    raw_client.get("DHSTB001_DYN")

            def decoded() -> None:
                for _ in range(n):
                    btf.read_power_supply("DHSTB001")

            t_raw = best_of(raw, 3) / n
            t_dec = best_of(decoded, 3) / n
            results.append(
                Result(
                    "power-supply read + decode",
                    t_dec * 1e6,
                    "us",
                    baseline_name="raw memcached get",
                    baseline=t_raw * 1e6,
                )
            )
            frames, _ = monitor.collect(20, 5.0)
        t0 = time.perf_counter()
        est_n = 5 if quick else 20
        for _ in range(est_n):
            estimate_beam_spot(frames)
        t_est = (time.perf_counter() - t0) / est_n
        results.append(
            Result(
                "beam-spot estimate (20 frames)",
                t_est * 1e3,
                "ms",
                notes={"hits": int(sum(f.n_hits for f in frames))},
            )
        )
    return results
