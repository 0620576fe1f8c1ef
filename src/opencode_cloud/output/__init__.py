"""The one place that renders output: colours, host prefixes, tables, JSON."""
