"""Pure builders: one module per Kubernetes kind, each a function from values to a manifest.

Builders do no I/O and read no configuration of their own: what they need is passed in.
"""
