"""`spoiler-contracts`: export the JSON Schemas, validate messages from a file."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import typer

import spoiler_common
from spoiler_common.contracts import CONTRACTS, decode
from spoiler_common.exceptions import ContractError

app = typer.Typer(add_completion=False, help="Message contracts of the pipeline's topics.")
# The published schemas ship with the contracts they describe (package data).
SCHEMA_DIR = Path(spoiler_common.__file__).parent / "schemas"


def schema_documents() -> dict[str, dict]:
    """JSON Schema per contract and version, as published in spoiler_common/schemas/.

    Each version a reader accepts has its file: an older version's schema is the
    current one without the fields added since, with its own `schema_version`.
    """
    docs = {}
    for name, model in CONTRACTS.items():
        for version in sorted(model.versions):
            schema = model.model_json_schema(mode="serialization")
            for field, since in model.added_in.items():
                if version < since:
                    schema["properties"].pop(field, None)
            schema["properties"]["schema_version"] = {
                "const": version, "default": version, "title": "Schema Version", "type": "integer",
            }
            schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
            schema["$id"] = f"https://spoiler-stream.invalid/schemas/{name}.v{version}.json"
            docs[f"{name}.v{version}.json"] = schema
    return docs


@app.command("export")
def export(out: Path = typer.Option(SCHEMA_DIR, help="Directory to write into.")) -> None:
    """Write one JSON Schema file per topic contract."""
    out.mkdir(parents=True, exist_ok=True)
    for filename, schema in schema_documents().items():
        (out / filename).write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        typer.echo(f"wrote {out / filename}")


@app.command("validate")
def validate_file(
    contract: str = typer.Argument(..., help=f"One of: {', '.join(CONTRACTS)}"),
    path: Path = typer.Argument(..., help="File with one JSON message per line; - for stdin."),
) -> None:
    """Validate messages line by line; print each rejection with its reason."""
    if contract not in CONTRACTS:
        typer.echo(f"error: unknown contract {contract!r}; use one of {list(CONTRACTS)}", err=True)
        raise typer.Exit(2)
    stream = sys.stdin.buffer if str(path) == "-" else path.open("rb")
    ok = bad = 0
    for lineno, line in enumerate(stream, 1):
        try:
            decode(line.rstrip(b"\r\n"), CONTRACTS[contract])
            ok += 1
        except ContractError as exc:
            bad += 1
            typer.echo(f"line {lineno}: {exc}")
    typer.echo(f"{ok} valid, {bad} invalid")
    raise typer.Exit(1 if bad else 0)


if __name__ == "__main__":
    app()
