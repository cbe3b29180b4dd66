"""Generated artefacts (JSON Schemas, README settings table) match their sources."""

from __future__ import annotations

import json

import pytest

from spoiler_common.settings import REPO_ROOT
from spoiler_tools.contracts_cli import SCHEMA_DIR, schema_documents
from tools.settings_doc import END, START, table

pytestmark = pytest.mark.unit


def test_published_json_schemas_match_the_contracts() -> None:
    for filename, schema in schema_documents().items():
        on_disk = json.loads((SCHEMA_DIR / filename).read_text())
        assert on_disk == json.loads(json.dumps(schema)), f"run `make schemas` ({filename})"


def test_readme_settings_table_matches_the_settings_classes() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(START, 1)[1].split(END, 1)[0].strip()
    assert block == table(), "run `make docs` to regenerate the README's settings table"


def test_readme_reason_table_is_the_enum_and_docs_name_every_reason() -> None:
    from spoiler_common.dead_letters import REASONS, DeadLetterReason, reasons_table
    from tools.settings_doc import REASONS_END, REASONS_START

    assert set(REASONS) == set(DeadLetterReason), "every reason needs a one-line meaning"
    readme = (REPO_ROOT / "README.md").read_text()
    block = readme.split(REASONS_START, 1)[1].split(REASONS_END, 1)[0].strip()
    assert block == reasons_table(), "run `make docs` to regenerate the README's reason table"
    documented = (REPO_ROOT / "docs" / "stream_processor.md").read_text() + (
        REPO_ROOT / "docs" / "sink.md").read_text()
    worker_and_sink = set(DeadLetterReason) - {
        DeadLetterReason.TRUNCATED_LINE, DeadLetterReason.TRUNCATED_FILE}
    missing = [r.value for r in worker_and_sink if f"`{r.value}`" not in documented]
    assert not missing, f"docs/stream_processor.md or docs/sink.md do not mention {missing}"


def test_topic_spec_is_valid() -> None:
    from spoiler_common.topics import ROLES, topic_specs

    specs = topic_specs()
    assert [s.role for s in specs] == list(ROLES)
    assert all(s.partitions >= 1 and s.replication_factor >= 1 for s in specs)
    assert len({s.name for s in specs}) == len(specs)
