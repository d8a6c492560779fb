"""Query results typed by their column types, as clickhouse-connect types them on a server."""

import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from dbt.adapters.chdb.types import converter, split_args

INT128_MAX = 2**127 - 1
UINT256_MAX = 2**256 - 1


class TestTypedResults:
    def test_dates_and_datetimes(self, client):
        res = client.query(
            "SELECT toDate('1970-01-01') d, toDate32('1900-01-02') d32,"
            " toDateTime('2020-01-01 08:00:00', 'Asia/Shanghai') t_zone,"
            " toDateTime64('2020-01-01 00:00:00.123456789', 9, 'UTC') t64_zone,"
            " toDateTime('2020-01-01 00:00:00') t_naive"
        )
        d, d32, t_zone, t64_zone, t_naive = res.result_set[0]
        assert d == date(1970, 1, 1) and d32 == date(1900, 1, 2)
        assert t_zone.tzinfo == ZoneInfo("Asia/Shanghai")
        assert t_zone.utcoffset() == timedelta(hours=8)
        assert t_zone == datetime(2020, 1, 1, 0, 0, tzinfo=ZoneInfo("UTC"))
        assert t64_zone == datetime(2020, 1, 1, 0, 0, 0, 123456, tzinfo=ZoneInfo("UTC"))
        assert t_naive == datetime(2020, 1, 1) and t_naive.tzinfo is None

    def test_decimals_and_big_integers_are_exact(self, client):
        res = client.query(
            "SELECT toDecimal128('1.23456789012345678901', 20) dec, toDecimal32('-3.5', 1) dec32,"
            f" toInt128('{INT128_MAX}') i128, toUInt128('{2**128 - 1}') u128,"
            f" toInt256('-{2**255}') i256, toUInt256('{UINT256_MAX}') u256,"
            f" toInt64({2**53 + 1}) i64, toUInt64('{2**64 - 1}') u64"
        )
        dec, dec32, i128, u128, i256, u256, i64, u64 = res.result_set[0]
        assert dec == Decimal("1.23456789012345678901") and isinstance(dec, Decimal)
        assert dec32 == Decimal("-3.5")
        assert (i128, u128, i256, u256) == (INT128_MAX, 2**128 - 1, -(2**255), UINT256_MAX)
        assert all(isinstance(v, int) for v in (i128, u128, i256, u256, i64, u64))
        assert (i64, u64) == (2**53 + 1, 2**64 - 1)

    def test_arrays_tuples_maps_and_nulls(self, client):
        res = client.query(
            "SELECT [1, NULL, 3]::Array(Nullable(Int32)) arr, [toDate('2020-01-02')] dates,"
            " CAST(NULL, 'Nullable(String)') null_str, CAST(NULL, 'Nullable(Decimal(10, 2))') null_dec,"
            " tuple(1, 'a') tup, CAST((1, 'x'), 'Tuple(x Int8, y String)') named,"
            " map('a', toDecimal64('1.5', 1)) m, [[toInt128(1)], []] nested"
        )
        arr, dates, null_str, null_dec, tup, named, m, nested = res.result_set[0]
        assert arr == [1, None, 3]
        assert dates == [date(2020, 1, 2)]
        assert null_str is None and null_dec is None
        assert tup == (1, "a") and named == (1, "x")
        assert m == {"a": Decimal("1.5")}
        assert nested == [[1], []]

    def test_floats_bools_uuids(self, client):
        res = client.query(
            "SELECT 1.0/0 inf, -1.0/0 ninf, 0.1::Float64 f, true b,"
            " toUUID('00000000-0000-0000-0000-000000000001') u, 'x'::LowCardinality(String) lc"
        )
        inf, ninf, f, b, u, lc = res.result_set[0]
        assert inf == float("inf") and ninf == float("-inf") and f == 0.1
        assert b is True
        assert u == uuid.UUID(int=1)
        assert lc == "x"

    def test_through_dbt_run_sql(self, project):
        # what dbt's own result tables (run_query, agate) get
        row = project.run_sql(
            "select toDate('1970-01-01') d, toDateTime('2020-01-01 00:00:00', 'UTC') t,"
            " toDecimal128('0.1', 30) x",
            fetch="one",
        )
        assert row[0] == date(1970, 1, 1)
        assert row[1].tzinfo is not None
        assert row[2] == Decimal("0.1")


@pytest.mark.parametrize(
    "type_name, value, expected",
    [
        ("Nullable(DateTime64(3, 'Europe/Berlin'))", "2021-06-01 12:00:00.5", datetime(2021, 6, 1, 12, 0, 0, 500000, tzinfo=ZoneInfo("Europe/Berlin"))),
        ("LowCardinality(Nullable(String))", None, None),
        ("Map(Int32, Array(Date))", {"1": ["2020-01-01"]}, {1: [date(2020, 1, 1)]}),
        ("SimpleAggregateFunction(sum, UInt128)", "5", 5),
        ("Tuple(a Nullable(Int256), `b c` String)", {"a": None, "b c": "x"}, (None, "x")),
    ],
)
def test_converter(type_name, value, expected):
    assert converter(type_name)(value) == expected


def test_split_args_respects_nesting_and_quotes():
    assert split_args("Int8, Tuple(a Int8, b String), DateTime('A,B')") == [
        "Int8",
        "Tuple(a Int8, b String)",
        "DateTime('A,B')",
    ]
