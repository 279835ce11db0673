"""The shared core every layer may import: settings, the warehouse connection, the data contract,
as-of rules, run records and config-file loading. It imports no other package of the project."""
