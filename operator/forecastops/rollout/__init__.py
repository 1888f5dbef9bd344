"""Progressive delivery: canary and blue-green rollouts as an explicit state machine.

- `spec`: `spec.rollout` parsed into frozen values; `steps`: the step program.
- `state`: phases and the `RolloutStatus` persisted in `status.rollout`.
- `observed`: what a reconcile pass saw, and user commands.
- `decide_rollout`: the pure `decide_rollout(spec, status, observed, measurements) -> Decision`.
- `actions`: what a decision asks for, as plain data.
- `replicas`: replica and weight arithmetic; `runs`: analysis bookkeeping.
- `metrics`: the operator's own Prometheus metrics about rollouts.

Nothing here talks to the Kubernetes API.
"""
