"""Shared by the tests: the repository root and a tiny task (two digits MLPs, three methods)."""
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

SMALL_TASK = """\
name: tiny
version: 1
kind: classification
dataset: {name: digits}
encoders: {all: [digits-mlp-w32-s0, digits-mlp-w32-s1]}
anchors: {counts: [16, 64], seeds: [0, 1]}
methods: [absolute, ortho, linear]
metrics: [accuracy, agreement, mse]
"""
