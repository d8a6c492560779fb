-- Reference data (docs/architecture.md, "Reference data"); replaced whole by load_reference_job.
CREATE TABLE IF NOT EXISTS {database}.reference_regions
(
    region_code     String,
    name            String,
    level           LowCardinality(String),
    parent_code     Nullable(String),
    is_poor_county  UInt8,
    zone            LowCardinality(String)
)
ENGINE = MergeTree
ORDER BY region_code;

CREATE TABLE IF NOT EXISTS {database}.reference_population
(
    region_code              String,
    year                     UInt16,
    agricultural_population  UInt32,
    rural_households         UInt32
)
ENGINE = MergeTree
ORDER BY (region_code, year);

CREATE TABLE IF NOT EXISTS {database}.reference_lines
(
    province_code           String,
    year                    UInt16,
    poverty_line            Float64,
    poverty_line_source     String,
    monitoring_line         Nullable(Float64),
    monitoring_line_source  Nullable(String)
)
ENGINE = MergeTree
ORDER BY (province_code, year);
