"""Reporting: outputs, summary, annotations, progress, the PR comment; the end of a run."""
