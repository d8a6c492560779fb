"""The Faust agent under Faust's test_context (no broker): batches, table, outputs, dead letters."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from test_household import LINES, ev, exited, hospital_stay, income, pid, registered, returned

from streams import household
from streams.app import create_app
from streams.deadletter import header_dict


@pytest.fixture
def lines_dir(tmp_path):
    rows = ["province_code,year,poverty_line,poverty_line_source,monitoring_line,monitoring_line_source"]
    for (province, year), (poverty, monitoring) in LINES.items():
        rows.append(
            f"{province},{year},{poverty},t,{monitoring if monitoring else ''},{'t' if monitoring else ''}"
        )
    (tmp_path / "lines.csv").write_text("\n".join(rows) + "\n")
    return tmp_path


class Harness:
    """An app with a capturing sender, driven through the fold agent's test_context."""

    def __init__(self, settings) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, list | None]] = []
        self.app = create_app(
            settings,
            bootstrap="127.0.0.1:9",
            store="memory://",
            sender=self._capture,
            web_port=6066,
            batch_within=0.01,
        )
        self.settings = settings

    async def _capture(self, topic, key, value, headers):
        self.sent.append((topic, key, value, headers))
        fut = asyncio.get_running_loop().create_future()
        fut.set_result(None)
        return fut

    def run(self, messages: list[tuple[bytes | None, bytes]]) -> None:
        async def go():
            counters = self.app.fupin_counters
            want = sum(counters.values()) + len(messages)
            async with self.app.fupin_agent.test_context() as ctx:
                for key, value in messages:
                    await ctx.put(value, key=key)
                for _ in range(500):
                    if sum(counters.values()) >= want:
                        break
                    await asyncio.sleep(0.01)

        asyncio.run(go())

    def put(self, *envelopes: dict) -> None:
        self.run([(e["household_id"].encode(), orjson.dumps(e)) for e in envelopes])

    def topic(self, suffix: str) -> list:
        return [s for s in self.sent if s[0].endswith(suffix)]

    def statuses(self) -> list[dict]:
        return [orjson.loads(v) for _t, _k, v, _h in self.topic(".household.status")]

    def alerts(self) -> list[dict]:
        return [orjson.loads(v) for _t, _k, v, _h in self.topic(".household.alerts")]

    def state(self, hid: str = "H1") -> dict:
        return household.decode(self.app.fupin_table.get(hid.encode()))


@pytest.fixture
def harness(settings, lines_dir):
    return Harness(settings.with_(reference_dir=lines_dir))


@pytest.mark.parametrize(
    ("steps", "statuses"),
    [
        (["reg"], ["poor"]),
        (["reg", "exit"], ["poor", "exited"]),
        (["reg", "exit", "ret"], ["poor", "exited", "returned"]),
        (["reg", "exit", "ret", "exit"], ["poor", "exited", "returned", "exited"]),
        (["exit"], ["non_registered"]),
        (["reg", "ret"], ["poor", "poor"]),
    ],
)
def test_status_transitions_published_one_by_one(harness, steps, statuses):
    makers = {"reg": registered, "exit": exited, "ret": returned}
    for i, step in enumerate(steps):
        harness.put(makers[step](f"{2016 + i}-06-01"))
    docs = harness.statuses()
    assert [d["status"] for d in docs] == statuses
    assert [d["version"] for d in docs] == list(range(1, len(steps) + 1))
    assert all(k == b"H1" for _t, k, _v, _h in harness.topic(".household.status"))
    assert harness.state()["status"] == statuses[-1]


def test_one_status_document_per_household_per_batch(harness):
    harness.put(registered(), income("2019-10-01", 2019, 3000.0), exited("2019-12-01"))
    docs = harness.statuses()
    assert docs[-1]["version"] == 3 and docs[-1]["status"] == "exited"
    assert len(docs) <= 3


