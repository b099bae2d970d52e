"""Rendering: timoni over `runner`, what a render may read, its errors mapped back, manifest diffs."""
