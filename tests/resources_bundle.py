"""The small district (tests/bundles.py) with the Resources service's files: four resources,
used by classes k1 and k2, course c2, and the people u1 (in k1) and u2 (in k2)."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from bundles import small_district, write_bundle


def resources_district() -> dict[str, list[dict[str, str]]]:
    """The small district's files plus resources, classResources, courseResources and
    userResources."""
    files = small_district()
    files["resources"] = [
        {"sourcedId": "res-math", "vendorResourceId": "V-MATH", "title": "Math Games",
         "roles": "student,teacher", "importance": "primary", "vendorId": "acme",
         "applicationId": "games"},
        {"sourcedId": "res-bio", "vendorResourceId": "V-BIO", "title": "Cell Atlas",
         "importance": "secondary"},
        {"sourcedId": "res-lab", "vendorResourceId": "V-LAB", "title": "Virtual Lab"},
        {"sourcedId": "res-tutor", "vendorResourceId": "V-TUTOR", "roles": "student"},
    ]
    files["classResources"] = [
        {"sourcedId": "cr1", "title": "Math 3A games", "classSourcedId": "k1",
         "resourceSourcedId": "res-math"},
        {"sourcedId": "cr2", "classSourcedId": "k2", "resourceSourcedId": "res-bio"},
    ]
    files["courseResources"] = [
        {"sourcedId": "cor1", "title": "Biology lab", "courseSourcedId": "c2",
         "resourceSourcedId": "res-lab"},
    ]
    files["userResources"] = [
        {"sourcedId": "ur1", "userSourcedId": "u1", "classSourcedId": "k1",
         "resourceSourcedId": "res-tutor"},
        {"sourcedId": "ur2", "userSourcedId": "u2", "orgSourcedId": "s2",
         "resourceSourcedId": "res-tutor"},
    ]
    return files


def import_resources_district(load_bundle: Callable[[Path], None], directory: Path) -> dict:
    """Write :func:`resources_district` into ``directory`` and import it with ``load_bundle``
    (the fixture of tests/http/conftest.py); returns the rows."""
    rows = resources_district()
    load_bundle(write_bundle(directory / "resources", rows))
    return rows
