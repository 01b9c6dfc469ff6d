"""purgemix: purge noisy SFT data with statistics and rules, then mix what is left."""

__version__ = "0.1.0"
