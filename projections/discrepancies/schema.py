"""DDL of the discrepancy read model, per table generation, and its public views.

``discrepancy_findings_g<n>`` holds every finding (open, resolved, reviewed) with its
evidence; ``discrepancy_state_g<n>`` the engine's model (entities, deadlines, pending
reviews, the event clock) as JSON, written in the batch's transaction so a restarted
engine resumes exactly where its position says. Readers use the ``discrepancies`` view
(and ``discrepancy_counts``), which a rebuild re-points in one transaction.
"""

from __future__ import annotations

FINDINGS = """
CREATE TABLE IF NOT EXISTS {findings} (
    finding_id uuid PRIMARY KEY,
    rule_id text NOT NULL, rule_version int NOT NULL, ruleset_version text NOT NULL,
    severity text NOT NULL CHECK (severity IN ('S1', 'S2', 'S3', 'S4')),
    status text NOT NULL, condition_status text NOT NULL
        CHECK (condition_status IN ('open', 'resolved')),
    tracked boolean NOT NULL, condition_key text,
    review_outcome text, review_note text, reviewed_at timestamptz, review_event_id uuid,
    facility_id text NOT NULL, patient_id text, unit text, care_area text, order_id text,
    pump_id text, channel text, episode_id uuid, alarm_id text,
    opened_at timestamptz NOT NULL, triggered_at timestamptz NOT NULL,
    detected_at timestamptz NOT NULL, resolved_at timestamptz, resolving_event_id uuid,
    summary text NOT NULL, evidence jsonb NOT NULL, evidence_event_ids uuid[] NOT NULL,
    params jsonb NOT NULL, trigger_event_id uuid NOT NULL, last_position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {findings}_opened ON {findings} (opened_at);
CREATE INDEX IF NOT EXISTS {findings}_rule ON {findings} (rule_id, severity);
CREATE INDEX IF NOT EXISTS {findings}_unit ON {findings} (unit, opened_at);
CREATE INDEX IF NOT EXISTS {findings}_patient ON {findings} (facility_id, patient_id);
CREATE INDEX IF NOT EXISTS {findings}_live ON {findings} (condition_key)
    WHERE tracked AND condition_status = 'open';
"""

STATE = """
CREATE TABLE IF NOT EXISTS {state} (
    kind text NOT NULL, key text NOT NULL, state jsonb NOT NULL,
    PRIMARY KEY (kind, key)
);
"""

VIEWS = """
CREATE OR REPLACE VIEW discrepancies AS
SELECT finding_id, rule_id, rule_version, ruleset_version, severity, status, condition_status,
       review_outcome, review_note, reviewed_at, review_event_id, facility_id, patient_id,
       unit, care_area, order_id, pump_id, channel, episode_id, alarm_id, opened_at,
       triggered_at, detected_at, resolved_at, resolving_event_id, summary, evidence,
       evidence_event_ids, params, trigger_event_id, last_position
FROM {findings};

CREATE OR REPLACE VIEW discrepancy_counts AS
SELECT facility_id, unit, rule_id, severity, status, (opened_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS findings
FROM {findings} GROUP BY 1, 2, 3, 4, 5, 6;
"""


def names(generation: int) -> dict[str, str]:
    return {
        "findings": f"discrepancy_findings_g{generation}",
        "state": f"discrepancy_state_g{generation}",
    }
