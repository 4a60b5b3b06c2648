"""Moved to bench/report/leaderboard.py; `render` stays importable here for callers of the old path."""
from bench.report.leaderboard import render

__all__ = ["render"]
