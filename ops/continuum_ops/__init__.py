"""Continuum cluster operations: the local multi-region cluster as a tested program.

One module per concern: topology (regions, nodes, port plan), pgroot (where PostgreSQL's
folders live), procs (process supervision), patroni, haproxy, portal (config rendering and
the decisions taken from each engine's state), cluster (the commands), cli (the entry point
behind scripts/cluster and `continuum cluster`), judge (the canary judge: canary against
baseline -> pass, fail or inconclusive), rollout_plan (the rollout's steps, transitions,
HAProxy weights, persisted state and report; pure) and rollout (the controller: observes the
cluster, calls rollout_plan.decide, acts through HAProxy's runtime API, reads Prometheus).
"""
