"""Speed measurements. ``python -m benchmarks [name ...]`` runs every ``bench_*.py`` module.

Each module defines ``run(quick: bool) -> list[Result]``; a ``Result`` is a measurement and
the baseline it is compared with, both measured in the same run, and the ratio is printed.
"""
