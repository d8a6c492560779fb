"""A simulated county's envelopes, as the importers make them (shared by fold tests and bench/fold.py).

``producers.simulator`` writes the department files; each file goes through its mapping, the
pseudonyms and the contract, as ``fupin import`` does, without a broker. The envelopes come back
file after file (poverty office first), the order in which departments publish their files, so
most events of a later department reach the fold late for their household.
"""

from __future__ import annotations

from pathlib import Path


def county_envelopes(out: Path, households: int = 300, seed: int = 11, year_to: int = 2021) -> list[dict]:
    from fupin.config import load_settings
    from producers.importers import READERS, event_id_for
    from producers.importers.mapping import find_mapping
    from producers.sdk import Publisher
    from producers.simulator import formats, simulate

    simulate(out, households=households, year_from=2016, year_to=year_to, seed=seed)
    settings = load_settings(data_dir=str(out / "data"))
    envelopes: list[dict] = []
    for layout in formats.LAYOUTS.values():
        path = out / layout.path
        mapping = find_mapping(layout.department, path)
        pub = Publisher(settings, layout.department, mapping.source_system)
        for _line, row, _raw, error in READERS[mapping.format](path):
            assert error is None, error
            identity, fields = mapping.convert(row)
            env = pub.build(**fields, event_id="00000000-0000-0000-0000-000000000000")
            env["event_id"] = event_id_for(layout.department, mapping.name, identity, env)
            envelopes.append(env)
    return envelopes
