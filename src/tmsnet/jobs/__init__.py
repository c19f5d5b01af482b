"""The jobs: one module per job composes compute -> write -> report.

This is the only layer that calls both the science packages' writers and
:mod:`tmsnet.report`; the command layer (``tmsnet.cli`` and ``*/commands.py``)
parses arguments, calls one job, and prints.
"""
