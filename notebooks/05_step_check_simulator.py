# ---
# jupyter:
#   jupytext:
#     notebook_metadata_filter: kernelspec,-jupytext.text_representation.jupytext_version
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Step check on the facility simulator, with injected faults
#
# A walkthrough of what the shift crew runs at every scan point
# (`scanplan check --plan plan.json --point N --watch`), on the virtual BTF
# (`scanplan.sim.SimFacility`: simulated power supplies publishing MG1 records into a real
# memcached, a Serval-style TimePix HTTP server whose beam position comes from the
# beam-line model, a PADME RunControl server), through the real adapters and the store.
#
# **Claim.**
#
# 1. with the supplies at the plan's set points the verdict is **OK**, and the TimePix
#    centroid agrees with the model prediction for the measured currents;
# 2. a hidden DHSTB02 **field error** (as from hysteresis or a wrong calibration:
#    `offset:DHSTB002=+0.5` A, readbacks unchanged) moves the spot at the TimePix by
#    **−R16 · ε**, with R16(DHSTB02 → TimePix) = ρ(1 − cos θ) + L sin θ = 3.766 m
#    (closed form, notebook 01) and ε = 28.446 G/A · ΔI / B(I) from the facts-file
#    excitation — about 10.6 mm; the checker turns it into **FAIL**, because it exceeds
#    3 × the x tolerance √(1² + (dx/dI · 0.05 A)² + stat²) mm computed here by hand;
# 3. a supply **trip** (interlock) gives **FAIL** with the status reason and no beam on the
#    TimePix; after the reset and a re-check the verdict is OK again;
# 4. every reading and verdict is in the run-conditions store (SQLite), and the CLI prints
#    the same verdict table with exit code 0 (OK/WARN) or 3 (FAIL);
# 5. the guided run (`scanplan run`) starts the PADME run with a start-of-run tag that
#    parses back to the plan hash, period and energy, and the run conditions export to
#    `RunEnergy.txt` in the facts-file format `<run> <E_beam MeV>`.
#
# **References.** Closed-form sector-bend dispersion, the facts-file DHSTB excitation
# slope, the tolerance formula of `lattices/checks/tolerances.toml` evaluated here.
#
# **Falsified if** the spot shift differs from −R16 · ε by more than 3σ (statistical) + 3 %,
# or any verdict level differs from the expected one. The simulator's slew rate is raised
# to 50 A/s (the real supplies: ≈ 5 A/s) to keep the notebook fast.

# %%
import os
import time

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import display

from scanplan.notebook import NotebookRun

# figures go to $SCANPLAN_NB_OUT (the tests) or _out/ in the working folder (gitignored)
NB = NotebookRun()


# %%
import subprocess
import sys

from scanplan.check import Checker, CheckRecorder, CheckTolerances, connect
from scanplan.check.dipoles import plan_currents_a
from scanplan.planner import PlanRequest, plan_scan
from scanplan.records import load_plan, save_plan
from scanplan.sim import SimFacility
from scanplan.store import SQLiteStore

WORK = NB.out / "05_work"
WORK.mkdir(exist_ok=True)
plan_path = WORK / "plan.json"
store_path = WORK / "runs.sqlite"
store_path.unlink(missing_ok=True)
save_plan(
    plan_scan(
        PlanRequest(mass_range_mev=(16.73, 17.03), step_mev=0.75, name="X17 16.88 walkthrough")
    ),
    plan_path,
)
plan = load_plan(plan_path)  # hash-verified, as the crew's command does
PERIOD = 3
pt = plan.point(PERIOD)
print(
    f"plan {plan.content_sha256[:12]}: point {PERIOD}: E = {pt.e_beam_mev:.3f} MeV, "
    f"sqrt(s) = {pt.sqrt_s_mev:.3f} MeV, DHSTB01 {pt.dhstb01_current_a:.3f} A, "
    f"DHSTB02 {pt.dhstb02_current_a:.3f} A"
)

