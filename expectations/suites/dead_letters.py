"""Suite ``dead_letters``: the share of rejected messages stays below ``deadletter_max_share``.

One summary row. A dead letter counts once by its identity (source topic, partition, offset, and
the raw bytes' hash as in the table's key: the embedded broker reuses offsets after a restart),
however many components rejected it; the share is over events plus dead letters.
"""

from __future__ import annotations

import great_expectations.expectations as gxe

from expectations.suites import CRITICAL, WARNING, Dataset, expect, ident, literal_list

SUITE = "dead_letters"
TABLE = "dead_letters"
SOURCES = ("streams", "sink", "producer")


def build(database: str, max_share: float) -> Dataset:
    db = database
    sql = f"""
        WITH
            (SELECT count() FROM {ident(db, "events_latest")}) AS events,
            (SELECT uniqExact(source_topic, source_partition, source_offset, cityHash64(raw))
               FROM {ident(db, "dead_letters")}) AS rejected
        SELECT
            events,
            rejected AS dead_letters,
            if(events + rejected = 0, NULL, rejected / (events + rejected)) AS dead_letter_share,
            (SELECT countIf(trimBoth(reason) = '') FROM {ident(db, "dead_letters")}) AS without_reason,
            (SELECT countIf(source NOT IN {literal_list(SOURCES)}) FROM {ident(db, "dead_letters")})
                AS unknown_source
    """
    exps = [
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            CRITICAL,
            f"dead letters / (events + dead letters) ≤ deadletter_max_share ({max_share:g})",
            column="dead_letter_share",
            min_value=0,
            max_value=max_share,
        ),
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            WARNING,
            "every dead letter states its reason",
            column="without_reason",
            min_value=0,
            max_value=0,
        ),
        expect(
            gxe.ExpectColumnValuesToBeBetween,
            WARNING,
            f"every dead letter names the rejecting component ({', '.join(SOURCES)})",
            column="unknown_source",
            min_value=0,
            max_value=0,
        ),
    ]
    return Dataset(suite=SUITE, table=TABLE, sql=sql, expectations=exps)
