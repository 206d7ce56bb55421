"""Random human-friendly names ("adjective-noun"), used for default slugs, sites and devices."""

from __future__ import annotations

import secrets
import zlib

ADJECTIVES = (
    "able", "airy", "amber", "ample", "apt", "azure", "bold", "brave", "brisk", "calm", "candid",
    "clear", "clever", "cosmic", "crisp", "daring", "deft", "eager", "early", "easy", "epic",
    "fair", "fancy", "fast", "fine", "fluent", "frank", "fresh", "gentle", "glad", "golden",
    "grand", "happy", "hardy", "honest", "humble", "jolly", "keen", "kind", "lively", "lucid",
    "lucky", "mellow", "merry", "mighty", "modest", "noble", "plucky", "polite", "proud",
    "quick", "quiet", "rapid", "ready", "robust", "royal", "rustic", "shiny", "silent",
    "smart", "snappy", "solid", "sunny", "swift", "tidy", "vivid", "warm", "wise", "witty",
    "zesty",
)  # fmt: skip
NOUNS = (
    "anchor", "badger", "beacon", "birch", "bison", "breeze", "brook", "canyon", "cedar",
    "comet", "coral", "crane", "delta", "dolphin", "eagle", "ember", "falcon", "fern", "fjord",
    "forest", "fox", "glacier", "harbor", "hawk", "heron", "island", "jaguar", "lagoon", "lark",
    "lotus", "lynx", "maple", "meadow", "meteor", "nebula", "oak", "ocean", "orca", "otter",
    "owl", "panda", "pebble", "pine", "planet", "prairie", "quartz", "raven", "reef", "river",
    "robin", "sequoia", "shore", "sparrow", "spruce", "summit", "thunder", "tiger", "tundra",
    "valley", "walrus", "willow", "wolf", "zebra",
)  # fmt: skip


def adjective_noun(separator: str = "-") -> str:
    return f"{secrets.choice(ADJECTIVES)}{separator}{secrets.choice(NOUNS)}"


def short_device_name(max_length: int = 15) -> str:
    """A default client name: long names are cut to 11 chars plus a 4-hex-digit hash (§2.8)."""
    name = adjective_noun()
    if len(name) <= max_length:
        return name
    return f"{name[:11]}{zlib.crc32(name.encode()) & 0xFFFF:04X}"
