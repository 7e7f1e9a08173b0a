"""What the collector writes for people and auditors: the audit-committee briefing and the evidence pack.

- `charts`: series and categories in, accessible SVG out (the project's one charting module).
- `areas`: the committee's questions, which checks answer each, and the red/amber/green judgement.
- `periods`: quarters of the financial year and other periods, each with the one before it.
- `briefing`: the figures of a period (from the stored history) and their HTML and PDF.
- `evidence`: the signed evidence pack; `verify` checks one offline (no database, no config).
"""
