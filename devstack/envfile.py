"""First-run `.env`: a random database password, so no default password exists anywhere."""

from __future__ import annotations

import secrets
from pathlib import Path

from spoiler_common.settings import REPO_ROOT


def ensure_env_file(path: Path = REPO_ROOT / ".env") -> bool:
    """Write `.env` with a fresh SPOILER_PG_PASSWORD if it has none. True if written."""
    text = path.read_text() if path.exists() else ""
    if "SPOILER_PG_PASSWORD=" in text:
        return False
    line = f"SPOILER_PG_PASSWORD={secrets.token_urlsafe(18)}\n"
    # POSTGRES_PASSWORD feeds compose's postgres image; keep the two equal.
    line += "POSTGRES_PASSWORD=${SPOILER_PG_PASSWORD}\n" if "POSTGRES_PASSWORD" not in text else ""
    with path.open("a") as fh:
        if text and not text.endswith("\n"):
            fh.write("\n")
        fh.write(line)
    path.chmod(0o600)
    return True
