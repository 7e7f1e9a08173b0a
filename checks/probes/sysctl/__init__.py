"""sysctl: a kernel parameter (Linux /proc/sys, macOS sysctl)."""
