"""The ``charset`` scorer: shares of special characters, digits, upper-case letters and letters.

Separate from ``length`` although both read ``Batch.charclass``: these are ratios with directions
of their own, and a rule author looks them up by scorer.
"""

from __future__ import annotations

from .base import ALL, Batch, Feature, safe_ratio, scorer


@scorer("charset", "1", ALL, {
    "special_ratio": Feature("characters that are neither alphanumeric nor whitespace / characters", "high"),
    "digit_ratio": Feature("digits / characters", "high"),
    "upper_ratio": Feature("upper-case letters / letters", "high"),
    "alpha_ratio": Feature("letters / non-whitespace characters", "low"),
})
def _charset(b: Batch, role: str):
    cc = b.charclass(role)
    nonspace = cc["chars"] - cc["space"]
    return {
        "special_ratio": safe_ratio(cc["chars"] - cc["alnum"] - cc["space"], cc["chars"]),
        "digit_ratio": safe_ratio(cc["digit"], cc["chars"]),
        "upper_ratio": safe_ratio(cc["upper"], cc["alpha"]),
        "alpha_ratio": safe_ratio(cc["alpha"], nonspace),
    }