sim = SimFacility(psu_options={"slew_rate_a_per_s": 50.0}).start()
addr = sim.addresses()
print("virtual BTF:", addr.as_dict())
tol = CheckTolerances.load()
conn = connect(addr.memcached, addr.timepix_url, key_prefix=addr.key_prefix, tolerances=tol)
store = SQLiteStore(store_path)
checker = Checker(psu=conn.psu, spot=conn.spot, predictor=sim.predictor, tolerances=tol)
recorder = CheckRecorder(store)  # the checker returns the verdict; the one recorder writes it


def check(**options):
    verdict = checker.check(plan, PERIOD, **options)
    recorder.record(plan, verdict)
    return verdict


def ramp_to(element, current_a, timeout_s=20.0):
    # set a simulated supply and wait until its output reaches the set point
    sim.set_currents({element: current_a})
    t_end = time.monotonic() + timeout_s
    while time.monotonic() < t_end:
        out = sim.status()["supplies"][element]["output_current_a"]
        if abs(out - current_a) < 0.02:
            return out
        time.sleep(0.05)
    raise TimeoutError(f"{element} did not reach {current_a} A")


def table(verdict):
    rows = [
        {
            "quantity": c.name,
            "measured": c.measured,
            "expected": c.expected,
            "diff": c.difference,
            "warn": c.warn,
            "fail": c.fail,
            "unit": c.unit,
            "level": c.level,
        }
        for c in verdict.comparisons
    ]
    print(f"verdict {verdict.level} for point {verdict.period} in {verdict.elapsed_s:.2f} s")
    for r in verdict.reasons:
        print("  -", r)
    return pd.DataFrame(rows)


# %% [markdown]
# ## Step 1: set the point and check (expected OK)
#
# The crew sets DHSTB001/DHSTB002 and the quadrupoles QUATB001..4 to the plan's currents
# (here: the simulator's own knob)
# and runs the check with `--watch`: it waits for the readbacks to settle, then compares
# status, set points, readbacks, record age, the energy from the DHSTB01 readback and the
# TimePix spot with the model.

# %%
sim.set_currents(plan_currents_a(pt))  # DHSTB001/2 and QUATB001..4
v_ok = check(watch=True)
print("settle:", v_ok.settle)
table(v_ok)

# %%
assert v_ok.level == "OK", v_ok.reasons

# %% [markdown]
# ## Step 2: hidden DHSTB02 field error of +0.5 A (expected FAIL on the TimePix x)
#
# Independent expectation: ε = ΔB/B with the facts-file excitation B = 27.16 + 28.446 I [G]
# of DHSTB02 and Δx = −R16 ε with the closed-form R16 of a 45° hard-edge sector bend
# followed by the 4.612 m drift to the TimePix.

# %%
DI = 0.5
sim.inject(f"offset:DHSTB002={DI}")
time.sleep(0.3)  # frames taken after the change
v_off = check(watch=True)
off_table = table(v_off)

rho, th = 1.723, np.pi / 4
L = 17.89 - (11.925 + rho * th)
r16 = rho * (1 - np.cos(th)) + L * np.sin(th)
i2 = v_ok.readings["DHSTB002"].output_current_a
eps = 28.446 * DI / (27.16 + 28.446 * i2)
dx_expected = -1e3 * r16 * eps
dx_measured = v_off.spot.x_mm - v_ok.spot.x_mm
stat = np.hypot(
    v_ok.spot.sigma_x_mm / np.sqrt(v_ok.spot.hits_used),
    v_off.spot.sigma_x_mm / np.sqrt(v_off.spot.hits_used),
)
print(
    f"R16 = {r16:.4f} m, eps = {eps:.3e}: expected dx = {dx_expected:.2f} mm; "
    f"measured {dx_measured:.2f} ± {stat:.2f} mm"
)

# the tolerance the checker should apply, by hand (tolerances.toml [spot])
dxdi = 1e3 * r16 * 28.446 / (27.16 + 28.446 * i2)  # mm per A of DHSTB02
tol_x = np.sqrt(
    tol.spot.alignment_mm**2
    + (dxdi * tol.spot.current_sigma_a) ** 2
    + (v_off.spot.sigma_x_mm / np.sqrt(v_off.spot.hits_used)) ** 2
)
cx = v_off.comparison("TimePix x vs model (measured currents)")
print(
    f"x tolerance by hand {tol_x:.3f} mm (checker {cx.warn:.3f}), FAIL beyond "
    f"{tol.spot.fail_factor * tol_x:.2f} mm; the smallest DHSTB02 error flagged: WARN "
    f"{tol_x / dxdi:.3f} A ({28.446 * tol_x / dxdi:.1f} G), FAIL "
    f"{tol.spot.fail_factor * tol_x / dxdi:.3f} A ({28.446 * tol.spot.fail_factor * tol_x / dxdi:.1f} G)"
)
display(off_table)

