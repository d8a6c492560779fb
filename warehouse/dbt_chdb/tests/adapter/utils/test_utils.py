"""dbt's cross-database macro tests (dbt.<macro> dispatched to dbt-clickhouse's implementations).

Where a base test's fixture leans on PostgreSQL typing (NULL in a non-Nullable column, a string
literal taken as a date, an empty array of unknown type), the fixture is restated in ClickHouse
terms; the macro under test and the assertion are dbt's.
"""

import pytest
from clickhouse_sql import replace_all
from dbt.tests.adapter.utils import fixture_date_spine, fixture_get_intervals_between
from dbt.tests.adapter.utils.fixture_array_append import models__array_append_actual_sql
from dbt.tests.adapter.utils.fixture_array_concat import models__array_concat_actual_sql
from dbt.tests.adapter.utils.fixture_datediff import models__test_datediff_yml
from dbt.tests.adapter.utils.fixture_replace import models__test_replace_yml
from dbt.tests.adapter.utils.fixture_split_part import models__test_split_part_yml
from dbt.tests.adapter.utils.test_any_value import BaseAnyValue
from dbt.tests.adapter.utils.test_array_append import BaseArrayAppend
from dbt.tests.adapter.utils.test_array_concat import BaseArrayConcat
from dbt.tests.adapter.utils.test_array_construct import BaseArrayConstruct
from dbt.tests.adapter.utils.test_bool_or import BaseBoolOr
from dbt.tests.adapter.utils.test_cast import BaseCast
from dbt.tests.adapter.utils.test_cast_bool_to_text import BaseCastBoolToText
from dbt.tests.adapter.utils.test_concat import BaseConcat
from dbt.tests.adapter.utils.test_current_timestamp import BaseCurrentTimestampNaive
from dbt.tests.adapter.utils.test_date import BaseDate
from dbt.tests.adapter.utils.test_date_spine import BaseDateSpine
from dbt.tests.adapter.utils.test_date_trunc import BaseDateTrunc
from dbt.tests.adapter.utils.test_dateadd import BaseDateAdd
from dbt.tests.adapter.utils.test_datediff import BaseDateDiff
from dbt.tests.adapter.utils.test_equals import BaseEquals
from dbt.tests.adapter.utils.test_escape_single_quotes import BaseEscapeSingleQuotesBackslash
from dbt.tests.adapter.utils.test_except import BaseExcept
from dbt.tests.adapter.utils.test_generate_series import BaseGenerateSeries
from dbt.tests.adapter.utils.test_get_intervals_between import BaseGetIntervalsBetween
from dbt.tests.adapter.utils.test_get_powers_of_two import BaseGetPowersOfTwo
from dbt.tests.adapter.utils.test_hash import BaseHash
from dbt.tests.adapter.utils.test_intersect import BaseIntersect
from dbt.tests.adapter.utils.test_last_day import BaseLastDay
from dbt.tests.adapter.utils.test_length import BaseLength
from dbt.tests.adapter.utils.test_listagg import BaseListagg
from dbt.tests.adapter.utils.test_null_compare import BaseMixedNullCompare, BaseNullCompare
from dbt.tests.adapter.utils.test_position import BasePosition
from dbt.tests.adapter.utils.test_replace import BaseReplace
from dbt.tests.adapter.utils.test_right import BaseRight
from dbt.tests.adapter.utils.test_safe_cast import BaseSafeCast
from dbt.tests.adapter.utils.test_source_freshness_custom_info import BaseCalculateFreshnessMethod
from dbt.tests.adapter.utils.test_split_part import BaseSplitPart
from dbt.tests.adapter.utils.test_string_literal import BaseStringLiteral
from dbt.tests.adapter.utils.test_timestamps import BaseCurrentTimestamps
from dbt.tests.adapter.utils.test_validate_sql import BaseValidateSqlMethod


class TestAnyValue(BaseAnyValue):
    pass


class TestArrayAppend(BaseArrayAppend):
    @pytest.fixture(scope="class")
    def models(self):
        expected = (
            "select 1 as id, {{ array_construct([1,2,3,-77777777]) }} as array_col union all\n"
            "select 2 as id, {{ array_construct([4]) }} as array_col"
        )
        return {"actual.sql": models__array_append_actual_sql, "expected.sql": expected}


