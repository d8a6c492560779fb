-- The one validity judgement (fupin.validity): what the event store needs for it.

-- Every event id the store holds, as a 128-bit hash in an in-memory set (persisted with the table):
-- the sink's fast path sends a message whose id is known, or repeats within its batch, to the
-- Python path, which compares contents (a duplicate changes nothing; other content is a
-- conflicting duplicate, a dead letter). A lookup costs well under a microsecond; a set scanned
-- from `events` would cost a scan of the store per batch.
CREATE TABLE IF NOT EXISTS {database}.event_ids (id FixedString(16)) ENGINE = Set;

CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.event_ids_mv TO {database}.event_ids AS
SELECT sipHash128(event_id) AS id FROM {database}.events;

-- Events stored before this migration (a set ignores ids it holds already).
INSERT INTO {database}.event_ids SELECT sipHash128(event_id) AS id FROM {database}.events;

-- A dead letter says whether raw-identifier spans were redacted from its bytes (events.md).
ALTER TABLE {database}.dead_letters ADD COLUMN IF NOT EXISTS redacted UInt8 DEFAULT 0;
