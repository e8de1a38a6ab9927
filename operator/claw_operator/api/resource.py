"""Names of the ClawInstance resource, fixed by the contract (clawinstance-api.md)."""

from typing import Final

GROUP: Final = "claw.dev"
VERSION: Final = "v1alpha1"
API_VERSION: Final = f"{GROUP}/{VERSION}"
KIND: Final = "ClawInstance"
PLURAL: Final = "clawinstances"
SINGULAR: Final = "clawinstance"
SHORT_NAME: Final = "claw"
CATEGORY: Final = "claw"

FINALIZER: Final = "claw.dev/finalizer"
PAUSED_ANNOTATION: Final = "claw.dev/paused"
RECONCILE_REQUEST_ANNOTATION: Final = "claw.dev/reconcile-requested-at"
