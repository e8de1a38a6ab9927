"""kubesim's fixtures, for the contract tests with real clients."""

from tests.fixtures.kubesim import kubesim, kubesim_thread

__all__ = ["kubesim", "kubesim_thread"]