class TestArrayConcat(BaseArrayConcat):
    @pytest.fixture(scope="class")
    def models(self):
        expected = (
            "select 1 as id, {{ array_construct([1,2,3,4,5,-77777777]) }} as array_col union all\n"
            "select 2 as id, {{ array_construct([2]) }} as array_col union all\n"
            "select 3 as id, {{ array_construct([3]) }} as array_col"
        )
        return {"actual.sql": models__array_concat_actual_sql, "expected.sql": expected}


class TestArrayConstruct(BaseArrayConstruct):
    pass


class TestBoolOr(BaseBoolOr):
    pass


class TestCast(BaseCast):
    pass


class TestCastBoolToText(BaseCastBoolToText):
    pass


class TestConcat(BaseConcat):
    pass


class TestCurrentTimestampNaive(BaseCurrentTimestampNaive):
    pass


class TestDate(BaseDate):
    pass


class TestDateSpine(BaseDateSpine):
    """Typed dates, as for PostgreSQL: ClickHouse's dateDiff takes no string literals, nor joins a
    Date to a String (``'2023-09-01'::date`` is ClickHouse SQL too)."""

    @pytest.fixture(scope="class")
    def models(self):
        sql = replace_all(
            fixture_date_spine.models__test_date_spine_sql,
            [("{% if target.type == 'postgres' %}", "{% if target.type in ('postgres', 'chdb') %}")],
        )
        return {
            "test_date_spine.yml": fixture_date_spine.models__test_date_spine_yml,
            "test_date_spine.sql": sql,
        }


class TestDateTrunc(BaseDateTrunc):
    pass


class TestDateAdd(BaseDateAdd):
    @pytest.fixture(scope="class")
    def seeds(self):
        # dbt's seed less its all-NULL row: ClickHouse seeds non-Nullable columns
        return {
            "data_dateadd.csv": "from_time,interval_length,datepart,result\n"
            "2018-01-01 01:00:00,1,day,2018-01-02 01:00:00\n"
            "2018-01-01 01:00:00,1,month,2018-02-01 01:00:00\n"
            "2018-01-01 01:00:00,1,year,2019-01-01 01:00:00\n"
            "2018-01-01 01:00:00,1,hour,2018-01-01 02:00:00\n"
        }


class TestDateDiff(BaseDateDiff):
    @pytest.fixture(scope="class")
    def seeds(self):
        rows = [
            ("2018-01-01 01:00:00", "2018-01-02 01:00:00", "day", 1),
            ("2018-01-01 01:00:00", "2018-02-01 01:00:00", "month", 1),
            ("2018-01-01 01:00:00", "2019-01-01 01:00:00", "year", 1),
            ("2018-01-01 01:00:00", "2018-01-01 02:00:00", "hour", 1),
            ("2018-01-01 01:00:00", "2018-01-01 02:01:00", "minute", 61),
            ("2018-01-01 01:00:00", "2018-01-01 02:00:01", "second", 3601),
            ("2019-12-31 00:00:00", "2019-12-27 00:00:00", "week", -1),
            ("2019-12-31 00:00:00", "2019-12-30 00:00:00", "week", 0),
            ("2019-12-31 00:00:00", "2020-01-02 00:00:00", "week", 0),
            ("2019-12-31 00:00:00", "2020-01-06 02:00:00", "week", 1),
        ]
        csv = "first_date,second_date,datepart,result\n" + "".join(
            f"{a},{b},{p},{r}\n" for a, b, p, r in rows
        )
        return {"data_datediff.csv": csv}

    @pytest.fixture(scope="class")
    def models(self):
        # dbt's model less its string-to-date casts and its sub-second parts (no such dateparts here)
        cases = "\n".join(
            f"        when datepart = '{p}' then {{{{ datediff('first_date', 'second_date', '{p}') }}}}"
            for p in ("second", "minute", "hour", "day", "week", "month", "year")
        )
        sql = (
            "with data as (select * from {{ ref('data_datediff') }})\n"
            f"select\n    case\n{cases}\n        else null\n    end as actual,\n    result as expected\nfrom data\n"
        )
        return {
            "test_datediff.yml": models__test_datediff_yml,
            "test_datediff.sql": self.interpolate_macro_namespace(sql, "datediff"),
        }


