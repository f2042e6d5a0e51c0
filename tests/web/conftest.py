"""Fixtures of the web tests."""

from __future__ import annotations

import pytest

from gallery import passwords


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hash new passwords with scrypt at N = 2**10 rather than 2**15 (a hundredth of the work).

    The web tests create users and sign in a few hundred times. Each hash stores its own cost,
    so checking a password still runs the real scrypt; tests/gallery/test_passwords.py keeps
    the production cost.
    """
    monkeypatch.setattr(passwords, "SCRYPT_N", 2**10)
