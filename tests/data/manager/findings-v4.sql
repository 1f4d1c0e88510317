-- A findings store of format 4 (before host analysis checkpoints): the tables as that format
-- made them ({serial}: the engine's auto-increment key), with the data of findings-v3.sql and
-- a response action with its audit trail.
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    id TEXT PRIMARY KEY, role TEXT NOT NULL, salt TEXT NOT NULL, digest TEXT NOT NULL,
    created_ns BIGINT NOT NULL, expires_ns BIGINT NOT NULL, used_ns BIGINT NOT NULL,
    label TEXT NOT NULL, last_used_ns BIGINT NOT NULL DEFAULT 0,
    revoked_ns BIGINT NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS agents (
    id TEXT PRIMARY KEY, host_id TEXT NOT NULL, hostname TEXT NOT NULL,
    enrolled_ns BIGINT NOT NULL, acked_sequence BIGINT NOT NULL, last_seen_ns BIGINT NOT NULL,
    status_json TEXT NOT NULL, status_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS agents_by_host ON agents (host_id);
CREATE TABLE IF NOT EXISTS batches (
    agent_id TEXT NOT NULL, sequence BIGINT NOT NULL, received_ns BIGINT NOT NULL,
    events BIGINT NOT NULL, rejected BIGINT NOT NULL, PRIMARY KEY (agent_id, sequence)
);
CREATE TABLE IF NOT EXISTS events (
    key {serial}, host TEXT NOT NULL, ts BIGINT NOT NULL, event_id TEXT NOT NULL,
    action TEXT NOT NULL, process TEXT NOT NULL, executable TEXT NOT NULL,
    command_line TEXT NOT NULL, file_path TEXT NOT NULL, remote TEXT NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_by_host_ts ON events (host, ts);
CREATE INDEX IF NOT EXISTS events_by_process ON events (process);
CREATE TABLE IF NOT EXISTS alerts (
    host TEXT NOT NULL, id TEXT NOT NULL, rule_id TEXT NOT NULL, title TEXT NOT NULL,
    level TEXT NOT NULL, detector TEXT NOT NULL, first_ts BIGINT NOT NULL,
    last_ts BIGINT NOT NULL, score DOUBLE PRECISION NOT NULL, json TEXT NOT NULL,
    PRIMARY KEY (host, id)
);
CREATE INDEX IF NOT EXISTS alerts_by_ts ON alerts (first_ts);
CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, engine_id TEXT NOT NULL, severity TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, title TEXT NOT NULL,
    first_ts BIGINT NOT NULL, last_ts BIGINT NOT NULL, updated_ts BIGINT NOT NULL,
    version BIGINT NOT NULL, json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_by_ts ON incidents (first_ts);
CREATE TABLE IF NOT EXISTS incident_notes (
    key {serial}, incident_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS incident_changes (
    key {serial}, incident_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    old TEXT NOT NULL, new TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS exceptions (
    id TEXT PRIMARY KEY, signature TEXT NOT NULL, state TEXT NOT NULL, scope TEXT NOT NULL,
    host TEXT NOT NULL, conditions TEXT NOT NULL, reason TEXT NOT NULL, source TEXT NOT NULL,
    created_ns BIGINT NOT NULL, created_by TEXT NOT NULL, updated_ns BIGINT NOT NULL,
    hits BIGINT NOT NULL, last_hit_ns BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS exceptions_by_signature ON exceptions (signature);
CREATE TABLE IF NOT EXISTS exception_audit (
    key {serial}, exception_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    action TEXT NOT NULL, reason TEXT NOT NULL, state TEXT NOT NULL, snapshot TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS exception_audit_by_exception ON exception_audit (exception_id);
CREATE TABLE IF NOT EXISTS actions (
    id TEXT PRIMARY KEY, host TEXT NOT NULL, incident_id TEXT NOT NULL, kind TEXT NOT NULL,
    request_json TEXT NOT NULL, state TEXT NOT NULL, needs_approval BIGINT NOT NULL,
    proposed_by TEXT NOT NULL, approved_by TEXT NOT NULL, created_ns BIGINT NOT NULL,
    updated_ns BIGINT NOT NULL, command TEXT NOT NULL, expires_ns BIGINT NOT NULL,
    deliveries BIGINT NOT NULL, result_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS actions_by_host_state ON actions (host, state);
CREATE INDEX IF NOT EXISTS actions_by_incident ON actions (incident_id);
CREATE TABLE IF NOT EXISTS action_audit (
    key {serial}, action_id TEXT NOT NULL, ts_ns BIGINT NOT NULL, author TEXT NOT NULL,
    step TEXT NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL, outcome TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS action_audit_by_action ON action_audit (action_id);
INSERT INTO meta (key, value) VALUES ('format_version', '4');
INSERT INTO tokens (id, role, salt, digest, created_ns, expires_ns, used_ns, label) VALUES ('0123456789abcdef', 'admin', '00112233445566778899aabbccddeeff', 'aa8e0d2a3d3f0f1b5c2e8a9e1d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29180706', 1795880200000000000, 0, 0, 'first admin');
INSERT INTO agents (id, host_id, hostname, enrolled_ns, acked_sequence, last_seen_ns, status_json, status_ns) VALUES ('fedcba9876543210', '3d1219c7c4c5404aaa1f6d2a48adfda4', 'lab-vm', 1795880210000000000, 2142, 1795880270000000000, '', 0);
INSERT INTO batches (agent_id, sequence, received_ns, events, rejected) VALUES ('fedcba9876543210', 2142, 1795880270000000000, 2142, 0);
INSERT INTO incidents (id, host, engine_id, severity, score, status, title, first_ts, last_ts, updated_ts, version, json) VALUES ('inc-c1-5f0c9a1e', '3d1219c7c4c5404aaa1f6d2a48adfda4', 'inc-c1', 'critical', 9.5, 'acknowledged', 'Base64-decoded data piped into a shell or interpreter (+12 signals) from sh', 1795880252478283956, 1795880258586983222, 1795880258586983222, 3, '{}');
INSERT INTO incident_notes (incident_id, ts_ns, author, text) VALUES ('inc-c1-5f0c9a1e', 1795880300000000000, '0123456789abcdef', 'sh from the web app');
INSERT INTO incident_changes (incident_id, ts_ns, author, old, new) VALUES ('inc-c1-5f0c9a1e', 1795880290000000000, '0123456789abcdef', 'new', 'acknowledged');
INSERT INTO exceptions (id, signature, state, scope, host, conditions, reason, source, created_ns, created_by, updated_ns, hits, last_hit_ns) VALUES ('exc-1', 'eb2453b89be505a7d902188764fa0f97', 'active', 'host', '3d1219c7c4c5404aaa1f6d2a48adfda4', '{"endpoints": [], "executables": ["/usr/bin/dpkg"], "lineage": [], "paths": [], "rules": ["proc_creation_susp_dpkg"], "users": []}', 'package upgrades', 'incident:inc-c1-5f0c9a1e', 1795880310000000000, '0123456789abcdef', 1795880320000000000, 4, 1795880330000000000);
INSERT INTO exception_audit (exception_id, ts_ns, author, action, reason, state, snapshot) VALUES ('exc-1', 1795880310000000000, '0123456789abcdef', 'proposed', 'package upgrades', 'proposed', '{}');
INSERT INTO exception_audit (exception_id, ts_ns, author, action, reason, state, snapshot) VALUES ('exc-1', 1795880320000000000, '0123456789abcdef', 'confirmed', 'package upgrades', 'active', '{}');
INSERT INTO actions (id, host, incident_id, kind, request_json, state, needs_approval, proposed_by, approved_by, created_ns, updated_ns, command, expires_ns, deliveries, result_json) VALUES ('act-1', '3d1219c7c4c5404aaa1f6d2a48adfda4', 'inc-c1-5f0c9a1e', 'kill', '{}', 'proposed', 1, '0123456789abcdef', '', 1795880340000000000, 1795880340000000000, 'run', 0, 0, '');
INSERT INTO action_audit (action_id, ts_ns, author, step, state, reason, outcome, message) VALUES ('act-1', 1795880340000000000, '0123456789abcdef', 'proposed', 'proposed', 'contain', '', '');
