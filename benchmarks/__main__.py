"""Run the benchmarks and print measured values, baselines and ratios.

python -m benchmarks              # all bench_*.py modules
python -m benchmarks model spread # only bench_model.py and bench_spread.py
python -m benchmarks --quick      # smaller sizes (smoke run)
python -m benchmarks --json       # machine-readable
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys

import benchmarks
from benchmarks.common import Result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("names", nargs="*", help="benchmark modules (without bench_)")
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    modules = sorted(
        m.name[len("bench_") :]
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )
    chosen = args.names or modules
    unknown = sorted(set(chosen) - set(modules))
    if unknown:
        print(
            f"unknown benchmark(s) {', '.join(unknown)}; available: {', '.join(modules)}",
            file=sys.stderr,
        )
        return 2
    results: list[Result] = []
    for name in chosen:
        mod = importlib.import_module(f"benchmarks.bench_{name}")
        if not args.json:
            print(f"== {name}", flush=True)
        for r in mod.run(quick=args.quick):
            results.append(r)
            if not args.json:
                ratio = f"{r.ratio:.1f}x vs {r.baseline_name}" if r.ratio is not None else ""
                target = (
                    ""
                    if r.target_ratio is None
                    else (
                        f" (target >= {r.target_ratio:g}x: {'OK' if r.meets_target else 'MISSED'})"
                    )
                )
                print(f"  {r.name}: {r.measured:.4g} {r.unit}  {ratio}{target}", flush=True)
                for k, v in r.notes.items():
                    print(f"      {k}: {v}")
    if args.json:
        print(json.dumps([r.as_dict() for r in results], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