# %%
assert abs(dx_measured - dx_expected) < 3 * stat + 0.03 * abs(dx_expected)
assert abs(cx.warn - tol_x) < 0.01
assert v_off.level == "FAIL" and cx.level == "FAIL"
# the supplies themselves look perfect: only the beam tells
assert all(c.level == "OK" for c in v_off.comparisons if c.name.startswith("DHSTB"))
sim.clear()

# %% [markdown]
# ## Step 3: DHSTB001 trips (expected FAIL: status and no beam), reset, re-check (OK)

# %%
sim.inject("trip:DHSTB001")
time.sleep(0.5)  # the publisher runs at 10 Hz
v_trip = check(watch=False)
trip_table = table(v_trip)
assert v_trip.level == "FAIL"
status = v_trip.comparison("DHSTB001 status")
assert status.level == "FAIL" and "INTERLOCK" in str(status.measured).upper()
beam = [c for c in v_trip.comparisons if c.name.startswith("TimePix beam")]
assert beam and all(c.level == "FAIL" for c in beam), beam

sim.clear()  # the crew's reset of the supply, then the
ramp_to("DHSTB001", pt.dhstb01_current_a + 5.0)  # hysteresis recipe: 5 A above ...
ramp_to("DHSTB001", pt.dhstb01_current_a)  # ... and approach from above
v_back = check(watch=True)
table(v_back)
assert v_back.level == "OK", v_back.reasons
display(trip_table)

# %%
spots = pd.DataFrame(
    [
        {
            "check": name,
            "level": v.level,
            "x_mm": v.beam_spot.x_mm if v.beam_spot else None,
            "y_mm": v.beam_spot.y_mm if v.beam_spot else None,
            "hits": v.beam_spot.hits_used if v.beam_spot else None,
        }
        for name, v in (
            ("OK", v_ok),
            ("offset +0.5 A", v_off),
            ("trip", v_trip),
            ("after reset", v_back),
        )
    ]
)
pred = v_ok.comparison("TimePix x vs model (measured currents)").expected
pred_y = v_ok.comparison("TimePix y vs model (measured currents)").expected
tol_y = v_ok.comparison("TimePix y vs model (measured currents)").warn
fig, ax = plt.subplots(figsize=(8, 4.5))
for k, (style, lab) in enumerate(((":", "WARN"), ("--", "FAIL"))):
    f = 1 if k == 0 else tol.spot.fail_factor
    ax.add_patch(
        plt.Rectangle(
            (pred - f * tol_x, pred_y - f * tol_y),
            2 * f * tol_x,
            2 * f * tol_y,
            fill=False,
            ls=style,
            color="k",
            label=f"{lab} tolerance",
        )
    )
colours = {"OK": "C2", "WARN": "C1", "FAIL": "C3"}
for _, r in spots.dropna(subset=["x_mm"]).iterrows():
    if r.hits < tol.spot.min_hits:
        continue
    ax.plot(r.x_mm, r.y_mm, "o", ms=9, color=colours[r.level], label=f"{r.check}: {r.level}")
ax.plot(
    v_ok.spot.x_mm + dx_expected,
    v_ok.spot.y_mm,
    "kx",
    ms=10,
    label="closed form: OK spot - R16 eps",
)
ax.set_xlabel("TimePix x [mm]")
ax.set_ylabel("TimePix y [mm]")
ax.set_title(f"TimePix centroid per check, point {PERIOD} ({pt.e_beam_mev:.2f} MeV)")
ax.set_aspect("equal")
ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1))
NB.save(fig, "05_timepix_checks.png")
plt.show()
display(spots)

