"""firewall on Linux: the kernel's ruleset through nft (or iptables-save), and what manages it."""

from __future__ import annotations

from checks.probes.common import raise_for_failure, read_optional
from checks.probes.firewall.parse import firewall_facts, linux_facts, parse_iptables_save, parse_nft_ruleset
from checks.probes.host import AccessDenied, Host, ProbeError
from checks.probes.registry import Facts, Params


def _ipv6_enabled(host: Host) -> bool:
    disabled = (read_optional(host, "/proc/sys/net/ipv6/conf/all/disable_ipv6") or "").strip()
    return host.stat("/proc/net/if_inet6") is not None and disabled != "1"


def _linux_manager(host: Host) -> str | None:
    for process in host.processes():
        cmdline = process.get("cmdline")
        words = [str(w) for w in cmdline] if isinstance(cmdline, list) else []
        if process.get("name") == "firewalld" or any(w.endswith("/firewalld") for w in words[:2]):
            return "firewalld"
    ufw_conf = read_optional(host, "/etc/ufw/ufw.conf") if host.stat("/etc/ufw/ufw.conf") else None
    if ufw_conf and any(line.strip().upper() == "ENABLED=YES" for line in ufw_conf.splitlines()):
        return "ufw"
    return None


def collect_firewall_linux(host: Host, params: Params) -> Facts:
    notes: list[str] = []
    manager = _linux_manager(host)
    ipv6 = _ipv6_enabled(host)
    if host.which("nft"):
        result = host.run(["nft", "-j", "list", "ruleset"], timeout=30)
        raise_for_failure(result, "reading the nftables ruleset (nft list ruleset)")
        blocked = parse_nft_ruleset(result.stdout)
        legacy = read_optional(host, "/proc/net/ip_tables_names") if host.stat("/proc/net/ip_tables_names") else ""
        if legacy and legacy.strip() and host.which("iptables-legacy-save"):
            saved = host.run(["iptables-legacy-save"], timeout=30)
            raise_for_failure(saved, "iptables-legacy-save")
            blocked["ipv4"] = blocked["ipv4"] or parse_iptables_save(saved.stdout)
            notes.append("legacy iptables tables are loaded beside nftables; both were read")
        notes.append("read from the kernel with `nft -j list ruleset`")
        return linux_facts(blocked, ipv6, "nftables", manager, notes)
    if host.which("iptables-save"):
        v4 = host.run(["iptables-save"], timeout=30)
        raise_for_failure(v4, "iptables-save")
        blocked = {"ipv4": parse_iptables_save(v4.stdout), "ipv6": False}
        if host.which("ip6tables-save"):
            v6 = host.run(["ip6tables-save"], timeout=30)
            raise_for_failure(v6, "ip6tables-save")
            blocked["ipv6"] = parse_iptables_save(v6.stdout)
        notes.append("read from the kernel with iptables-save")
        return linux_facts(blocked, ipv6, "iptables", manager, notes)
    # No userland tool can load or show a packet filter. Legacy tables would still be listed by the kernel.
    try:
        legacy = read_optional(host, "/proc/net/ip_tables_names")
    except AccessDenied:
        legacy = None
        notes.append("/proc/net/ip_tables_names is unreadable without root")
    if legacy and legacy.strip():
        raise ProbeError("legacy iptables tables are loaded but iptables-save is not installed to read them")
    notes.append("no firewall is installed: neither nft nor iptables exists on this host")
    return firewall_facts(False, False, "none", manager, [], notes)
