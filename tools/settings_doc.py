"""Generate the README's settings table and dead-letter reason table (`make docs`)."""

from __future__ import annotations

import argparse
import contextlib
import importlib
from pathlib import Path

from pydantic_settings import BaseSettings

from spoiler_common import settings as common

START, END = "<!-- settings:start -->", "<!-- settings:end -->"
REASONS_START, REASONS_END = "<!-- reasons:start -->", "<!-- reasons:end -->"
# Service modules that declare their own settings classes, next to the shared ones.
SERVICE_MODULES = (
    "producer.settings",
    "stream_processor.settings",
    "sink.settings",
    "monitoring.settings",
)


def settings_classes() -> list[type[BaseSettings]]:
    modules = [common]
    for name in SERVICE_MODULES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError:
            continue
    found: list[type[BaseSettings]] = []
    for module in modules:
        for value in vars(module).values():
            if (isinstance(value, type) and issubclass(value, BaseSettings)
                    and value is not BaseSettings and value.__module__ == module.__name__
                    and value not in found):
                found.append(value)
    return found


def table() -> str:
    rows = ["| Variable | Default | Description |", "|---|---|---|"]
    classes = settings_classes()
    for cls in classes:
        # A field a documented base class declares (SPOILER_BUNDLE_PATH) is listed once.
        inherited = {name for base in cls.__mro__[1:] if base in classes
                     for name in base.model_fields}  # type: ignore[attr-defined]
        for name, field in cls.model_fields.items():
            if isinstance(field.annotation, type) and issubclass(field.annotation, BaseSettings):
                continue
            if name in inherited or field.deprecated or field.exclude:
                continue  # deprecated aliases are named in their replacement's description
            if field.is_required():
                default = "*required*"
            else:
                value = field.get_default(call_default_factory=True)
                if isinstance(value, Path):
                    with contextlib.suppress(ValueError):
                        value = value.relative_to(common.REPO_ROOT)
                default = "" if value is None else f"`{value}`"
            desc = (field.description or "").replace("|", "\\|")
            rows.append(f"| `{common.env_name(cls, name)}` | {default} | {desc} |")
    return "\n".join(rows)


def _replace(text: str, start: str, end: str, block: str) -> str:
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{block}\n{end}{tail}"


def render(readme: str) -> str:
    from spoiler_common.dead_letters import reasons_table

    readme = _replace(readme, START, END, table())
    if REASONS_START in readme:
        readme = _replace(readme, REASONS_START, REASONS_END, reasons_table())
    return readme


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", type=Path, help="README to update in place")
    args = parser.parse_args()
    if args.write:
        args.write.write_text(render(args.write.read_text()))
    else:
        print(table())


if __name__ == "__main__":
    main()
