"""Forecast-aware promotion gates (docs/forecast-gates.md).

Imports nothing on purpose: `metrics` needs numpy, which only the gate-runner (the model
server's image) has; the operator may import `phase` and `verdict` without it.
"""
