"""password_policy: the local password policy (minimum length, maximum age, lockout threshold), from
login.defs, pwquality, faillock and the PAM stacks on Linux, and from the WinNT provider on Windows (not
`net accounts`, whose output is localised)."""