# %% [markdown]
# ## Step 4: the store and the command the crew types
#
# Every settle poll, reading and verdict was appended to the SQLite run-conditions store.
# The same check from the command line (addresses from the environment variables that
# `scanplan sim` prints) gives the table below and exit code 0 (OK/WARN) or 3 (FAIL).

# %%
sha = plan.content_sha256
events = pd.DataFrame([e.as_row() for e in store.history(plan_sha256=sha)])
print(events.groupby("kind").size().rename("events").to_string())
verdicts = store.history(plan_sha256=sha, kinds=["verdict"])
levels = [e.payload["level"] for e in verdicts]
print("verdict levels in the store:", levels)
assert levels == ["OK", "FAIL", "FAIL", "OK"]

env = {k: v for k, v in os.environ.items() if k not in ("FORCE_COLOR", "CLICOLOR_FORCE", "TERM")}
env.update(addr.env(), COLUMNS="140", NO_COLOR="1")
cmd = [
    sys.executable,
    "-m",
    "scanplan.cli.main",
    "check",
    "--plan",
    str(plan_path),
    "--point",
    str(PERIOD),
    "--watch",
    "--store",
    str(store_path),
]
print("$ scanplan check --plan plan.json --point", PERIOD, "--watch")
cli = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
print(cli.stdout, cli.stderr)
assert cli.returncode == 0

# %% [markdown]
# ## Step 5: the guided run and the export of the run conditions
#
# `scanplan run --plan plan.json` does steps 1–4 for every open point and starts the PADME
# run through RunControl with the start-of-run tag; `--yes` confirms the prompts (only for
# the simulator), `--dwell-s 1` stops the run after one second. The tag that reached
# RunControl (and so the PadmeDAQ start-of-run comment) is parsed back here, and the
# `RunEnergy.txt` line of the run is exported from the store (facts §6:
# `<run> <E_beam MeV>`).

# %%
import re

from scanplan.exports.sor_tag import parse_sor_tag

cmd = [
    sys.executable,
    "-m",
    "scanplan.cli.main",
    "run",
    "--plan",
    str(plan_path),
    "--periods",
    str(PERIOD),
    "--yes",
    "--dwell-s",
    "1",
    "--store",
    str(store_path),
    "--shift-crew",
    "notebook 05",
]
print("$ scanplan run --plan plan.json --periods", PERIOD, "--yes --dwell-s 1")
guided = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
print("\n".join(guided.stdout.splitlines()[-9:]), guided.stderr)
assert guided.returncode == 0

run = sim.facility.runcontrol.runs[-1]
tag = parse_sor_tag(run.comment_start)
print(f"RunControl run {run.number} ({run.status}): start-of-run comment {run.comment_start!r}")
assert run.status == "END_OK"
assert tag["period"] == PERIOD and plan.content_sha256.startswith(tag["plan_sha12"])
assert abs(tag["e_beam_mev"] - pt.e_beam_mev) < 1e-3

cmd = [
    sys.executable,
    "-m",
    "scanplan.cli.main",
    "export",
    str(plan_path),
    "-f",
    "runenergy",
    "--store",
    str(store_path),
    "--period",
    str(PERIOD),
]
exported = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
print("$ scanplan export plan.json -f runenergy --period", PERIOD)
print(exported.stdout, exported.stderr)
line = exported.stdout.strip().splitlines()[-1]
m = re.fullmatch(r"(\d+)\s+(\d+\.\d+)", line.strip())
assert m and int(m.group(1)) == run.number and abs(float(m.group(2)) - pt.e_beam_mev) < 1e-3

# %%
conn.close()
sim.stop()

# %% [markdown]
# **Result.** Through the real adapters (memcached MG1 records, Serval HTTP, SQLite store)
# the checker passes a correctly set point, and fails a hidden DHSTB02 field error of
# 0.5 A (≈ 14 G): the spot moved by the closed-form −R16 ε ≈ −10.6 mm while every supply
# reading was perfect. By the tolerance formula a field error of ≈ 0.07 A (2 G) gives WARN
# and ≈ 0.21 A (6 G) FAIL — finer than the 10 G pass-to-pass hysteresis, so a magnet on
# the wrong branch is caught at the check. A trip fails on the status and the missing
# beam, and the point is OK again after the reset and the overshoot approach.

# %%
NB.done()
