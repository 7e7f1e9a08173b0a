"""Microsoft Defender for Cloud plans of each Azure subscription."""
