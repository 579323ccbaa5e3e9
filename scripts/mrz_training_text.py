"""Random zone-like text for training the ``mrz`` Tesseract model.

``python scripts/mrz_training_text.py LINES SEED`` prints LINES lines of
44 characters from the zone's alphabet (A-Z, 0-9, ``<``), shaped like the
lines of real zones (names with ``<`` between them and long filler runs,
numbers, dates) so that every character is seen beside every other and in
runs. The text is random: it is not the zones of the generated test pages
(tests/data/passports.py), so the tests measure reading, not recall.
"""
from __future__ import annotations

import random
import string
import sys

LETTERS = string.ascii_uppercase
DIGITS = string.digits
ALPHANUMERIC = LETTERS + DIGITS


def _word(rng: random.Random, low: int, high: int) -> str:
    return "".join(rng.choice(LETTERS) for _ in range(rng.randint(low, high)))


def names_line(rng: random.Random) -> str:
    names = "<".join(_word(rng, 2, 9) for _ in range(rng.randint(1, 2)))
    names += "<<" + "<".join(_word(rng, 2, 9) for _ in range(rng.randint(1, 3)))
    return ("P" + rng.choice("<<<" + LETTERS) + _word(rng, 3, 3) + names)[:44].ljust(44, "<")


def numbers_line(rng: random.Random) -> str:
    def field(n: int, alphabet: str) -> str:
        return "".join(rng.choice(alphabet) for _ in range(n))

    number = field(rng.randint(6, 9), ALPHANUMERIC).ljust(9, "<")
    optional = field(rng.choice((0, 0, 8, 11, 14)), ALPHANUMERIC).ljust(14, "<")
    return (number + field(1, DIGITS) + _word(rng, 3, 3) + field(7, DIGITS) + rng.choice("MFX<")
            + field(7, DIGITS) + optional + field(2, DIGITS + "<"))


def mixed_line(rng: random.Random) -> str:
    """Any character beside any other (the shaped lines repeat some pairs)."""
    return "".join(rng.choice(ALPHANUMERIC + "<<<<<<") for _ in range(44))


def lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    kinds = (names_line, numbers_line, mixed_line)
    return [kinds[i % 3](rng) for i in range(count)]


if __name__ == "__main__":
    count, seed = (int(a) for a in sys.argv[1:3])
    print("\n".join(lines(count, seed)))
