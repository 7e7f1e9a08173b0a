"""The web dashboard: server-rendered pages (Jinja2, GOV.UK Design System) served by the collector at `/`."""
