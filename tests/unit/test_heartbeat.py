"""How `fupin status` judges a process from its heartbeat: one rule for every component."""

from __future__ import annotations

import os

from fupin.heartbeat import LAG_S, STALE_S, STALL_S, PidFile, assess, beat, read_json

NOW = 1_800_000_000.0


def test_each_state_and_whether_it_is_stuck():
    fresh = NOW - 1
    cases = [
        (beat(), False, fresh, ("dead", True)),
        (beat(), True, NOW - STALE_S - 1, ("not responding", True)),
        (beat("paused", "warehouse write failed: refused"), True, fresh, ("paused", True)),
        (beat("failed", "the fold stopped: ValueError()"), True, fresh, ("failed", True)),
        (beat("stopping", "SIGTERM received"), True, fresh, ("stopping", False)),
        # work waiting, nothing finished for longer than STALL_S: stalled
        (
            beat(pending=5, last_progress_at=NOW - STALL_S - 1, caught_up_at=NOW - 100),
            True,
            fresh,
            ("stalled", True),
        ),
        # work waiting, progressing, not caught up for longer than LAG_S: lagging
        (
            beat(pending=5, last_progress_at=NOW - 1, caught_up_at=NOW - LAG_S - 1),
            True,
            fresh,
            ("lagging", False),
        ),
        (beat(pending=5, last_progress_at=NOW - 1, caught_up_at=NOW - 1), True, fresh, ("alive", False)),
        (beat(pending=0, last_progress_at=NOW - 1000), True, fresh, ("alive", False)),  # idle is fine
        (None, True, None, ("alive", False)),
    ]
    for heartbeat, alive, updated_at, (state, stuck) in cases:
        verdict = assess(heartbeat, alive, updated_at, now=NOW)
        assert (verdict.state, verdict.stuck) == (state, stuck), (heartbeat, verdict)
    assert "refused" in assess(beat("paused", "warehouse write failed: refused"), True, fresh, now=NOW).reason


def test_pid_file_is_rewritten_then_removed_only_by_its_own_process(tmp_path):
    path = tmp_path / "stream-1.json"
    pidfile = PidFile(path, worker="1", url="http://127.0.0.1:1")
    pidfile.write(beat("paused", "delivery failed"), updated_at=NOW)
    doc = read_json(path)
    assert doc["pid"] == os.getpid() and doc["worker"] == "1" and doc["updated_at"] == NOW
    assert doc["heartbeat"]["state"] == "paused" and doc["heartbeat"]["reason"] == "delivery failed"
    assert [p.name for p in tmp_path.iterdir()] == ["stream-1.json"]  # no temporary file left
    path.write_text('{"pid": 1}')  # a newer process took the name over
    pidfile.remove()
    assert path.exists()
    path.unlink()
    other = PidFile(path)
    other.write()
    other.remove()
    assert not path.exists()
    other.write()  # a beat after the stop does not bring the file back
    assert not path.exists()
