"""Salted scrypt password hashes, stored as ``scrypt:N:r:p$salt$hex`` (the format Werkzeug writes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**15, 8, 1
SALT_ALPHABET = string.ascii_letters + string.digits
SALT_LENGTH = 16


def _scrypt(password: str, salt: str, n: int, r: int, p: int) -> str:
    """Return the hex scrypt digest (64 bytes) of ``password`` with ``salt``."""
    return hashlib.scrypt(password.encode(), salt=salt.encode(), n=n, r=r, p=p,
                          maxmem=132 * n * r * p).hex()


def hash_password(password: str) -> str:
    """Return a new salted scrypt hash of ``password``."""
    salt = "".join(secrets.choice(SALT_ALPHABET) for _ in range(SALT_LENGTH))
    return f"scrypt:{SCRYPT_N}:{SCRYPT_R}:{SCRYPT_P}${salt}${_scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)}"


def check_password(stored: str, password: str) -> bool:
    """Tell whether ``password`` matches the ``stored`` hash, in constant time; a malformed hash never matches."""
    try:
        method, salt, digest = stored.split("$", 2)
        name, n, r, p = method.split(":")
        if name != "scrypt":
            return False
        return hmac.compare_digest(_scrypt(password, salt, int(n), int(r), int(p)), digest)
    except ValueError:
        return False
