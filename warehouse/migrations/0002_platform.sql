-- Household status history: one row per status document version (topic fupin.household.status).
-- A redelivered document has the same (household_id, version, updated_at) and collapses; a rebuild
-- re-emits versions from 1 with a later updated_at, so both histories are kept.
CREATE TABLE IF NOT EXISTS {database}.household_status_history
(
    household_id      String,
    version           UInt64,
    region_code       String,
    status            LowCardinality(String),
    document          String,
    last_occurred_at  Nullable(DateTime64(3, 'UTC')),
    updated_at        DateTime64(3, 'UTC'),
    ingested_at       DateTime64(3, 'UTC'),
    INDEX idx_region region_code TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
ORDER BY (household_id, version, updated_at)
SETTINGS non_replicated_deduplication_window = 10000;

-- The latest status document per household (by the worker's clock, then version), before merges.
CREATE VIEW IF NOT EXISTS {database}.household_status_latest AS
SELECT * FROM {database}.household_status_history FINAL
ORDER BY household_id, updated_at DESC, version DESC
LIMIT 1 BY household_id;

-- Alerts: one row per alert message (raised, resolved); redeliveries collapse on (alert_id, state).
CREATE TABLE IF NOT EXISTS {database}.alerts
(
    alert_id            String,
    rule                LowCardinality(String),
    state               LowCardinality(String),
    household_id        String,
    region_code         String,
    event_id            String,
    occurred_at         DateTime64(3, 'UTC'),
    raised_event_id     Nullable(String),
    raised_occurred_at  Nullable(DateTime64(3, 'UTC')),
    processed_at        DateTime64(3, 'UTC'),
    detail              String,
    ingested_at         DateTime64(3, 'UTC'),
    INDEX idx_region region_code TYPE minmax GRANULARITY 1
)
ENGINE = ReplacingMergeTree
ORDER BY (household_id, alert_id, state)
SETTINGS non_replicated_deduplication_window = 10000;

-- Dead letters: identity (source_topic, source_partition, source_offset), so a message rejected by
-- several components counts once; the raw bytes' hash is in the key too because the embedded
-- broker restarts its offsets from zero, and a different message at a reused offset is another letter.
CREATE TABLE IF NOT EXISTS {database}.dead_letters
(
    source_topic      String,
    source_partition  Int32,
    source_offset     Int64,
    source            LowCardinality(String),
    reason            String,
    raw               String,
    key               Nullable(String),
    received_at       DateTime64(3, 'UTC'),
    ingested_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree
ORDER BY (source_topic, source_partition, source_offset, cityHash64(raw))
SETTINGS non_replicated_deduplication_window = 10000;

CREATE VIEW IF NOT EXISTS {database}.dead_letters_latest AS
SELECT * FROM {database}.dead_letters FINAL;

-- The sink's committed offsets, for operators: the newest row per (group, topic, partition) wins.
CREATE TABLE IF NOT EXISTS {database}.sink_progress
(
    topic       String,
    partition   UInt32,
    offset      Int64,
    updated_at  DateTime64(3, 'UTC'),
    group_id    String DEFAULT 'fupin-sink'
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (group_id, topic, partition);

-- Rebuild runs: when each started, so --check can tell documents before it from after it.
CREATE TABLE IF NOT EXISTS {database}.rebuild_runs
(
    run_id      String,
    started_at  DateTime64(3, 'UTC'),
    events      UInt64,
    topic_prefix String
)
ENGINE = MergeTree
ORDER BY started_at;
