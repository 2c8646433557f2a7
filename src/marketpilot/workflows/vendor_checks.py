"""Format checks of a vendor application: required documents, EU VAT number and company
registration number formats per country, and the IBAN checksum (ISO 13616, mod 97).

Formats are the published national patterns (VAT: the VIES formats; registration: the
national register's number). A format check proves a number *can* be valid, not that it is
registered; that is what the manual review (or a VIES/register lookup) is for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REQUIRED_DOCUMENTS = frozenset({"registration_extract", "id_document", "bank_statement"})

# VAT numbers without the country prefix (VIES formats).
VAT_FORMATS: dict[str, str] = {
    "AT": r"U\d{8}", "BE": r"[01]\d{9}", "BG": r"\d{9,10}", "CY": r"\d{8}[A-Z]", "CZ": r"\d{8,10}",
    "DE": r"\d{9}", "DK": r"\d{8}", "EE": r"\d{9}", "EL": r"\d{9}", "ES": r"[A-Z0-9]\d{7}[A-Z0-9]",
    "FI": r"\d{8}", "FR": r"[A-HJ-NP-Z0-9]{2}\d{9}", "HR": r"\d{11}", "HU": r"\d{8}", "IE": r"\d[A-Z0-9+*]\d{5}[A-Z]{1,2}",
    "IT": r"\d{11}", "LT": r"(\d{9}|\d{12})", "LU": r"\d{8}", "LV": r"\d{11}", "MT": r"\d{8}",
    "NL": r"\d{9}B\d{2}", "PL": r"\d{10}", "PT": r"\d{9}", "RO": r"\d{2,10}", "SE": r"\d{12}",
    "SI": r"\d{8}", "SK": r"\d{10}",
}
VAT_PREFIX = {"GR": "EL"}  # Greece's VAT prefix is EL

# Company registration numbers (national registers), the common legal forms.
REGISTRATION_FORMATS: dict[str, str] = {
    "AT": r"FN ?\d{1,6} ?[a-z]",  # Firmenbuchnummer
    "BE": r"0\d{3}\.?\d{3}\.?\d{3}",  # KBO/BCE enterprise number
    "DE": r"HR[AB] ?\d{1,6}( ?[A-Z]{1,2})?",  # Handelsregister
    "DK": r"\d{8}",  # CVR
    "ES": r"[A-HJ-NP-SUVW]\d{7}[0-9A-J]",  # CIF/NIF of a company
    "FI": r"\d{7}-\d",  # Y-tunnus
    "FR": r"\d{3} ?\d{3} ?\d{3}",  # SIREN
    "IE": r"\d{5,6}",  # CRO number
    "IT": r"\d{11}",  # codice fiscale / partita IVA of a company
    "NL": r"\d{8}",  # KvK
    "PL": r"\d{10}",  # KRS
    "PT": r"\d{9}",  # NIPC
    "SE": r"\d{6}-\d{4}",  # organisationsnummer
}

IBAN_LENGTHS: dict[str, int] = {
    "AT": 20, "BE": 16, "BG": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20, "ES": 24, "FI": 18,
    "FR": 27, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IT": 27, "LT": 20, "LU": 20, "LV": 21, "MT": 31,
    "NL": 18, "PL": 28, "PT": 25, "RO": 24, "SE": 24, "SI": 19, "SK": 24, "CH": 21, "GB": 22, "NO": 15,
}
EU_COUNTRIES = frozenset(VAT_FORMATS) - {"EL"} | {"GR"}


@dataclass(frozen=True, slots=True)
class CheckResult:
    name: str
    ok: bool
    detail: str


def _compact(value: str) -> str:
    return re.sub(r"[\s.\-]", "", value).upper()


def check_documents(documents: list[str]) -> CheckResult:
    missing = sorted(REQUIRED_DOCUMENTS - set(documents))
    return CheckResult("documents", not missing, f"missing: {', '.join(missing)}" if missing else "all present")


def check_vat(country: str, vat: str | None) -> CheckResult:
    if not vat:
        return CheckResult("vat", False, "no VAT number")
    code = _compact(vat)
    prefix = VAT_PREFIX.get(country, country)
    if code.startswith(prefix):
        code = code[len(prefix):]
    pattern = VAT_FORMATS.get(prefix)
    if pattern is None:
        return CheckResult("vat", False, f"no EU VAT format for country {country!r}")
    ok = re.fullmatch(pattern, code) is not None
    return CheckResult("vat", ok, f"{prefix}{code} {'matches' if ok else 'does not match'} the {prefix} format")


def check_registration(country: str, number: str | None) -> CheckResult:
    if not number:
        return CheckResult("registration", False, "no company registration number")
    pattern = REGISTRATION_FORMATS.get(country)
    if pattern is None:
        return CheckResult("registration", True, f"no known format for {country}; left to the review")
    ok = re.fullmatch(pattern, number.strip(), flags=re.IGNORECASE) is not None
    return CheckResult("registration", ok, f"{'matches' if ok else 'does not match'} the {country} register format")


def iban_valid(iban: str) -> bool:
    """ISO 13616: country length, then the number rearranged and read in base 36 is 1 mod 97."""
    code = _compact(iban)
    if len(code) < 15 or not code[:2].isalpha() or not code[2:4].isdigit() or not code.isalnum():
        return False
    expected = IBAN_LENGTHS.get(code[:2])
    if expected is not None and len(code) != expected:
        return False
    rearranged = code[4:] + code[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def check_iban(iban: str | None) -> CheckResult:
    if not iban:
        return CheckResult("iban", False, "no IBAN")
    ok = iban_valid(iban)
    return CheckResult("iban", ok, "checksum valid" if ok else "wrong length or checksum")
