"""disk_encryption: encryption per volume, the system volume, fixed data volumes and (Linux) swap.

A volume is compliant only when it is fully encrypted *and* the protection is in force: BitLocker with
protection suspended, or still encrypting, is not compliant; neither is FileVault "encryption in progress".
On Linux a mounted filesystem is encrypted when every path from it down to the disks passes through a
dm-crypt device, so LVM on LUKS counts and an LVM volume group spanning one plain disk does not.
"""
