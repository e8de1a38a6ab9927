"""Identifiers in Fly's real formats, drawn from seeded random streams.

Each kind of identifier has its own stream so that, for example, a client polling more often
(more request ids) does not shift the machine ids of a run: the same seed and the same
sequence of *mutating* requests always give the same ids.
"""

from __future__ import annotations

import hashlib
import random

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_BASE36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_ADJECTIVES = (
    "autumn", "bold", "broken", "calm", "cool", "crimson", "damp", "dark", "dry", "falling",
    "frosty", "green", "hidden", "holy", "late", "lively", "long", "misty", "morning", "muddy",
    "old", "patient", "polished", "proud", "quiet", "red", "restless", "rough", "shy", "silent",
    "small", "snowy", "solitary", "spring", "still", "summer", "twilight", "wandering", "weathered",
    "wild", "winter", "young",
)  # fmt: skip
_NOUNS = (
    "bird", "breeze", "brook", "bush", "cloud", "darkness", "dawn", "dew", "dream", "dust",
    "field", "fire", "flower", "fog", "forest", "frog", "glade", "grass", "haze", "hill", "lake",
    "leaf", "meadow", "moon", "morning", "mountain", "night", "paper", "pine", "pond", "rain",
    "resonance", "river", "sea", "shadow", "sky", "smoke", "snow", "sound", "star", "sun",
    "sunset", "surf", "thunder", "tree", "violet", "water", "wave", "wildflower", "wind", "wood",
)  # fmt: skip


def encode_ulid(milliseconds: int, randomness: int) -> str:
    """A 26-character ULID: 48 bits of milliseconds then 80 random bits, Crockford base32."""
    value = (milliseconds & ((1 << 48) - 1)) << 80 | (randomness & ((1 << 80) - 1))
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


class IdFactory:
    """Makes every identifier flysim hands out, deterministically from one seed."""

    def __init__(self, seed: int) -> None:
        self._objects = random.Random(f"flysim:{seed}:objects")
        self._versions = random.Random(f"flysim:{seed}:versions")
        self._requests = random.Random(f"flysim:{seed}:requests")

    def machine_id(self) -> str:
        """Lowercase hex, 14 characters, e.g. `1857156b526dd8` [D][O]."""
        return f"{self._objects.getrandbits(56):014x}"

    def volume_id(self) -> str:
        """`vol_` plus 16 lowercase base36 characters [D][O]."""
        return "vol_" + "".join(self._objects.choice(_BASE36) for _ in range(16))

    def snapshot_id(self) -> str:
        return "vs_" + "".join(self._objects.choice(_BASE36) for _ in range(16))

    def nonce(self) -> str:
        """A lease nonce: 12 hex characters [D]."""
        return f"{self._objects.getrandbits(48):012x}"

    def zone(self) -> str:
        """A host's zone label, 4 hex characters as Fly shows them (`a7f3`)."""
        return f"{self._objects.getrandbits(16):04x}"

    def app_id(self) -> str:
        return "".join(self._objects.choice(_BASE36) for _ in range(14))

    def private_ip(self) -> str:
        """An IPv6 address in Fly's private `fdaa:` range [D]."""
        words = [self._objects.getrandbits(16) for _ in range(5)]
        return "fdaa:0:{:x}:a7b:{:x}:{:x}:{:x}:{:x}".format(*words[:1], *words[1:])

    def digest(self) -> str:
        return f"sha256:{self._objects.getrandbits(256):064x}"

    def machine_name(self) -> str:
        """Fly's default names look like `wild-water-4567`."""
        rng = self._objects
        return f"{rng.choice(_ADJECTIVES)}-{rng.choice(_NOUNS)}-{rng.randrange(1000, 10000)}"

    def version(self, now: float) -> str:
        """An `instance_id`/`version`: a ULID whose time part is the simulator clock."""
        return encode_ulid(int(now * 1000), self._versions.getrandbits(80))

    def event_id(self, now: float) -> str:
        return encode_ulid(int(now * 1000), self._versions.getrandbits(80))

    def request_id(self, now: float, region: str) -> str:
        """`fly-request-id`, e.g. `01JNRQ9VVKJ7HZFMJWJB3M3RYN-yyz` [O]."""
        return f"{encode_ulid(int(now * 1000), self._requests.getrandbits(80))}-{region}"

    def trace_id(self) -> str:
        return f"{self._requests.getrandbits(128):032x}"

    @staticmethod
    def token_owner(token: str | None) -> str:
        """A stable lease owner for a token: Fly shows `<uuid>@tokens.fly.io` for API tokens [C]."""
        digest = hashlib.sha256((token or "anonymous").encode()).hexdigest()
        uuid = f"{digest[:8]}-{digest[8:12]}-{digest[12:16]}-{digest[16:20]}-{digest[20:32]}"
        return f"{uuid}@tokens.fly.io"
