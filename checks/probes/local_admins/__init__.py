"""local_admins: the accounts with local administrator rights (Linux sudo/wheel/admin groups and UID 0,
Windows Administrators found by its well-known SID S-1-5-32-544, since group names are localised, macOS
admin group)."""