def test_duplicate_changes_nothing(harness):
    e = income("2020-10-01", 2020, 5000.0)
    harness.put(registered(), e)
    before = len(harness.statuses())
    harness.put(e)
    assert len(harness.statuses()) == before
    assert harness.app.fupin_counters["duplicates"] == 1
    assert harness.state()["v"] == 2


def test_late_event_does_not_overwrite(harness):
    harness.put(registered(), income("2020-10-01", 2020, 9000.0))
    harness.put(income("2019-10-01", 2019, 1000.0))
    doc = harness.statuses()[-1]
    assert doc["income"] == {"per_capita": 9000.0, "year": 2020}
    assert doc["version"] == 3  # the late event was applied (recorded), the newer fact still wins


def test_malformed_goes_to_dead_letter_and_processing_continues(harness):
    good = registered()
    bad = [
        (b"H1", b"{not json"),
        (b"H1", orjson.dumps({**good, "schema_version": 7})),
        (b"H1", orjson.dumps({**good, "event_type": "water.rain_measured"})),
        (b"H2", orjson.dumps(good)),  # key is not the household
        (None, orjson.dumps(good)),
    ]
    harness.run([*bad, (b"H1", orjson.dumps(good))])
    dead = harness.topic(".deadletter")
    assert [(k, v) for _t, k, v, _h in dead] == bad
    for _t, _k, _v, headers in dead:
        h = header_dict(headers)
        assert h["fupin.source"] == "streams" and h["fupin.reason"]
        assert {"fupin.source_topic", "fupin.source_partition", "fupin.source_offset", "fupin.time"} <= set(h)
    assert "key" in header_dict(dead[3][3])["fupin.reason"]
    assert harness.statuses()[-1]["status"] == "poor"


WATER_BAD = {"safe": False, "issues": ["quality"]}
WATER_OK = {"safe": True, "issues": []}


def scenarios():
    """rule -> (events raising it, event resolving it)."""
    elim = ev("poverty_office.monitoring_risk_eliminated", "2020-12-01", {})
    return {
        "income_below_monitoring_line": (
            [registered(), exited("2020-01-01"), income("2020-10-01", 2020, 5000.0)],
            income("2020-11-01", 2020, 7000.0),
        ),
        "medical_burden": ([registered(), hospital_stay("02-01", 25000.0)], elim),
        "education_dropout": (
            [
                registered(),
                ev("education.student_dropped_out", "2020-03-01", {"stage": "primary"}, person=pid(2)),
            ],
            ev("education.student_returned", "2020-04-01", {"stage": "primary"}, person=pid(2)),
        ),
        "medical_insurance_gap": (
            [
                registered(),
                ev("health_insurance.insurance_lapsed", "2020-06-01", {"year": 2020}, person=pid(1)),
            ],
            ev(
                "health_insurance.insurance_enrolled",
                "2020-07-01",
                {"year": 2020, "schemes": ["basic"]},
                person=pid(1),
            ),
        ),
        "unsafe_housing": (
            [ev("housing.house_appraised", "2020-01-01", {"grade": "C"})],
            ev("housing.house_renovated", "2020-05-01", {"grade_after": "A"}),
        ),
        "unsafe_water": (
            [ev("water.water_assessed", "2020-01-01", WATER_BAD)],
            ev("water.water_assessed", "2020-02-01", WATER_OK),
        ),
        "labour_loss": (
            [
                registered(),
                ev("public_security.person_left", "2020-03-01", {"reason": "death"}, person=pid(1)),
            ],
            elim,
        ),
        "dibao_terminated_while_poor": (
            [
                registered(),
                ev("civil_affairs.dibao_terminated", "2020-07-01", {"reason": "x"}),
                income("2020-10-01", 2020, 3000.0),
            ],
            income("2020-11-01", 2020, 4500.0),
        ),
        "missed_registration_candidate": (
            [ev("civil_affairs.dibao_enrolled", "2020-01-01", {"monthly_amount": 300, "persons_covered": 2})],
            registered("2020-03-01"),
        ),
    }


