"""time_sync: whether the clock is kept right by network time, from systemd's `timedatectl show`.

Logs, signed reports and the evidence pack are only as good as their timestamps, and Kerberos refuses
clocks more than five minutes apart (CIS Controls v8 safeguard 8.4: standardise time synchronisation).
This probe is the worked example of docs/architecture.md: one folder, its fixtures, its tests.
"""
