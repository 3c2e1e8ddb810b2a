-- The application role must be able to append on its own (processes running as ledger_app
-- with LEDGER_MIGRATE_ON_START=false): the recorder reserves a block of notification ids
-- with setval() under the append lock, and setval() needs UPDATE on the sequence.
-- UPDATE on a sequence permits nextval/setval only; it grants nothing on ledger_events,
-- whose rows stay INSERT-only for this role (0002), and a sequence cannot renumber rows
-- that exist: notification_id is unique, so a rewound sequence would make appends fail,
-- never overwrite.
GRANT UPDATE ON SEQUENCE ledger_events_notification_id_seq TO ledger_app;
