"""requirements.lock, from which `make install`, CI and the app image install: it pins every
dependency pyproject.toml names (runtime, `dev` and `aliyun`) to a version that satisfies it.
After a change of pyproject.toml's dependencies, regenerate it (README.md, "Deploy")."""

import tomllib

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.support.processes import ROOT


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "requirements.lock").read_text().splitlines():
        if line and not line.startswith((" ", "#", "-")):
            name, _, version = line.partition("==")
            found[canonicalize_name(name)] = Version(version.strip())
    return found


def test_every_dependency_of_pyproject_is_pinned_to_a_version_it_accepts() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = [Requirement(r) for r in project["dependencies"]]
    declared += [Requirement(r) for extra in ("dev", "aliyun") for r in project["optional-dependencies"][extra]]
    locked = pins()
    unpinned = [str(r) for r in declared if canonicalize_name(r.name) not in locked]
    versions = {str(r): (r, locked[canonicalize_name(r.name)]) for r in declared if canonicalize_name(r.name) in locked}
    refused = [f"{name} (locked {version})" for name, (r, version) in versions.items() if version not in r.specifier]
    assert unpinned == []
    assert refused == []
