"""DDL of the documentation read model, per table generation, and its public views.

Per generation (``<base>_g<n>``): ``documentation_entries`` (the chart-ready entries:
device part from the folds, documentation part recomputed from the linked actions),
``documentation_actions`` (documentation events), ``documentation_links`` (which action
documents which entry) and ``documentation_episodes`` (counters for reconciliation).
The outbox and the delivery acknowledgements are *not* per generation (migration 0030):
a rebuild must never enqueue twice what was already enqueued or sent.

Public views: ``documentation_entries`` (the patient resolved through the episode, for the
discrepancy rules R03/R20/R21), ``documentation_actions``, ``documentation_links``,
``documentation_episodes`` and
``documentation_reconciliation`` (per episode: events received → entries produced →
validated → enqueued → acknowledged; calculated vs device vs charted volume for R19).
"""

from __future__ import annotations

ENTRIES = """
CREATE TABLE IF NOT EXISTS {entries} (
    entry_id uuid PRIMARY KEY,
    episode_id uuid, parent_entry_id uuid,
    kind text NOT NULL, origin text NOT NULL CHECK (origin IN ('device', 'manual')),
    facility_id text NOT NULL, pump_id text, channel text, infusate_source text,
    order_id text, patient_id text, medication jsonb, concentration jsonb,
    device_time timestamptz NOT NULL, period_start timestamptz, period_end timestamptz,
    received_at timestamptz, ledger_time timestamptz NOT NULL,
    administration_status text NOT NULL, reason text,
    facts jsonb NOT NULL, detail jsonb NOT NULL,
    rate numeric, rate_unit text, dose_rate numeric, dose_rate_unit text,
    volume numeric, volume_unit text,
    source_event_ids uuid[] NOT NULL, cite_ids uuid[] NOT NULL,
    first_position bigint NOT NULL, last_position bigint NOT NULL,
    -- documentation part: recomputed (in the same transaction) whenever the entry or an
    -- action linked to it changes. No NOT NULL here: writers stage device rows in a
    -- temporary table LIKE this one, and those rows carry no documentation part.
    doc_status text DEFAULT 'proposed'
        CHECK (doc_status IN ('proposed', 'validated', 'edited', 'retracted')),
    fhir_status text,
    charted jsonb DEFAULT '{{}}',
    charted_rate numeric, charted_dose_rate numeric, charted_volume numeric,
    documentation jsonb DEFAULT '[]',
    validated_at timestamptz, validated_by text,
    revision bigint DEFAULT 0
);
CREATE INDEX IF NOT EXISTS {entries}_episode ON {entries} (episode_id);
CREATE INDEX IF NOT EXISTS {entries}_order ON {entries} (facility_id, order_id, device_time);
CREATE INDEX IF NOT EXISTS {entries}_cite ON {entries} USING gin (cite_ids);
CREATE INDEX IF NOT EXISTS {entries}_open ON {entries} (device_time)
    WHERE doc_status = 'proposed';
"""

ACTIONS = """
CREATE TABLE IF NOT EXISTS {actions} (
    event_id uuid PRIMARY KEY, action text NOT NULL,
    facility_id text NOT NULL, order_id text, patient_id text, encounter_id text,
    pump_id text, channel text, observed_at timestamptz,
    cited uuid[] NOT NULL, refers_to uuid,
    field text, device_value numeric, device_unit text, charted_value numeric,
    charted_unit text, charted jsonb NOT NULL, reason text,
    has_rate boolean NOT NULL, has_dose_rate boolean NOT NULL, has_volume boolean NOT NULL,
    actor_id text, actor_role text,
    occurred_at timestamptz NOT NULL, recorded_at timestamptz NOT NULL,
    position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {actions}_cited ON {actions} USING gin (cited);
CREATE INDEX IF NOT EXISTS {actions}_refers ON {actions} (refers_to);
CREATE INDEX IF NOT EXISTS {actions}_observed ON {actions} (facility_id, order_id, observed_at);
"""

LINKS = """
CREATE TABLE IF NOT EXISTS {links} (
    entry_id uuid NOT NULL, action_id uuid NOT NULL, position bigint NOT NULL,
    PRIMARY KEY (entry_id, action_id)
);
CREATE INDEX IF NOT EXISTS {links}_action ON {links} (action_id);
"""

EPISODES = """
CREATE TABLE IF NOT EXISTS {episodes} (
    episode_id uuid PRIMARY KEY, facility_id text NOT NULL, pump_id text, channel text,
    infusate_source text, order_id text, patient_id text, patient_position bigint NOT NULL,
    medication_name text, status text NOT NULL, started_at timestamptz,
    ended_at timestamptz, end_reason text,
    events_received int NOT NULL, telemetry_received int NOT NULL,
    entries_produced int NOT NULL, has_start boolean NOT NULL,
    volume_calculated numeric, device_volume numeric, device_volume_at timestamptz,
    calculated_at_device numeric,
    first_position bigint NOT NULL, last_position bigint NOT NULL
);
CREATE INDEX IF NOT EXISTS {episodes}_patient ON {episodes} (facility_id, patient_id);
"""

