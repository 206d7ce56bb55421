"""The mock directory (billing_sync_jobs.md §2.12): fake users, groups and memberships for
development and staging, so a provider syncs without any IdP. No network.

Sizes come from `adapter_config` (`num_actors` 500, `num_groups` 2500, `max_actors_per_group` 25,
the defaults of `accounts.providers.mock`). Identities are `U:1..n` with e-mail
`<firstname>@example.com`, groups `G:1..m` named `Group:<word>`, each with 1..max members.

The original drew names and members at random on every run, so every sync renamed everything.
Ours are random too but seeded by the provider id: each run of one provider yields the same
directory (a sync changes nothing until the config changes), two providers differ.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from accounts.models import AuthProvider
from accounts.providers import MOCK_DEFAULTS
from directory_sync.directory import DirectoryGroup, DirectoryIdentity, Membership

FIRST_NAMES = (
    "Ada", "Alan", "Barbara", "Brian", "Claude", "Dennis", "Donald", "Edsger", "Frances",
    "Grace", "Guido", "Hedy", "Ivan", "Jean", "John", "Ken", "Linus", "Margaret", "Niklaus",
    "Radia", "Richard", "Shafi", "Sophie", "Tim", "Whitfield", "Yukihiro",
)  # fmt: skip
LAST_NAMES = (
    "Lovelace", "Turing", "Liskov", "Kernighan", "Shannon", "Ritchie", "Knuth", "Dijkstra",
    "Allen", "Hopper", "Rossum", "Lamarr", "Sutherland", "Sammet", "McCarthy", "Thompson",
    "Torvalds", "Hamilton", "Wirth", "Perlman", "Stallman", "Goldwasser", "Wilson", "Berners-Lee",
    "Diffie", "Matsumoto",
)  # fmt: skip
GROUP_WORDS = (
    "Engineering", "Sales", "Marketing", "Support", "Finance", "Legal", "Operations", "Design",
    "Security", "Research", "Platform", "Infrastructure", "Mobile", "Data", "Growth", "People",
)  # fmt: skip


class MockDirectory:
    def __init__(self, provider: AuthProvider) -> None:
        config: dict[str, Any] = {**MOCK_DEFAULTS, **(provider.adapter_config or {})}
        self.num_actors = max(int(config["num_actors"]), 0)
        self.num_groups = max(int(config["num_groups"]), 0)
        self.max_actors_per_group = max(int(config["max_actors_per_group"]), 0)
        self.seed = str(provider.pk)

    def _random(self, kind: str) -> random.Random:
        # Not for security: a reproducible fake directory.
        return random.Random(f"{self.seed}:{kind}")

    def identities(self) -> Iterator[DirectoryIdentity]:
        rng = self._random("identities")
        for n in range(1, self.num_actors + 1):
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            # As the original: the first name's address, shared by the namesakes.
            email = f"{first.lower()}@example.com"
            yield DirectoryIdentity(
                provider_identifier=f"U:{n}", name=f"{first} {last}", email=email
            )

    def groups(self) -> Iterator[DirectoryGroup]:
        rng = self._random("groups")
        for n in range(1, self.num_groups + 1):
            name = f"Group:{rng.choice(GROUP_WORDS)} {rng.choice(LAST_NAMES)} {n}"
            yield DirectoryGroup(provider_identifier=f"G:{n}", name=name)

    def memberships(self) -> Iterator[Membership]:
        if self.num_actors == 0 or self.max_actors_per_group == 0:
            return
        rng = self._random("memberships")
        most = min(self.max_actors_per_group, self.num_actors)
        for n in range(1, self.num_groups + 1):
            members = rng.sample(range(1, self.num_actors + 1), rng.randint(1, most))
            for member in sorted(members):
                yield (f"G:{n}", f"U:{member}")


def directory_for(provider: AuthProvider) -> MockDirectory:
    return MockDirectory(provider)
