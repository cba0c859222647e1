"""The one error a campaign raises for bad input."""

from __future__ import annotations


class CampaignError(ValueError):
    """Bad input for a campaign; the message names the option and says what is wrong (exit 2, nothing started)."""
