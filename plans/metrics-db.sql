-- Tables for plans/metrics-db.toml: 100 tenants, 2,000 metric series, and the events table the
-- load inserts into (indexed for the dashboard queries). Safe to run again.
CREATE TABLE IF NOT EXISTS tenants (id int PRIMARY KEY, name text NOT NULL);
CREATE TABLE IF NOT EXISTS metric_series (id int PRIMARY KEY, tenant_id int NOT NULL REFERENCES tenants, name text NOT NULL);
CREATE TABLE IF NOT EXISTS metric_events (
    id bigserial PRIMARY KEY,
    series_id int NOT NULL,
    tenant_id int NOT NULL,
    ts timestamptz NOT NULL,
    value double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS metric_events_series_ts ON metric_events (series_id, ts DESC);
CREATE INDEX IF NOT EXISTS metric_events_tenant_ts ON metric_events (tenant_id, ts DESC);
CREATE TABLE IF NOT EXISTS alert_states (id bigserial PRIMARY KEY, tenant_id int NOT NULL, value double precision, at timestamptz NOT NULL);
INSERT INTO tenants SELECT i, 'tenant ' || i FROM generate_series(1, 100) i ON CONFLICT DO NOTHING;
INSERT INTO metric_series SELECT i, 1 + (i - 1) % 100, 'series ' || i FROM generate_series(1, 2000) i ON CONFLICT DO NOTHING;
ANALYZE;
