"""A department without a Kafka client: the README's `curl` script posts a batch to the gateway with
its department token, and `fupin household show` answers from a stream worker within seconds."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time

from gateway_support import running_gateway, token_for
from test_streams import FUPIN, WAIT, Worker, write_lines

from fupin import PROJECT_ROOT

HOUSEHOLD = "H431224104201-0007"


def readme_script() -> str:
    """The README's post-batch.sh block, as a department would copy it."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    (script,) = re.findall(r"```sh\n(#!/bin/sh\n# post-batch\.sh.*?)```", readme, re.S)
    return script


def show(settings) -> subprocess.CompletedProcess:
    env = dict(os.environ, FUPIN_DATA_DIR=str(settings.data_dir), FUPIN_BROKER_BOOTSTRAP=settings.broker_bootstrap,
               FUPIN_TOPIC_PREFIX=settings.topic_prefix)  # fmt: skip
    return subprocess.run([FUPIN, "household", "show", HOUSEHOLD, "--json"], env=env, capture_output=True,
                          text=True, timeout=60)  # fmt: skip


def test_the_readme_curl_batch_reaches_household_show(broker_settings, tmp_path):
    s = broker_settings.with_(reference_dir=write_lines(tmp_path / "reference"))
    script = tmp_path / "post-batch.sh"
    script.write_text(readme_script())
    worker = Worker(s, "c1", tmp_path / "c1.log")
    try:
        with running_gateway(s) as url:
            token = token_for(s, "department:civil_affairs")
            posted = subprocess.run(["sh", str(script), url, token], capture_output=True, text=True, timeout=120)
            assert posted.returncode == 0, posted.stdout + posted.stderr
            verdicts = json.loads(posted.stdout)
            assert [e["verdict"] for e in verdicts["events"]] == ["accepted", "accepted"], verdicts
            # Another department's token may not publish civil affairs' events: refused, per event.
            other = subprocess.run(["sh", str(script), url, token_for(s, "department:water")],
                                   capture_output=True, text=True, timeout=120)  # fmt: skip
            refused = json.loads(other.stdout)
            assert other.returncode == 0 and [e["verdict"] for e in refused["events"]] == ["rejected", "rejected"]
            assert all("civil_affairs" in e["reason"] for e in refused["events"])
            t0 = time.monotonic()
            while time.monotonic() - t0 < WAIT:
                done = show(s)
                if done.returncode == 0:
                    break
                time.sleep(0.5)
            assert done.returncode == 0, done.stderr
            doc = json.loads(done.stdout)
            assert doc["household_id"] == HOUSEHOLD and doc["version"] == 2
            assert doc["last_event_id"] == "5b0c6d52-3f0e-4d36-9a53-7d7c2b1f0a02"
    finally:
        worker.stop()
