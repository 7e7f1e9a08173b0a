"""os: the operating system (family, distribution, version, kernel, architecture, host name)."""
