"""Counting personal data in text: emails, phone numbers, SSN-like ids, card numbers, IP addresses.

Card numbers count only when they pass the Luhn check and IP addresses only when `ipaddress` parses them,
so version strings and arbitrary digit runs are not reported.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable

PII_TYPES = ("email", "phone", "ssn", "card_number", "ipv4", "ipv6")

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_SSN = re.compile(r"\b(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}\b")
_CARD = re.compile(r"\b\d(?:[ -]?\d){12,18}\b")
_PHONE = re.compile(r"(?<![\w.-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]\d{3}[ .-]\d{4}(?![\w-])")
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?![\d.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


def luhn_valid(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_ip(candidate: str, version: int) -> bool:
    try:
        return ipaddress.ip_address(candidate).version == version
    except ValueError:
        return False


def detect(text: str) -> Counter[str]:
    """Occurrences of each PII type in one text."""
    counts: Counter[str] = Counter()
    counts["email"] = len(_EMAIL.findall(text))
    ssns = _SSN.findall(text)
    counts["ssn"] = len(ssns)
    cards = [m for m in _CARD.findall(text) if luhn_valid(re.sub(r"\D", "", m))]
    counts["card_number"] = len(cards)
    counts["phone"] = sum(1 for m in _PHONE.findall(text) if m not in ssns)
    counts["ipv4"] = sum(1 for m in _IPV4.findall(text) if _is_ip(m, 4))
    counts["ipv6"] = sum(1 for m in _IPV6.findall(text) if _is_ip(m, 6))
    return counts


def count_pii(texts: Iterable[str]) -> dict[str, int]:
    """Total occurrences of every PII type (zero included) over many texts."""
    total: Counter[str] = Counter()
    for text in texts:
        total.update(detect(text))
    return {name: total[name] for name in PII_TYPES}
