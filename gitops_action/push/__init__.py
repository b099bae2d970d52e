"""Pushing: per target, read → render → compare → push → settle, in parallel; `TargetResult`."""
