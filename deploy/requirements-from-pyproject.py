"""Print the pinned runtime requirements of pyproject.toml, one a line, plus those of the optional
extras named in argv[2] (comma-separated); deploy/Dockerfile installs exactly these.

    python3 deploy/requirements-from-pyproject.py pyproject.toml [redis]
"""

import sys
import tomllib


def requirements(pyproject: str, extras: str) -> list[str]:
    with open(pyproject, "rb") as handle:
        project = tomllib.load(handle)["project"]
    found = list(project["dependencies"])
    optional = project.get("optional-dependencies", {})
    for extra in filter(None, (name.strip() for name in extras.split(","))):
        if extra == "dev" or extra not in optional:
            sys.exit(f"no runtime extra {extra!r} in {pyproject} (have: {sorted(optional)})")
        found += optional[extra]
    return found


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "")))
