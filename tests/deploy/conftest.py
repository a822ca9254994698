"""The deployment tests (``make test-deploy``; ``make test`` leaves tests/deploy out): one
provisioned host per session, shared by every test that asks for it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.deploy.host import Host, provisioned_host


@pytest.fixture(scope="session")
def deployed_host() -> Iterator[Host]:
    """A Debian bookworm container (systemd as init) provisioned by deploy/provision.sh, with
    the host's Docker engine for jobs; removed at the end of the session."""
    with provisioned_host() as host:
        yield host
