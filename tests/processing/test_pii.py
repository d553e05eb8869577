from processing.pii import count_pii, detect, luhn_valid


def test_each_type_is_counted() -> None:
    text = (
        "Mail ops@example.com or dev.team+alerts@example.org, call (555) 010-4477 or +1 555 010 9999. "
        "SSN 123-45-6789. Card 4111 1111 1111 1111. Host 192.0.2.15 and 2001:db8::15."
    )
    assert dict(detect(text)) == {"email": 2, "phone": 2, "ssn": 1, "card_number": 1, "ipv4": 1, "ipv6": 1}


def test_lookalikes_are_not_counted() -> None:
    text = "Build 4111 1111 1111 1112, version 1.2.3.4.5, address 999.10.10.10, at 10:30, id 000-12-3456."
    assert sum(detect(text).values()) == 0


def test_luhn() -> None:
    assert luhn_valid("79927398713")
    assert not luhn_valid("79927398710")


def test_totals_over_texts_include_zero_types() -> None:
    assert count_pii(["a@example.com", "b@example.com 198.51.100.7"]) == {
        "email": 2,
        "phone": 0,
        "ssn": 0,
        "card_number": 0,
        "ipv4": 1,
        "ipv6": 0,
    }
