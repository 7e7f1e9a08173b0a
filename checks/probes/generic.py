"""Left only for checks/probes/accounts.py, which is being split into probe packages elsewhere (issue 17) and
still imports `parse_key_values` from here. The nine probes that lived here are packages now
(checks/probes/<probe_id>/); delete this module when accounts.py's import is re-pointed at common.py."""

from checks.probes.common import parse_key_values

__all__ = ["parse_key_values"]
