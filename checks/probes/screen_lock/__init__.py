"""screen_lock: the machine-wide idle screen lock (Windows machine inactivity limit, macOS screen lock
after the screen saver, GNOME's settings on Linux where GNOME is installed)."""
