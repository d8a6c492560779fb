from pathlib import Path

import pytest

from fupin.config import SettingsError, load_settings


def test_defaults_are_embedded():
    s = load_settings(env={})
    assert s.mode == "embedded"
    assert s.chdb_data_path == Path(".fupin") / "chdb"


def test_env_overrides_file(tmp_path):
    cfg = tmp_path / "fupin.toml"
    cfg.write_text('topic_partitions = 3\ntopic_prefix = "county"\n')
    s = load_settings(env={"FUPIN_CONFIG": str(cfg), "FUPIN_TOPIC_PARTITIONS": "6"})
    assert s.topic_partitions == 6
    assert s.topic_prefix == "county"


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"FUPIN_MODE": "cloud"}, "mode"),
        ({"FUPIN_TOPIC_PARTITIONS": "many"}, "topic_partitions"),
        ({"FUPIN_MODE": "server"}, "broker_bootstrap"),
        ({"FUPIN_BROKER_PORT": "70000"}, "broker_port"),
        ({"FUPIN_CONFIG": "/nonexistent/fupin.toml"}, "FUPIN_CONFIG"),
    ],
)
def test_bad_settings_name_the_setting(env, named):
    with pytest.raises(SettingsError, match=named):
        load_settings(env=env)


def test_unknown_key_in_file_is_rejected(tmp_path):
    cfg = tmp_path / "fupin.toml"
    cfg.write_text("brokr = 'x'\n")
    with pytest.raises(SettingsError, match="brokr"):
        load_settings(env={"FUPIN_CONFIG": str(cfg)})


def test_require_names_missing_setting():
    with pytest.raises(SettingsError, match="pseudonym_key"):
        load_settings(env={}).require("pseudonym_key")


def test_readme_settings_table_names_every_setting():
    """The README's configuration table is complete: every field of Settings has a row."""
    import dataclasses
    import re

    from fupin import PROJECT_ROOT
    from fupin.config import Settings

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    table = readme[readme.index("## Configuration") :].split("\n## ")[0]
    named = set(re.findall(r"`([a-z_]+)`", "\n".join(ln.split("|")[1] for ln in table.splitlines() if ln.startswith("| `"))))
    fields = {f.name for f in dataclasses.fields(Settings)} - {"extra"}
    assert fields - named == set()
