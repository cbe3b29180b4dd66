"""Generate the README's settings table and dead-letter reason table.

`make docs` runs `python -m tools.settings_doc --write README.md`; a unit test
(tests/unit/common/test_common_docs_in_sync.py) fails when the README drifts.
"""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path
from types import ModuleType

from pydantic_settings import BaseSettings

import monitoring.settings
import producer.settings
import sink.settings
import stream_processor.settings
import training.settings
from spoiler_common import settings as common

START, END = "<!-- settings:start -->", "<!-- settings:end -->"
REASONS_START, REASONS_END = "<!-- reasons:start -->", "<!-- reasons:end -->"
# The shared settings first, then each service's own classes. A tool may import the
# services; spoiler_common (the library they all build on) may not.
MODULES: tuple[ModuleType, ...] = (common, producer.settings, stream_processor.settings,
                                   sink.settings, monitoring.settings, training.settings)


def settings_classes() -> list[type[BaseSettings]]:
    found: list[type[BaseSettings]] = []
    for module in MODULES:
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
