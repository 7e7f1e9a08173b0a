"""sshd: the SSH server's effective settings, from `sshd -T` (defaults, includes and overrides applied).

Reading the file would miss Include directives, drop-ins and compiled-in defaults; `sshd -T` prints what the
daemon would actually use. It must read the host keys, so it needs root: unprivileged, the result is an
error saying so, never a guess from the file.
"""
