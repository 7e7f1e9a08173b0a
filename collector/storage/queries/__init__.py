"""The compliance views, one module each: summary, hosts (the list), host (one), checks (one check's
subjects), trends; each now or as at a date (the end of that day, UTC).

Every view reads its statuses from `statuses` (the one source for "now" and "as at": counters, or
snapshots plus daily changes; latest rows, or the history intervals open then), and shares the filters,
date bounds and scoring of `common`. Compliance is passed / (passed + failed); errors, not applicable and
waived are counted beside it, never dropped; the weighted ratio uses the check's weight or its severity's.
"""