class TestEquals(BaseEquals):
    pass


class TestEscapeSingleQuotesBackslash(BaseEscapeSingleQuotesBackslash):
    pass


class TestExcept(BaseExcept):
    pass


class TestGenerateSeries(BaseGenerateSeries):
    pass


class TestGetIntervalsBetween(BaseGetIntervalsBetween):
    """Typed dates: ClickHouse's dateDiff takes no string literals, and reads no MM/DD/YYYY text."""

    @pytest.fixture(scope="class")
    def models(self):
        sql = replace_all(
            fixture_get_intervals_between.models__test_get_intervals_between_sql,
            [("\"'09/01/2023'\", \"'09/12/2023'\"", "\"toDate('2023-09-01')\", \"toDate('2023-09-12')\"")],
        )
        return {
            "test_get_intervals_between.yml": fixture_get_intervals_between.models__test_get_intervals_between_yml,
            "test_get_intervals_between.sql": sql,
        }


class TestGetPowersOfTwo(BaseGetPowersOfTwo):
    pass


class TestHash(BaseHash):
    pass


class TestIntersect(BaseIntersect):
    pass


class TestLastDay(BaseLastDay):
    @pytest.fixture(scope="class")
    def project_config_update(self):
        nullable_dates = {"date_day": "Nullable(Date)", "result": "Nullable(Date)"}
        return {"name": "test", "seeds": {"test": {"data_last_day": {"+column_types": nullable_dates}}}}


class TestLength(BaseLength):
    pass


class TestListagg(BaseListagg):
    pass


class TestMixedNullCompare(BaseMixedNullCompare):
    pass


class TestNullCompare(BaseNullCompare):
    pass


class TestPosition(BasePosition):
    pass


class TestReplace(BaseReplace):
    @pytest.fixture(scope="class")
    def models(self):
        # dbt's model passes the search and replacement strings as columns; dbt-clickhouse's
        # replace() takes them as strings it quotes itself, so each seed row gets its own
        sql = (
            "select {{ replace('string_text', 'a', 'b') }} as actual, result as expected\n"
            "from {{ ref('data_replace') }} where search_chars = 'a'\n"
            "union all\n"
            "select {{ replace('string_text', 'http://', '') }} as actual, result as expected\n"
            "from {{ ref('data_replace') }} where search_chars = 'http://'\n"
        )
        return {
            "test_replace.yml": models__test_replace_yml,
            "test_replace.sql": self.interpolate_macro_namespace(sql, "replace"),
        }


class TestRight(BaseRight):
    pass


class TestSafeCast(BaseSafeCast):
    pass


class TestCalculateFreshnessMethod(BaseCalculateFreshnessMethod):
    pass


class TestSplitPart(BaseSplitPart):
    @pytest.fixture(scope="class")
    def models(self):
        # dbt's model also splits with negative part numbers, which dbt-clickhouse does not take
        parts = "\nunion all\n".join(
            f"select {{{{ split_part('parts', \"'|'\", {n}) }}}} as actual, result_{n} as expected from data"
            for n in (1, 2, 3)
        )
        sql = "with data as (select * from {{ ref('data_split_part') }})\n" + parts + "\n"
        return {"test_split_part.yml": models__test_split_part_yml, "test_split_part.sql": sql}


class TestStringLiteral(BaseStringLiteral):
    pass


class TestCurrentTimestamps(BaseCurrentTimestamps):
    @pytest.fixture(scope="class")
    def expected_schema(self):
        return {
            "current_timestamp": "DateTime",
            "current_timestamp_in_utc_backcompat": "DateTime",
            "current_timestamp_backcompat": "DateTime",
        }

    @pytest.fixture(scope="class")
    def expected_sql(self):
        return None


class TestValidateSqlMethod(BaseValidateSqlMethod):
    pass
