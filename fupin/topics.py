"""Topic names: where components meet. Input topics are keyed by household_id."""

from __future__ import annotations

from fupin.config import Settings

DEPARTMENTS: tuple[str, ...] = (
    "poverty_office",
    "assessment",
    "civil_affairs",
    "health_insurance",
    "education",
    "housing",
    "water",
    "public_security",
    "human_resources",
    "disabled_persons",
)


def department_topic(settings: Settings, department: str) -> str:
    if department not in DEPARTMENTS:
        raise ValueError(f"unknown department {department!r}; expected one of {', '.join(DEPARTMENTS)}")
    return f"{settings.topic_prefix}.events.{department}"


def input_topics(settings: Settings) -> list[str]:
    return [department_topic(settings, d) for d in DEPARTMENTS]


def deadletter_topic(settings: Settings) -> str:
    return f"{settings.topic_prefix}.deadletter"


def status_topic(settings: Settings) -> str:
    """Compacted: the latest whole status document per household."""
    return f"{settings.topic_prefix}.household.status"


def alerts_topic(settings: Settings) -> str:
    return f"{settings.topic_prefix}.household.alerts"


def all_topics(settings: Settings) -> dict[str, dict[str, str]]:
    """Every platform topic with its configs (for creation)."""
    topics: dict[str, dict[str, str]] = {t: {} for t in input_topics(settings)}
    topics[deadletter_topic(settings)] = {}
    topics[status_topic(settings)] = {"cleanup.policy": "compact"}
    topics[alerts_topic(settings)] = {}
    return topics


def epoch_topic(settings: Settings) -> str:
    """One record, written once per broker life: tells a worker that the broker it knew is gone."""
    return f"{settings.topic_prefix}.broker.epoch"
