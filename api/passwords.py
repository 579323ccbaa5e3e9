"""What a password must be: long enough, not a common one, not easy to guess.

The common passwords are zxcvbn's list of the 30,000 most frequent ones in
leaked password sets; zxcvbn's estimate also catches the small variations
of them (``Password1234!``) and keyboard walks that no list holds.
"""
from __future__ import annotations

from zxcvbn import zxcvbn
from zxcvbn.frequency_lists import FREQUENCY_LISTS

MIN_LENGTH = 12
MAX_LENGTH = 128  # the login forms take 200 characters; scrypt any length
# zxcvbn's scores go from 0 to 4; 3 is "safely unguessable: moderate
# protection from an offline attack", the least for a login that can
# validate exports or see travellers' data.
MIN_SCORE = 3

_COMMON = frozenset(FREQUENCY_LISTS["passwords"])


def problems(password: str, username: str | None = None) -> list[str]:
    """Why ``password`` may not be used; empty if it may."""
    if len(password) < MIN_LENGTH:
        return [f"Use at least {MIN_LENGTH} characters."]
    if len(password) > MAX_LENGTH:
        return [f"Use at most {MAX_LENGTH} characters."]
    if password.lower() in _COMMON:
        return ["This is one of the most common passwords: choose another."]
    if username and username.lower() in password.lower():
        return ["A password may not contain the username."]
    # zxcvbn's cost grows with the length; what follows the first 72
    # characters adds strength without needing a look.
    if zxcvbn(password[:72], user_inputs=[username] if username else [])["score"] < MIN_SCORE:
        return ["This password is too easy to guess: use a longer one, e.g. several unrelated words."]
    return []