@pytest.mark.parametrize("rule", sorted(scenarios()))
def test_each_rule_raised_once_and_resolved(harness, rule):
    raising, resolving = scenarios()[rule]
    harness.put(*raising)
    harness.put(raising[-1])  # a duplicate raises nothing twice
    harness.put(resolving)
    mine = [a for a in harness.alerts() if a["rule"] == rule]
    assert [(a["state"], a["start_event_id"], a["end_event_id"]) for a in mine] == [
        ("raised", raising[-1]["event_id"], None),
        ("resolved", raising[-1]["event_id"], resolving["event_id"]),
    ]
    raised, resolved = mine
    assert raised["alert_id"] == resolved["alert_id"] and resolved["revision"] > raised["revision"]
    assert raised["household_id"] == "H1" and raised["region_code"] == "431224104201"
    assert raised["processed_at"].endswith("Z") and raised["start_occurred_at"].endswith("Z")
    assert rule not in harness.state()["open"]


def test_live_queries_without_a_worker_fail_cleanly(settings, monkeypatch):
    from click.testing import CliRunner

    from fupin.cli import cli

    monkeypatch.setenv("FUPIN_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    for args in (["household", "show", "H1"], ["household", "explain", "H1"]):
        result = runner.invoke(cli, args)
        assert result.exit_code == 1
        assert "no stream worker runs" in result.output
    result = runner.invoke(
        cli, ["stream"], env={"FUPIN_DATA_DIR": str(settings.data_dir), "FUPIN_BROKER_BOOTSTRAP": ""}
    )
    assert result.exit_code == 1 and "fupin up" in result.output


def test_failed_delivery_is_retried_not_dropped(settings, lines_dir):
    harness = Harness(settings.with_(reference_dir=lines_dir))
    failures = {"left": 2}
    capture = harness._capture

    async def flaky(topic, key, value, headers):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("broker away")
        return await capture(topic, key, value, headers)

    harness.app = create_app(
        harness.settings,
        bootstrap="127.0.0.1:9",
        store="memory://",
        sender=flaky,
        web_port=6066,
        batch_within=0.01,
    )
    harness.put(ev("water.water_assessed", "2020-01-01", {"safe": False, "issues": ["quality"]}))
    assert [a["rule"] for a in harness.alerts()] == ["unsafe_water"]
    assert harness.statuses()[-1]["open_alerts"] == ["unsafe_water"]


def test_a_failing_delivery_is_retried_and_shows_as_paused_with_its_reason(settings, lines_dir):
    """The broker refusing outputs is not the message's fault: the batch waits (backoff), says why."""
    failures = {"left": 2}
    harness = Harness(settings.with_(reference_dir=lines_dir))
    capture = harness._capture

    async def refusing(topic, key, value, headers):
        if failures["left"]:
            failures["left"] -= 1
            raise ConnectionError("broker refused the batch (test)")
        return await capture(topic, key, value, headers)

    harness.app = create_app(
        harness.settings, bootstrap="127.0.0.1:9", store="memory://", sender=refusing, web_port=6066,
        batch_within=0.01,
    )  # fmt: skip
    health = harness.app.fupin_health
    seen: list[tuple[str, str | None]] = []

    async def go():
        async with harness.app.fupin_agent.test_context() as ctx:
            await ctx.put(orjson.dumps(registered()), key=b"H1")
            for _ in range(600):
                seen.append((health["state"], health["reason"]))
                if harness.app.fupin_counters["applied"]:
                    break
                await asyncio.sleep(0.01)

    asyncio.run(go())
    paused = [reason for state, reason in seen if state == "paused"]
    assert paused and "delivery failed" in paused[-1] and "broker refused the batch (test)" in paused[-1]
    assert health["state"] == "running" and health["reason"] is None
    assert [d["status"] for d in harness.statuses()] == ["poor"]  # delivered once it could be
