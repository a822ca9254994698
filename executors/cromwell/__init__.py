"""The Cromwell executor: ``client`` talks to Cromwell's REST API, ``executor`` runs jobs on it."""

from .client import CromwellClient, CromwellError
from .executor import (
    CromwellExecutor,
    _call_attempts,
    _failing_calls,
    _is_uri,
    _root_cause,
    check_options,
    options_from_environment,
    run_state,
)

__all__ = [
    "CromwellClient",
    "CromwellError",
    "CromwellExecutor",
    "_call_attempts",
    "_failing_calls",
    "_is_uri",
    "_root_cause",
    "check_options",
    "options_from_environment",
    "run_state",
]
