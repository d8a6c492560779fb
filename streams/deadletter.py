"""Dead letters: bad input goes, byte for byte, to the dead-letter topic with why and where from.

The message keeps the original key and value, except that every span that looks like a raw
identifier is replaced by ``[redacted]`` (events.md, "Dead letters and privacy"); the headers
(docs/architecture.md) say the reason, the source topic, partition and offset, the rejecting
component, the time, and whether the bytes were redacted. A dead letter's identity is
(source_topic, source_partition, source_offset).
"""

from __future__ import annotations

from dataclasses import dataclass

from fupin.timeutil import iso_utc, utc_now
from fupin.validity import dead_letter_value

COMPONENT = "streams"
#: A reason longer than this is cut: a header is a note, not a dump.
MAX_REASON = 1000


@dataclass(frozen=True)
class DeadLetter:
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]]


def dead_letter(
    reason: str, raw: bytes | None, key: bytes | None, topic: str, partition: int, offset: int
) -> DeadLetter:
    value, value_redacted = dead_letter_value(raw)
    key, key_redacted = dead_letter_value(key)
    headers = [
        ("fupin.reason", reason[:MAX_REASON].encode("utf-8", "replace")),
        ("fupin.source_topic", topic.encode()),
        ("fupin.source_partition", str(partition).encode()),
        ("fupin.source_offset", str(offset).encode()),
        ("fupin.source", COMPONENT.encode()),
        ("fupin.time", iso_utc(utc_now()).encode()),
    ]
    if value_redacted or key_redacted:
        headers.append(("fupin.redacted", b"true"))
    return DeadLetter(key, value, headers)


def header_dict(headers) -> dict[str, str]:
    """Headers of a consumed dead letter as text (for tests and tools)."""
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in (headers or [])}
