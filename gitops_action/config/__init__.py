"""The configuration: YAML with lines, its JSON Schema, `match`/`watch` patterns → `Target`s."""
