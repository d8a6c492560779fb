"""`fupin sink` killed with SIGKILL mid-run and restarted: still exactly N events."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

from warehouse.sample import publish, sample_messages


def test_sigkill_mid_batch_then_restart(broker_settings, tmp_path):
    s = broker_settings
    n = 60_000
    publish(s.broker_bootstrap, s, sample_messages(n, seed=11))
    env = {
        **os.environ,
        "FUPIN_DATA_DIR": str(tmp_path / "data"),
        "FUPIN_CHDB_PATH": str(tmp_path / "chdb"),
        "FUPIN_BROKER_BOOTSTRAP": s.broker_bootstrap,
        "FUPIN_TOPIC_PREFIX": s.topic_prefix,
        "FUPIN_CLICKHOUSE_DATABASE": "fupin",
    }
    fupin = [sys.executable, "-m", "fupin.cli"]
    first = subprocess.Popen([*fupin, "sink", "--batch-size", "500", "--batch-seconds", "0.2", "--every", "0.1"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    messages = 0
    deadline = time.monotonic() + 90
    for line in first.stdout:
        m = re.search(r"messages=(\d+)", line)
        if m and int(m.group(1)) > 0:
            messages = int(m.group(1))
            break
        assert time.monotonic() < deadline, "the sink never made progress"
    first.send_signal(signal.SIGKILL)  # mid-run: batches buffered and in flight, offsets not committed
    first.wait(30)
    first.stdout.close()
    assert 0 < messages < n, f"killed too late to test anything: {messages} of {n} already committed"

    second = subprocess.run([*fupin, "sink", "--stop-when-idle", "4", "--every", "5"], env=env,
                            capture_output=True, text=True, timeout=300)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    out = subprocess.run([*fupin, "warehouse", "query", "--format", "tsv",
                          "SELECT (SELECT count() FROM events_latest), (SELECT count() FROM events FINAL), "
                          "(SELECT uniqExact(event_id) FROM events), (SELECT count() FROM dead_letters)"],
                         env=env, capture_output=True, text=True, timeout=120)  # fmt: skip
    assert out.returncode == 0, out.stderr
    latest, final, unique, letters = map(int, out.stdout.strip().splitlines()[-1].split("\t"))
    assert (latest, final, unique, letters) == (n, n, n, 0)
