"""Password hashing (Werkzeug scrypt) and the password policy."""
from __future__ import annotations

from werkzeug.security import check_password_hash, generate_password_hash

MIN_LENGTH = 8


def hash_password(password: str) -> str:
    return generate_password_hash(password, method="scrypt")


def check_password(stored: str, password: str) -> bool:
    try:
        return check_password_hash(stored, password)
    except (ValueError, TypeError):
        return False


# A constant hash to compare against when the user does not exist (same work, same timing).
_DUMMY = None


def dummy_check(password: str) -> None:
    global _DUMMY
    if _DUMMY is None:
        _DUMMY = hash_password("not-a-real-password")
    check_password(_DUMMY, password)


def policy_errors(password: str) -> list[str]:
    """Problems with a new password, as message keys translated by the caller."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append("too_short")
    if password.isdigit() or password.isalpha():
        problems.append("letters_and_digits")
    return problems
