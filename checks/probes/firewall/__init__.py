"""firewall: the host firewall state in force, not the configured intent.

Linux: the kernel's ruleset (nftables, or iptables), whatever manages it (ufw, firewalld). Inbound is
blocked by default for an address family when an input-hook base chain drops by policy or ends in an
unconditional drop/reject. Windows: each profile from the ActiveStore (the merged, effective policy, not
one GPO) and the firewall service. macOS: the application firewall's global state.
"""
