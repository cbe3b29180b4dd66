from sink.cli import app

app(prog_name="python -m sink")
