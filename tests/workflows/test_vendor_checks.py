"""Format checks of vendor applications: IBAN checksum, VAT and registration formats."""

from __future__ import annotations

import pytest

from marketpilot.workflows.vendor_checks import (
    check_documents,
    check_iban,
    check_registration,
    check_vat,
    iban_valid,
)


@pytest.mark.parametrize("iban", ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432", "FR1420041010050500013M02606",
                                  "NL91ABNA0417164300", "BE68539007547034"])
def test_published_example_ibans_pass(iban: str) -> None:
    assert iban_valid(iban)


@pytest.mark.parametrize("iban", ["DE89370400440532013001", "DE8937040044053201300", "GB82WEST1234569876543X2",
                                  "XX", "NL91ABNA041716430"])
def test_a_changed_digit_or_length_fails(iban: str) -> None:
    assert not iban_valid(iban)


def test_vat_formats_per_country() -> None:
    assert check_vat("DE", "DE123456789").ok
    assert check_vat("DE", "123456789").ok  # prefix optional
    assert not check_vat("DE", "DE12345678").ok
    assert check_vat("NL", "NL123456789B01").ok
    assert not check_vat("NL", "NL123456789").ok
    assert check_vat("GR", "EL123456789").ok
    assert check_vat("AT", "ATU12345678").ok
    assert not check_vat("US", "123").ok
    assert not check_vat("DE", None).ok


def test_registration_formats_per_country() -> None:
    assert check_registration("DE", "HRB 12345").ok
    assert not check_registration("DE", "12345").ok
    assert check_registration("FR", "732 829 320").ok
    assert check_registration("SE", "556677-8899").ok
    assert check_registration("LU", "B123").ok  # no known format: left to the review
    assert not check_registration("FR", None).ok


def test_documents_must_all_be_present() -> None:
    assert check_documents(["registration_extract", "id_document", "bank_statement", "other"]).ok
    missing = check_documents(["id_document"])
    assert not missing.ok and "bank_statement" in missing.detail


def test_check_iban_reports_the_reason() -> None:
    assert check_iban(None).detail == "no IBAN"
    assert check_iban("DE89370400440532013001").detail == "wrong length or checksum"
