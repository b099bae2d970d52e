"""The plan: the event's changes crossed with configuration, merged with what each target's tag holds."""
