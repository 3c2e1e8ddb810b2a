"""One router module per resource; each declares its roles and auditing per operation."""
