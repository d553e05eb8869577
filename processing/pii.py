"""Personal data in the dataset, found with presidio-analyzer's pattern recognizers and no statistical model.

Every numeric type is validated, not only matched: phones by libphonenumber (`phonenumbers`, through presidio's
PhoneRecognizer, US and UK national formats plus any `+`-prefixed international number, strict grouping), cards
by the Luhn checksum, IBANs by their mod-97 checksum, SSNs by presidio's invalid-range rules, IP addresses by
`ipaddress` and only where the text names them ("IP", "address", "host", ...), because a bare dotted quad in the
literature is far more often an enzyme number (EC 3.1.1.11) or a version. On the 1,000 PubMedQA records none of
them fires (tests/processing/test_pii.py). Not detected, and logged so: person names and postal addresses need a
spaCy NER model, which no maintained package ships here; dates are left out because ratios such as "7/20" read
as dates (50 of 50 pattern hits on PubMedQA were ratios or study dates, none personal).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

PII_TYPES = ("EMAIL_ADDRESS", "PHONE_NUMBER", "US_SSN", "CREDIT_CARD", "IBAN_CODE", "IP_ADDRESS")
NOT_DETECTED = "PERSON, LOCATION (need a spaCy NER model), DATE_TIME (ratios such as 7/20 read as dates)"
PII_ACTIONS = ("report", "redact", "fail")
MIN_SCORE = 0.4  # presidio's base score for a libphonenumber match; the weak SSN patterns (0.05) stay out
PHONE_REGIONS = ("US", "GB")
STRICT_GROUPING = 2  # phonenumbers.Leniency.STRICT_GROUPING: digits grouped as the region formats them
IP_CONTEXT = frozenset({"ip", "ipv4", "ipv6", "address", "addresses", "host", "server", "client", "gateway"})
IP_CONTEXT_WINDOW = 40  # characters before the match searched for a context word


@dataclass(frozen=True)
class Finding:
    entity_type: str
    start: int
    end: int
    score: float


def _ip_named_before(text: str, start: int) -> bool:
    words = re.findall(r"[a-z0-9]+", text[max(0, start - IP_CONTEXT_WINDOW) : start].lower())
    return bool(IP_CONTEXT.intersection(words))


@cache
def _analyzer() -> Any:
    """An AnalyzerEngine over the validated pattern recognizers only (presidio's no-op NLP engine)."""
    import tldextract
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NoOpNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        PhoneRecognizer,
        UsSsnRecognizer,
    )

    offline_suffixes = tldextract.TLDExtract(suffix_list_urls=())  # the package's snapshot: no download

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_suffixes(pattern_text.rsplit("@", 1)[-1]).suffix)

    class NamedIpRecognizer(IpRecognizer):
        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None, regex_flags: Any = None) -> list:
            found = super().analyze(text, entities, nlp_artifacts, regex_flags)
            return [r for r in found if text[r.start : r.end].strip(":") and _ip_named_before(text, r.start)]

    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        OfflineEmailRecognizer(),
        PhoneRecognizer(supported_regions=PHONE_REGIONS, leniency=STRICT_GROUPING),
        UsSsnRecognizer(),
        CreditCardRecognizer(),
        IbanRecognizer(),
        NamedIpRecognizer(),
    ):
        registry.add_recognizer(recognizer)
    engine = NoOpNlpEngine(models=[{"lang_code": "en", "model_name": "none"}])
    engine.load()
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])


def find(text: str) -> list[Finding]:
    """Non-overlapping findings in one text; where two types claim a span the higher score wins."""
    results = _analyzer().analyze(text, language="en", entities=list(PII_TYPES), score_threshold=MIN_SCORE)
    kept: list[Finding] = []
    for r in sorted(results, key=lambda r: (-r.score, r.start)):
        if all(r.end <= k.start or r.start >= k.end for k in kept):
            kept.append(Finding(r.entity_type, r.start, r.end, r.score))
    return sorted(kept, key=lambda f: f.start)


def redact(text: str, findings: Sequence[Finding]) -> str:
    """`text` with every finding replaced by `<ENTITY_TYPE>`."""
    for finding in sorted(findings, key=lambda f: f.start, reverse=True):
        text = text[: finding.start] + f"<{finding.entity_type}>" + text[finding.end :]
    return text


def count_pii(texts: Iterable[str]) -> dict[str, int]:
    """Occurrences of every type (zero included) over many texts."""
    total: Counter[str] = Counter(f.entity_type for text in texts for f in find(text))
    return {name: total[name] for name in PII_TYPES}