#: Columns of the entries view, in order; ``patient_id`` resolves through the episode (a
#: late pump association names the patient of entries recorded before it).
ENTRY_COLUMNS = (
    "entry_id", "episode_id", "parent_entry_id", "kind", "origin", "facility_id", "pump_id",
    "channel", "infusate_source", "order_id", "patient_id", "medication", "concentration",
    "device_time", "period_start", "period_end", "received_at", "ledger_time",
    "administration_status", "reason", "facts", "detail", "rate", "rate_unit", "dose_rate",
    "dose_rate_unit", "volume", "volume_unit", "source_event_ids", "cite_ids",
    "first_position", "last_position", "doc_status", "fhir_status", "charted",
    "charted_rate", "charted_dose_rate", "charted_volume", "documentation", "validated_at",
    "validated_by", "revision",
)

VIEWS = """
CREATE OR REPLACE VIEW documentation_entries AS
SELECT {entry_columns}
FROM {entries} e LEFT JOIN {episodes} ep ON ep.episode_id = e.episode_id;

CREATE OR REPLACE VIEW documentation_actions AS SELECT * FROM {actions};

CREATE OR REPLACE VIEW documentation_links AS SELECT * FROM {links};

CREATE OR REPLACE VIEW documentation_episodes AS SELECT * FROM {episodes};

CREATE OR REPLACE VIEW documentation_reconciliation AS
SELECT ep.episode_id, ep.facility_id, ep.pump_id, ep.channel, ep.infusate_source,
       ep.patient_id, ep.order_id, ep.medication_name, ep.status, ep.started_at,
       ep.ended_at, ep.has_start,
       ep.events_received, ep.telemetry_received, ep.entries_produced,
       COALESCE(c.entries, 0) AS entries, COALESCE(c.proposed, 0) AS proposed,
       COALESCE(c.validated, 0) AS validated, COALESCE(c.edited, 0) AS edited,
       COALESCE(c.retracted, 0) AS retracted,
       COALESCE(d.enqueued, 0) AS enqueued, COALESCE(d.acknowledged, 0) AS acknowledged,
       COALESCE(d.rejected, 0) AS rejected,
       ep.volume_calculated, c.volume_entries_total, c.volume_charted,
       ep.device_volume, ep.device_volume_at, ep.calculated_at_device, ep.last_position
FROM {episodes} ep
LEFT JOIN LATERAL (
    SELECT count(*) AS entries,
           count(*) FILTER (WHERE e.doc_status = 'proposed') AS proposed,
           count(*) FILTER (WHERE e.doc_status = 'validated') AS validated,
           count(*) FILTER (WHERE e.doc_status = 'edited') AS edited,
           count(*) FILTER (WHERE e.doc_status = 'retracted') AS retracted,
           sum(e.volume) FILTER (WHERE e.kind = 'volume') AS volume_entries_total,
           sum(e.charted_volume) FILTER (WHERE e.kind = 'volume') AS volume_charted
    FROM {entries} e WHERE e.episode_id = ep.episode_id
) c ON true
LEFT JOIN LATERAL (
    SELECT count(*) AS enqueued,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM documentation_deliveries a
               WHERE a.seq = o.seq AND a.outcome = 'acknowledged')) AS acknowledged,
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM documentation_deliveries a
               WHERE a.seq = o.seq AND a.outcome = 'rejected')) AS rejected
    FROM (SELECT DISTINCT ON (x.entry_id) x.seq FROM documentation_outbox x
          WHERE x.episode_id = ep.episode_id ORDER BY x.entry_id, x.seq DESC) o
) d ON true;
"""


def names(generation: int) -> dict[str, str]:
    return {
        "entries": f"documentation_entries_g{generation}",
        "actions": f"documentation_actions_g{generation}",
        "links": f"documentation_links_g{generation}",
        "episodes": f"documentation_episodes_g{generation}",
    }


def ddl(generation: int) -> list[str]:
    table_names = names(generation)
    return [template.format(**table_names) for template in (ENTRIES, ACTIONS, LINKS, EPISODES)]


def views(generation: int) -> str:
    columns = ", ".join(
        "COALESCE(ep.patient_id, e.patient_id) AS patient_id" if c == "patient_id" else f"e.{c}"
        for c in ENTRY_COLUMNS
    )
    return VIEWS.format(entry_columns=columns, **names(generation))
