"""Model pipeline: prepare -> train -> export (parity-gated) -> evaluate -> package -> register.

One module per step, each a Typer command that tests call as a plain function.
Heavy imports (torch, transformers, optimum, mlflow) happen inside functions so
`python -m training --help` and the runtime stay light.
"""
