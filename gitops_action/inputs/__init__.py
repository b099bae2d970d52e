"""Inputs: the action's inputs or the command line → `Settings`; the environment a run sees."""
