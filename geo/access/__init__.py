"""Who may do what: principals and roles, users and tokens, the SQL scope predicate, the audit log."""
