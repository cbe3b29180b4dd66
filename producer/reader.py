"""Stream records out of a dataset file: JSON lines, a JSON array, either gzipped.

Memory stays flat whatever the file size: JSON lines are read a line at a time,
arrays are parsed element by element from a sliding buffer. Nothing is
validated here beyond "is it a JSON object"; each problem becomes a
`RawRecord` with a reason code, never an exception (except a missing or
unreadable file).
"""

from __future__ import annotations

import codecs
import gzip
import json
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Literal

from producer.exceptions import InputFileError
from spoiler_common.contracts import json_decoder, parse
from spoiler_common.dead_letters import DeadLetterReason
from spoiler_common.exceptions import ContractError

BOM = b"\xef\xbb\xbf"
CHUNK = 1 << 20
# An array element larger than this that still does not parse is malformed, not cut short.
MAX_ELEMENT_CHARS = 4 << 20
# Undecodable bytes survive as lone surrogates (surrogateescape) so one bad element
# can be skipped without losing the rest of the array.
_SURROGATE = re.compile("[\udc80-\udcff]")

FileFormat = Literal["jsonl", "array"]


@dataclass(slots=True)
class RawRecord:
    """One record of the file: parsed `data`, or `reason`/`detail` saying why not."""

    line: int
    data: dict[str, Any] | None = None
    reason: str | None = None
    detail: str = ""
    # False only when the raw text was searched and holds no NUL (escaped or not).
    maybe_nul: bool = True


def _open(path: Path) -> IO[bytes]:
    try:
        raw = open(path, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    except FileNotFoundError:
        raise InputFileError(f"input file not found: {path}") from None
    except OSError as exc:
        raise InputFileError(f"cannot read input file {path}: {exc.strerror}") from exc
    if raw.peek(2)[:2] == b"\x1f\x8b":
        return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[return-value]
    return raw


def detect_format(path: Path) -> FileFormat:
    """`array` when the first non-blank character (after a BOM) is `[`, else `jsonl`."""
    with _open(path) as f:
        try:
            head = f.read(4096)
        except (OSError, EOFError) as exc:
            raise InputFileError(f"cannot read input file {path}: {exc}") from exc
    head = head.removeprefix(BOM).lstrip()
    return "array" if head.startswith(b"[") else "jsonl"


def read_records(path: Path) -> Iterator[RawRecord]:
    """Every record of `path` in file order, good or bad."""
    if detect_format(path) == "array":
        yield from _read_array(path)
    else:
        yield from _read_lines(path)


def _not_object(line: int, value: Any) -> RawRecord:
    return RawRecord(line, None, "not_object",
                     f"a JSON {type(value).__name__}, not an object")


def _line_record(line: int, raw: bytes, complete: bool) -> RawRecord:
    """One line to a record: the shared parser's verdict, never an exception."""
    try:
        data = parse(raw)
    except ContractError as exc:
        if exc.reason == DeadLetterReason.INVALID_UTF8:
            return RawRecord(line, None, exc.reason, _utf8_detail(raw))
        if exc.reason == DeadLetterReason.INVALID_JSON and not complete:
            return RawRecord(line, None, DeadLetterReason.TRUNCATED_LINE.value,
                             f"last line ends mid-record ({exc.args[0]})")
        return RawRecord(line, None, exc.reason, str(exc.args[0]))
    except Exception as exc:  # a bug must not end the replay: this record is skipped
        return RawRecord(line, None, DeadLetterReason.INTERNAL_ERROR.value,
                         f"{type(exc).__name__}: {exc}")
    raw_nul = b"\\u0000" in raw
    return RawRecord(line, data, maybe_nul=raw_nul)


def _utf8_detail(raw: bytes) -> str:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"byte {raw[exc.start:exc.start + 1]!r} at column {exc.start + 1} is not UTF-8"
    return "not UTF-8"


def _read_lines(path: Path) -> Iterator[RawRecord]:
    with _open(path) as f:
        line = 0
        try:
            for raw in f:
                line += 1
                if line == 1:
                    raw = raw.removeprefix(BOM)
                complete = raw.endswith(b"\n")
                raw = raw.strip()
                if not raw:
                    continue
                record = _line_record(line, raw, complete)
                if record.reason == "not_object":
                    record.detail = record.detail.replace("value is ", "", 1)
                yield record
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            yield RawRecord(line + 1, None, "truncated_file",
                            f"compressed file is cut short or corrupt: {exc}")


def _read_array(path: Path) -> Iterator[RawRecord]:
    decoder = json_decoder()
    utf8 = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    with _open(path) as f:
        buf, pos, line, eof = "", 0, 1, False

        def fill() -> bool:
            nonlocal buf, pos, eof
            if eof:
                return False
            try:
                chunk = f.read(CHUNK)
            except (EOFError, zlib.error, gzip.BadGzipFile):
                chunk = b""
            eof = not chunk
            buf = buf[pos:] + utf8.decode(chunk, final=eof)
            pos = 0
            return True

        fill()
        if buf.startswith("\ufeff"):
            pos = 1
        started = False
        while True:
            # Skip blanks and separators, counting lines for the messages.
            while True:
                while pos < len(buf) and buf[pos] in " \t\r\n,":
                    if buf[pos] == "\n":
                        line += 1
                    pos += 1
                if pos < len(buf) or not fill():
                    break
            if pos >= len(buf):
                if started:
                    yield RawRecord(line, None, "truncated_file",
                                    "the JSON array is not closed with ']'")
                return
            char = buf[pos]
            if not started:
                if char != "[":
                    yield RawRecord(line, None, "invalid_json", "expected '[' to open the array")
                    return
                started = True
                pos += 1
                continue
            if char == "]":
                return
            while True:
                try:
                    value, end = decoder.raw_decode(buf, pos)
                    break
                except json.JSONDecodeError as exc:
                    if len(buf) - pos < MAX_ELEMENT_CHARS and fill():
                        continue
                    reason = "truncated_file" if eof and exc.pos >= len(buf) - 1 else "invalid_json"
                    yield RawRecord(line, None, reason,
                                    f"{exc.msg}; a JSON array cannot be resynchronised, "
                                    "the rest of the file is skipped")
                    return
                except (ContractError, ValueError, RecursionError) as exc:
                    # Huge integers, NaN, duplicate keys, deep nesting: the shared
                    # parser's rules, applied while the element is read.
                    reason = exc.reason if isinstance(exc, ContractError) else "invalid_json"
                    yield RawRecord(line, None, reason,
                                    f"{exc}; a JSON array cannot be resynchronised, "
                                    "the rest of the file is skipped")
                    return
            start_line = line
            line += buf.count("\n", pos, end)
            bad = _SURROGATE.search(buf, pos, end)
            pos = end
            if bad is not None:
                byte = bad.group().encode("utf-8", "surrogateescape")
                yield RawRecord(start_line, None, "invalid_utf8", f"byte {byte!r} is not UTF-8")
            elif type(value) is not dict:
                yield _not_object(start_line, value)
            else:
                yield RawRecord(start_line, value)
