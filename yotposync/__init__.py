"""Sync a Heartland Retail point of sale with a Yotpo Loyalty & Referrals program."""

__version__ = "0.1.0"
