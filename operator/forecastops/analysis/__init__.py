"""Metric analysis: providers behind a small Protocol, safe conditions, verdicts.

Nothing here decides about a rollout: it measures and judges one value at a time.
`forecastops.rollout` counts the verdicts and decides.
"""
