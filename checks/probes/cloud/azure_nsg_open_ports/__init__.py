"""Azure network security groups: which management ports (RDP, SSH) the internet can reach."""
