import json
from pathlib import Path

import pytest

from processing.datasets import Dataset, DatasetError, Document, QaRecord
from processing.pii import PII_TYPES, count_pii, find, redact
from processing.stages.prepare import screen

PUBMEDQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pubmedqa" / "ori_pqal.json"


def types(text: str) -> list[str]:
    return [f.entity_type for f in find(text)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Mail ops@example.com or dev.team+alerts@example.org.", ["EMAIL_ADDRESS", "EMAIL_ADDRESS"]),
        ("Call (212) 555-0199 or 212-555-0143.", ["PHONE_NUMBER", "PHONE_NUMBER"]),
        ("London office +44 20 7946 0958, Berlin +49 30 901820, Paris +33 1 42 68 53 00.", ["PHONE_NUMBER"] * 3),
        ("UK line 020 7946 0958.", ["PHONE_NUMBER"]),
        ("Card 4111 1111 1111 1111 expires soon.", ["CREDIT_CARD"]),
        ("Pay to IBAN DE89 3704 0044 0532 0130 00 today.", ["IBAN_CODE"]),
        ("The server IP address is 192.168.1.20; host 2001:db8::15.", ["IP_ADDRESS", "IP_ADDRESS"]),
        ("His SSN is 536-90-4399.", ["US_SSN"]),
    ],
)
def test_each_type_is_found(text: str, expected: list[str]) -> None:
    assert types(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "The enzyme EC 3.1.1.11 hydrolyses pectin.",
        "Version 22.0.0.1 of the scale was used.",
        "The operator :: joins scopes.",
        "Counts were 120 340 5600 across sites.",
        "Card 4111 1111 1111 1112 fails the Luhn check.",
        "IBAN DE89 3704 0044 0532 0130 01 fails its checksum.",
        "Ratios 0.89-0.98 and 32.7-34.9/1000 per year.",
        "The well-known invalid SSN 078-05-1120 and 000-12-3456.",
    ],
)
def test_lookalikes_are_not_found(text: str) -> None:
    assert find(text) == []


def test_no_finding_on_the_pubmedqa_set() -> None:
    """The bar: zero hits over all 1,000 PubMedQA records (questions, long answers and every context)."""
    if not PUBMEDQA.is_file():
        pytest.skip(f"{PUBMEDQA} is not present")
    records = json.loads(PUBMEDQA.read_text(encoding="utf-8"))
    assert len(records) == 1000
    texts = [t for r in records.values() for t in (r["QUESTION"], r["LONG_ANSWER"], *r["CONTEXTS"])]
    assert count_pii(texts) == dict.fromkeys(PII_TYPES, 0)


def test_redaction_replaces_each_span_with_its_type() -> None:
    text = "Write to a@example.com or call (212) 555-0199."
    assert redact(text, find(text)) == "Write to <EMAIL_ADDRESS> or call <PHONE_NUMBER>."


def dataset() -> Dataset:
    record = QaRecord("r1", "Is it safe?", ("Contact jane@example.org for data.", "No PII here."), "Yes.", "yes")
    return Dataset((record, QaRecord("r2", "Why?", ("Plain text.",), "Because.", "no")), (Document("d", "ok"),))


def test_screen_reports_counts_and_sources() -> None:
    checked = screen(dataset(), "report")
    assert checked.counts["EMAIL_ADDRESS"] == 1
    assert checked.sources == ("r1",)
    assert checked.detected == "EMAIL_ADDRESS"
    assert checked.dataset == dataset()


def test_screen_redacts() -> None:
    checked = screen(dataset(), "redact")
    assert checked.dataset.records[0].contexts[0] == "Contact <EMAIL_ADDRESS> for data."
    assert checked.dataset.records[1] == dataset().records[1]


def test_screen_fail_names_the_types_and_records() -> None:
    with pytest.raises(DatasetError, match=r"pii_action=fail: .*1 EMAIL_ADDRESS.*'r1'"):
        screen(dataset(), "fail")
