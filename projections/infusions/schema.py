"""DDL of the infusion read models, per table generation, and the public views over them.

Physical tables are ``<base>_g<generation>``; readers use the views (``infusion_state``,
``infusion_timeline``, ``infusion_orders``, ``patient_locations``), which a rebuild re-points
in one transaction. Quantities are ``numeric`` value + UCUM unit columns, never float.
"""

from __future__ import annotations

EPISODES = """
CREATE TABLE IF NOT EXISTS {episodes} (
    episode_id uuid PRIMARY KEY,
    facility_id text NOT NULL, pump_id text, channel text, source text NOT NULL,
    patient_id text, patient_from text, order_id text, order_link text, request_id text,
    medication_code text, medication_system text, medication_name text,
    conc_amount numeric, conc_amount_unit text, conc_volume numeric, conc_volume_unit text,
    program_mode text, library_mode text, library_version text, library_entry_id text,
    program_care_area text,
    programmed_rate numeric, programmed_rate_unit text,
    programmed_dose numeric, programmed_dose_unit text,
    programmed_vtbi numeric, dosing_weight numeric, dosing_weight_unit text,
    current_rate numeric, current_rate_unit text,
    current_dose_rate numeric, current_dose_rate_unit text,
    status text NOT NULL, paused_reason text,
    volume_infused numeric, volume_infused_unit text, vtbi_remaining numeric,
    programmed_at timestamptz, started_at timestamptz, ended_at timestamptz, end_reason text,
    boluses int NOT NULL, soft_alerts int NOT NULL, hard_alerts int NOT NULL,
    overrides int NOT NULL,
    first_event_id uuid NOT NULL, first_position bigint NOT NULL, last_position bigint NOT NULL,
    last_occurred_at timestamptz NOT NULL, last_recorded_at timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS {episodes}_patient ON {episodes} (facility_id, patient_id);
CREATE INDEX IF NOT EXISTS {episodes}_pump ON {episodes} (facility_id, pump_id, channel);
CREATE INDEX IF NOT EXISTS {episodes}_order ON {episodes} (facility_id, order_id);
CREATE INDEX IF NOT EXISTS {episodes}_active ON {episodes} (status) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS {episodes}_first ON {episodes} (first_position);
"""

TIMELINE = """
CREATE TABLE IF NOT EXISTS {timeline} (
    episode_id uuid NOT NULL, seq int NOT NULL, notification_id bigint NOT NULL,
    event_id uuid NOT NULL, type text NOT NULL,
    occurred_at timestamptz NOT NULL, received_at timestamptz, recorded_at timestamptz NOT NULL,
    data jsonb NOT NULL, state_after jsonb NOT NULL,
    PRIMARY KEY (episode_id, seq)
);
"""

ORDERS = """
CREATE TABLE IF NOT EXISTS {orders} (
    facility_id text NOT NULL, order_id text NOT NULL, patient_id text, encounter_id text,
    status text NOT NULL, verified boolean NOT NULL,
    medication_code text, medication_system text, medication_name text,
    conc_amount numeric, conc_amount_unit text, conc_volume numeric, conc_volume_unit text,
    dose numeric, dose_unit text, rate numeric, rate_unit text, titration jsonb,
    vtbi numeric, dosing_weight numeric, dosing_weight_unit text, route text,
    high_alert boolean, continuous boolean, bolus jsonb,
    placed_at timestamptz, start_at timestamptz, stop_at timestamptz, ended_at timestamptz,
    end_reason text, modifications int NOT NULL, last_position bigint NOT NULL,
    PRIMARY KEY (facility_id, order_id)
);
CREATE INDEX IF NOT EXISTS {orders}_patient ON {orders} (facility_id, patient_id);
"""

LOCATIONS = """
CREATE TABLE IF NOT EXISTS {locations} (
    facility_id text NOT NULL, patient_id text NOT NULL, unit text NOT NULL, bed text,
    care_area text, since timestamptz NOT NULL, last_position bigint NOT NULL,
    PRIMARY KEY (facility_id, patient_id)
);
"""

VIEWS = """
CREATE OR REPLACE VIEW infusion_orders AS
SELECT o.*,
       (o.status = 'active' AND (o.stop_at IS NULL OR o.stop_at > now())
        AND (o.start_at IS NULL OR o.start_at <= now())) AS active_now
FROM {orders} o;

CREATE OR REPLACE VIEW patient_locations AS SELECT * FROM {locations};

CREATE OR REPLACE VIEW infusion_timeline AS SELECT * FROM {timeline};

-- The order of an episode: the one the pump named (subject.order_id), else the one its
-- auto-program request named, else the unique order of the associated patient for the same
-- medication that was placed before the episode began and had not ended by then
-- ('association_match'); several such orders: 'ambiguous' (flagged, not guessed).
CREATE OR REPLACE VIEW infusion_state AS
SELECT e.*,
       COALESCE(e.order_id, CASE WHEN m.matches = 1 THEN m.order_id END) AS linked_order_id,
       CASE WHEN e.order_id IS NOT NULL THEN e.order_link
            WHEN m.matches = 1 THEN 'association_match'
            WHEN m.matches > 1 THEN 'ambiguous'
            ELSE 'none' END AS order_link_resolved,
       o.status AS order_status, o.verified AS order_verified, o.high_alert,
       o.medication_code AS ordered_medication_code, o.medication_name AS ordered_medication_name,
       o.dose AS ordered_dose, o.dose_unit AS ordered_dose_unit,
       o.rate AS ordered_rate, o.rate_unit AS ordered_rate_unit, o.titration AS ordered_titration,
       o.conc_amount AS ordered_conc_amount, o.conc_amount_unit AS ordered_conc_amount_unit,
       o.conc_volume AS ordered_conc_volume, o.conc_volume_unit AS ordered_conc_volume_unit,
       o.dosing_weight AS ordered_dosing_weight,
       l.unit, l.bed, l.care_area AS patient_care_area,
       (e.ended_at IS NULL) AS active
FROM {episodes} e
LEFT JOIN LATERAL (
    SELECT min(c.order_id) AS order_id, count(*) AS matches
    FROM {orders} c
    WHERE e.order_id IS NULL AND e.patient_id IS NOT NULL
      AND c.facility_id = e.facility_id AND c.patient_id = e.patient_id
      AND (c.medication_code = e.medication_code
           OR lower(c.medication_name) = lower(e.medication_name))
      AND c.placed_at <= COALESCE(e.programmed_at, e.started_at, e.last_occurred_at)
      AND (c.ended_at IS NULL OR c.ended_at > COALESCE(e.programmed_at, e.started_at,
                                                      e.last_occurred_at))
) m ON true
LEFT JOIN {orders} o
       ON o.facility_id = e.facility_id
      AND o.order_id = COALESCE(e.order_id, CASE WHEN m.matches = 1 THEN m.order_id END)
LEFT JOIN {locations} l ON l.facility_id = e.facility_id AND l.patient_id = e.patient_id;
"""


def names(generation: int) -> dict[str, str]:
    return {
        "episodes": f"infusion_episodes_g{generation}",
        "timeline": f"infusion_timeline_g{generation}",
        "orders": f"infusion_orders_g{generation}",
        "locations": f"patient_locations_g{generation}",
    }
