"""The event and the changes: the event payload → `CommitRange`; git, read-only."""
