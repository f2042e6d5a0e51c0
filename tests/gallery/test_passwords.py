"""Password hashes: salted scrypt, readable in the format earlier releases stored (Werkzeug's)."""

from __future__ import annotations

from gallery.passwords import check_password, hash_password

# Made by werkzeug.security.generate_password_hash("correct horse", method="scrypt"), as
# releases before gallery.passwords stored them; such users must still sign in.
WERKZEUG_HASH = ("scrypt:32768:8:1$0IZ2qVOS7apX7pMg$"
                 "c6b1397598a291e7422564e63852e09b9e0ba20c787a446565b52708631080f6"
                 "002e241692de70a03686014d66a5c102200a68144163bd5c365486a382acac7e")


def test_a_hash_checks_its_own_password_only_and_is_salted() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert first != second and first.startswith("scrypt:32768:8:1$")
    assert check_password(first, "correct horse") and check_password(second, "correct horse")
    assert not check_password(first, "correct horsE")


def test_hashes_stored_by_earlier_releases_still_check() -> None:
    assert check_password(WERKZEUG_HASH, "correct horse")
    assert not check_password(WERKZEUG_HASH, "wrong")


def test_malformed_or_foreign_hashes_never_match() -> None:
    for stored in ("", "scrypt", "scrypt:1:2$salt", "pbkdf2:sha256:1000$salt$00", "scrypt:x:8:1$a$b"):
        assert not check_password(stored, "anything")
