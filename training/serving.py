"""Installed bundle versions and the links that serve them (models/serving, models/challenger).

Each bundle is installed once, read-only in spirit, under
`models/versions/<bundle version>/`; `models/serving` and `models/challenger`
are symbolic links to one of them. Switching is one `os.replace` of a new link
over the old one: a reader (the worker's hot reload) sees either the old or
the new bundle, never a mix, and never a missing path. A plain directory at
the link's place (what releases before versioned serving installed) is moved
into `models/versions/` on the first switch.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from pathlib import Path

from spoiler_common.bundle import BUNDLE_JSON, read_manifest
from training.exceptions import PromotionError

log = logging.getLogger(__name__)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def version_dir(versions_dir: Path, version: str) -> Path:
    safe = _UNSAFE.sub("_", version).strip("._") or "unnamed"
    return versions_dir / safe


def bundle_version(path: Path) -> str | None:
    """The bundle version at `path` (a link or a directory); None when there is none."""
    try:
        return read_manifest(path).version
    except Exception:  # missing, unreadable or an older format: no version to report
        return None


def install(bundle: Path, versions_dir: Path) -> Path:
    """Copy a bundle to versions_dir/<version> (once; an identical copy is reused)."""
    manifest = read_manifest(bundle)
    target = version_dir(versions_dir, manifest.version)
    if target.resolve() == bundle.resolve():
        return target
    if target.is_dir():
        try:
            if read_manifest(target).files == manifest.files:
                return target
        except Exception:  # a broken earlier copy: replaced below
            pass
    versions_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".install-", dir=versions_dir))
    for item in bundle.iterdir():
        if item.is_file():
            shutil.copy2(item, staging / item.name)
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=".old-", dir=versions_dir))
        os.replace(target, old / "bundle")
        shutil.rmtree(old, ignore_errors=True)
    os.replace(staging, target)
    log.info("Installed bundle version=%s path=%s", manifest.version, target)
    return target


def _adopt_plain_directory(link: Path, versions_dir: Path) -> None:
    """A real directory where the link goes: move it into versions_dir (once)."""
    if link.is_symlink() or not link.is_dir():
        return
    version = bundle_version(link)
    if version is None:
        raise PromotionError(f"{link} is a directory but not a loadable bundle; move it away "
                             "(it is where the served bundle's link goes)")
    target = version_dir(versions_dir, version)
    versions_dir.mkdir(parents=True, exist_ok=True)
    if target.exists():
        shutil.rmtree(link)
    else:
        os.replace(link, target)
    log.info("Moved the plain bundle directory %s to %s (served through a link from now on)",
             link, target)


def point(link: Path, target: Path, versions_dir: Path) -> None:
    """Make `link` point at `target` atomically (relative, so the tree can move)."""
    _adopt_plain_directory(link, versions_dir)
    link.parent.mkdir(parents=True, exist_ok=True)
    relative = os.path.relpath(target.resolve(), link.parent.resolve())
    tmp = link.with_name(f".{link.name}.{os.getpid()}.new")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(relative, target_is_directory=True)
    os.replace(tmp, link)
    log.info("Pointed %s at %s", link, relative)


def prune(versions_dir: Path, keep: int, protected: list[Path]) -> list[str]:
    """Remove the oldest installed versions beyond `keep`, never one in `protected`."""
    if not versions_dir.is_dir():
        return []
    safe = {p.resolve() for p in protected if p.exists()}
    installed = sorted((d for d in versions_dir.iterdir()
                        if d.is_dir() and not d.name.startswith(".")
                        and (d / BUNDLE_JSON).is_file()),
                       key=lambda d: (d / BUNDLE_JSON).stat().st_mtime)
    removed = []
    for d in installed[:max(0, len(installed) - keep)]:
        if d.resolve() not in safe:
            shutil.rmtree(d, ignore_errors=True)
            removed.append(d.name)
    return removed
