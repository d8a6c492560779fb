"""`fupin demo --keep` leaves `fupin docs` serving beside the stack; `fupin down` stops it.

The process is real (`fupin docs --port 0`, detached): the URL it records answers with the built
sites, and the demo's closing lines name that URL and the dashboard's.
"""

from __future__ import annotations

import urllib.request
from pathlib import Path

from fupin.build import dbt_dir
from fupin.demo import closing_lines
from fupin.docs_cli import docs_file
from fupin.stack import live_docs, start_docs, stop_stack


def test_docs_served_in_the_background_until_down(settings):
    target = dbt_dir(settings) / "target"
    target.mkdir(parents=True)
    (target / "index.html").write_text("<html><body>dbt site of this test</body></html>")
    data_docs = Path(settings.data_dir) / "data_docs"
    data_docs.mkdir(parents=True)
    (data_docs / "index.html").write_text("<html><body>data docs of this test</body></html>")

    info = start_docs(settings)
    try:
        assert start_docs(settings)["pid"] == info["pid"]  # asked again: the one running, not a second
        for path, text in (("/dbt/", "dbt site of this test"), ("/data-docs/", "data docs of this test")):
            with urllib.request.urlopen(info["url"] + path, timeout=10) as resp:  # noqa: S310 - loopback
                assert resp.status == 200 and text in resp.read().decode()
        lines = closing_lines(info["url"], "http://127.0.0.1:1/login?token=t")
        assert lines[-3:] == [
            f"  dbt docs:   {info['url']}/dbt/",
            f"  Data Docs:  {info['url']}/data-docs/",
            "  dashboard:  http://127.0.0.1:1/login?token=t",
        ]
    finally:
        said = stop_stack(settings)
    assert f"docs pid {info['pid']}: stopped" in said
    assert (
        live_docs(settings) is None and not docs_file(settings).exists()
    )  # it removed its record on SIGTERM


def test_closing_lines_say_what_is_not_running():
    lines = closing_lines(None, None)
    assert "not served (run 'fupin docs')" in lines[-2] and "not running" in lines[-1]
