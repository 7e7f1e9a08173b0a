"""patch_level: pending updates (all and security), their age, the last install, reboot and index freshness.

Every package manager is read from what it already knows: no probe refreshes an index (no `apt-get
update`, `dnf makecache` or online Windows Update scan). How fresh that knowledge is, is a fact of its own,
because a stale index hides pending updates. Whatever cannot be known is null, with the reason in `notes`.
"""
