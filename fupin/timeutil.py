"""Valid and transaction time: one normalisation for every component (docs/architecture.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time


def parse_instant(value: str | date | datetime) -> datetime:
    """An ISO 8601 date or date-time as an aware UTC datetime; a date alone is 00:00 UTC."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time.min)
    else:
        text = value.strip()
        if len(text) == 10:
            dt = datetime.combine(date.fromisoformat(text), time.min)
        else:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(dt: datetime) -> str:
    """UTC ISO 8601 with a Z suffix and millisecond precision."""
    dt = dt.astimezone(UTC)
    # strftime("%Y") does not pad years below 1000 on glibc: format the fields ourselves.
    return (
        f"{dt.year:04d}-{dt.month:02d}-{dt.day:02d}T{dt.hour:02d}:{dt.minute:02d}:{dt.second:02d}."
        f"{dt.microsecond // 1000:03d}Z"
    )
