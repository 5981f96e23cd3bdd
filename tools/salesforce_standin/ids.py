"""Salesforce record ids: 15-character case-sensitive ids and their 18-character case-safe form."""

from __future__ import annotations

import functools
import hashlib
import re

BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_ID_SHAPE = re.compile(r"^[0-9A-Za-z]{15}(?:[0-9A-Za-z]{3})?$")
# The two characters after the key prefix name the pod in real ids; every emulated record lives on "5g".
POD = "5g0"


_PAIRS = [a + b for a in BASE62 for b in BASE62]  # two base-62 digits at a time: ids are made per row
_UPPER_BITS = str.maketrans({char: "1" if "A" <= char <= "Z" else "0" for char in BASE62})


def base62(number: int, width: int) -> str:
    if number >= 62**width or number < 0:
        raise ValueError(f"{number} does not fit in {width} base-62 digits")
    if width > 4:
        high, low = divmod(number, 62**4)
        return _base62_cached(high, width - 4) + _PAIRS[low // 3844] + _PAIRS[low % 3844]
    return "".join(reversed([BASE62[(number // 62**place) % 62] for place in range(width)]))


@functools.lru_cache(maxsize=4096)
def _base62_cached(number: int, width: int) -> str:
    return base62(number, width)


def case_safe_suffix(id15: str) -> str:
    """The three characters Salesforce appends to a 15-character id: one bit per upper-case letter per chunk."""
    bits = id15.translate(_UPPER_BITS)
    return _SUFFIX[int(bits[4::-1], 2)] + _SUFFIX[int(bits[9:4:-1], 2)] + _SUFFIX[int(bits[14:9:-1], 2)]


def make_id(key_prefix: str, sequence: int) -> str:
    """The 18-character id of the `sequence`-th record of an object whose key prefix is `key_prefix`."""
    id15 = key_prefix + POD + base62(sequence, 9)
    return id15 + case_safe_suffix(id15)


def pair_id(key_prefix: str, first: str, second: str) -> str:
    """A deterministic 18-character id for a record derived from two others (a row of a view)."""
    digest = int.from_bytes(hashlib.blake2b(f"{first}:{second}".encode(), digest_size=8).digest(), "big")
    id15 = key_prefix + POD + base62(digest % 62**9, 9)
    return id15 + case_safe_suffix(id15)


def normalize_id(value: str) -> str | None:
    """The 18-character form of a 15- or 18-character id, or None when `value` is not shaped like an id."""
    if not _ID_SHAPE.match(value):
        return None
    if len(value) == 15:
        return value + case_safe_suffix(value)
    if any(char not in _SUFFIX for char in value[15:].upper()):
        return None
    if case_safe_suffix(value[:15]) != value[15:].upper():
        # Salesforce accepts an 18-character id in any case; it rebuilds the 15 from the suffix.
        return _restore_case(value)
    return value


def _restore_case(id18: str) -> str | None:
    chars = list(id18[:15])
    for chunk_index, flag_char in enumerate(id18[15:].upper()):
        flags = _SUFFIX.index(flag_char)
        for position in range(5):
            index = chunk_index * 5 + position
            upper = bool(flags & (1 << position))
            if chars[index].isalpha():
                chars[index] = chars[index].upper() if upper else chars[index].lower()
            elif upper:
                return None
    id15 = "".join(chars)
    return id15 + case_safe_suffix(id15)
