"""antivirus: is real-time anti-malware protection on, and how old are the signatures?

Windows: Microsoft Defender's own status (Get-MpComputerStatus), and other products registered with the
Security Center when Defender is passive. macOS: XProtect, which is always on; its age is that of its
bundle. Linux: Microsoft Defender for Endpoint (`mdatp health`) or ClamAV (its daemons and the age of its
daily signature database), when one is installed; `installed` is false otherwise.
"""
