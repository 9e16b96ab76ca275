"""Mock staging members for a region, reproducible from a seed, at a chosen volume.

Properties, liens and recorded sales for the region are added to this generator once the
homes models exist; the regions already carry what they need (cities, postcodes, streets).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

from homes.models import Member
from institutions.models import Environment
from releases.services.common import ReleaseRefused
from releases.staging_data import pseudonyms
from releases.staging_data.anonymize import sink_domain


@dataclass(frozen=True)
class Region:
    name: str
    state: str
    cities: tuple[tuple[str, str], ...]  # (city, postcode prefix)
    streets: tuple[str, ...]


REGIONS = {
    "king-county-wa": Region(
        "King County, Washington",
        "WA",
        (("Seattle", "981"), ("Bellevue", "980"), ("Kent", "980"), ("Renton", "980")),
        ("Pine St", "Aurora Ave N", "Rainier Ave S", "NE 8th St", "Lake City Way NE"),
    ),
    "travis-county-tx": Region(
        "Travis County, Texas",
        "TX",
        (("Austin", "787"), ("Pflugerville", "786"), ("Lakeway", "787")),
        ("Congress Ave", "Lamar Blvd", "Burnet Rd", "Riverside Dr", "Manor Rd"),
    ),
}


def mock_members_generate(
    *,
    environment: Environment,
    count: int,
    seed: int,
    region: str,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Add `count` mock members to staging; the same seed gives the same members."""
    if not environment.is_staging:
        raise ReleaseRefused("Mock data goes into staging only.")
    if region not in REGIONS:
        raise ReleaseRefused(f"Unknown region {region!r}; known: {', '.join(sorted(REGIONS))}.")
    if not 1 <= count <= 1_000_000:
        raise ReleaseRefused("Choose between 1 and 1,000,000 members.")
    rng = random.Random(f"{seed}:{region}")  # noqa: S311 - mock data, not secrets
    domain = sink_domain()
    made = 0
    with transaction.atomic():
        for start in range(0, count, 1000):
            batch = []
            for i in range(start, min(count, start + 1000)):
                first = rng.choice(pseudonyms.FIRST_NAMES)
                last = rng.choice(pseudonyms.LAST_NAMES)
                batch.append(
                    Member(
                        environment=environment,
                        first_name=first,
                        last_name=last,
                        email=f"{first}.{last}.{seed}-{i}@{domain}".lower(),
                        external_id=f"MOCK-{seed}-{i:07d}",
                        is_test=rng.random() < 0.05,
                        enrollment=rng.choices(list(Member.Enrollment.values), weights=[3, 6, 1])[
                            0
                        ],
                    )
                )
            Member._base_manager.bulk_create(batch, ignore_conflicts=True)
            made += len(batch)
            if progress:
                progress(made, count)
    return made
