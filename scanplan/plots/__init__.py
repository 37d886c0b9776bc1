"""Figures of the command-line tools (matplotlib, Agg backend), written atomically.

Imported only when a plot is asked for: matplotlib is heavy and ``scanplan --help`` must stay
fast.
"""
