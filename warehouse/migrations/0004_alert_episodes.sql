-- Alerts become episodes (domain.md, "Alert episodes"): one row per episode, its latest revision
-- winning, instead of one row per raised/resolved message. Every statement is safe to repeat:
-- 1. the old message rows are kept once, as alert_messages_v1 (IF NOT EXISTS: a repeat keeps the
--    first copy, so it never copies the new table);
-- 2. alerts is replaced by the episode table (OR REPLACE: a repeat starts it empty again; nothing
--    writes to it before the migration is recorded);
-- 3. the old messages are converted: an episode per alert_id, its start the raise, its end the
--    resolve if any, revision the latest processed_at in µs (the worker's revisions are wall-clock
--    µs or more, so anything the rebuilt fold says wins); the recording times of the old starts
--    and ends are unknown: the time the worker decided them stands in. A repeat inserts equal rows, which
--    collapse. Those episodes came from the order-dependent fold: `fupin rebuild` refolds them and
--    retracts any the fold of the event store does not produce.
CREATE TABLE IF NOT EXISTS {database}.alert_messages_v1
ENGINE = ReplacingMergeTree
ORDER BY (household_id, alert_id, state)
AS SELECT * FROM {database}.alerts;

CREATE OR REPLACE TABLE {database}.alerts
(
    alert_id            String,
    rule                LowCardinality(String),
    state               LowCardinality(String),
    household_id        String,
    region_code         String,
    start_event_id      String,
    start_occurred_at   DateTime64(3, 'UTC'),
    start_recorded_at   DateTime64(3, 'UTC'),
    end_event_id        Nullable(String),
    end_occurred_at     Nullable(DateTime64(3, 'UTC')),
    end_recorded_at     Nullable(DateTime64(3, 'UTC')),
    revision            UInt64,
    processed_at        DateTime64(3, 'UTC'),
    detail              String,
    ingested_at         DateTime64(3, 'UTC'),
    INDEX idx_region region_code TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree(revision)
ORDER BY (household_id, alert_id)
SETTINGS non_replicated_deduplication_window = 10000;

INSERT INTO {database}.alerts
SELECT
    alert_id,
    m_rule,
    if(m_resolves > 0, 'resolved', 'raised'),
    household_id,
    m_region,
    if(m_raises > 0, m_raise_event, m_raise_ref),
    if(m_raises > 0, m_raise_at, m_raise_ref_at),
    m_first_processed,
    if(m_resolves > 0, m_resolve_event, NULL),
    if(m_resolves > 0, m_resolve_at, NULL),
    if(m_resolves > 0, m_resolve_processed, NULL),
    toUInt64(toUnixTimestamp64Micro(m_processed)),
    m_processed,
    if(m_raises > 0, m_detail, '{}'),
    m_ingested
FROM
(
    SELECT
        household_id,
        alert_id,
        any(rule) AS m_rule,
        countIf(state = 'raised') AS m_raises,
        countIf(state = 'resolved') AS m_resolves,
        any(region_code) AS m_region,
        anyIf(event_id, state = 'raised') AS m_raise_event,
        anyIf(occurred_at, state = 'raised') AS m_raise_at,
        assumeNotNull(anyIf(raised_event_id, state = 'resolved')) AS m_raise_ref,
        assumeNotNull(anyIf(raised_occurred_at, state = 'resolved')) AS m_raise_ref_at,
        anyIf(event_id, state = 'resolved') AS m_resolve_event,
        anyIf(occurred_at, state = 'resolved') AS m_resolve_at,
        anyIf(detail, state = 'raised') AS m_detail,
        max(processed_at) AS m_processed,
        min(processed_at) AS m_first_processed,
        minIf(processed_at, state = 'resolved') AS m_resolve_processed,
        max(ingested_at) AS m_ingested,
        countIf(raised_event_id IS NOT NULL) AS m_refs
    FROM {database}.alert_messages_v1 FINAL
    GROUP BY household_id, alert_id
)
WHERE m_raises > 0 OR m_refs > 0;
