"""command: runs a command (an argument list, never a shell) and reports its exit code and output."""
