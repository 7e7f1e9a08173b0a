"""The `rampart-collector` subcommands, grouped by what they manage."""
