"""The plugin's exit codes: what a script can rely on (`kubectl claw --help` lists them)."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the Kubernetes API refused or failed the call (RBAC, unreachable, a bad patch)
    USAGE = 2  # bad flags or arguments (argparse's own code)
    NOT_FOUND = 3  # no such ClawInstance (or no such Secret for --fly-token-secret)
    CONFIG = 4  # no usable kubeconfig / cluster configuration, or the CRD is not installed


EXIT_CODES_HELP = """exit codes:
  0  done
  1  the Kubernetes API refused or failed the call (RBAC, unreachable, ...)
  2  bad usage (flags, arguments)
  3  no such ClawInstance (or no such Secret for --fly-token-secret)
  4  no usable kubeconfig or cluster, or the ClawInstance CRD is not installed"""


class PluginError(Exception):
    """Ends the command with one line on stderr and `code` (never a traceback)."""

    def __init__(self, code: ExitCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
