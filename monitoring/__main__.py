"""`python -m monitoring`: the monitor service and its Grafana helpers."""

from monitoring.cli import app

if __name__ == "__main__":
    app()
