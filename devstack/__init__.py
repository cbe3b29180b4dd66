"""The native stack (Kafka, PostgreSQL, Prometheus) for machines without Docker.

Developer tooling: not imported by any service. `python -m devstack up|down|status`.
"""
