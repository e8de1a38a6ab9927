"""Start-up checks: every misconfiguration named in one line with its fix, never a traceback.

Run once before kopf starts. What cannot heal by waiting — no usable kubeconfig, the CRD not
installed, RBAC forbidding the list — ends the process (`StartupError`, exit 2, one line).
What can heal — an apiserver or a Fly API that does not answer yet — is retried with backoff,
one clear log line per attempt, while `/readyz` keeps failing. A token Fly refuses is logged
as an error with its fix and the operator goes on: every instance then reports
`Stalled=True/Unauthorized` and recovers by itself once Fly accepts the token (the contract's
behaviour, which the status must keep showing).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from claw_operator.api import GROUP, KIND, PLURAL, VERSION
from claw_operator.fly import (
    FlyClientConfig,
    FlyError,
    FlyMachinesClient,
    Forbidden,
    NotFound,
    RetryPolicy,
    Unauthorized,
)
from claw_operator.kube.config import OperatorConfig

logger = logging.getLogger("claw_operator.preflight")

# The app listed to ask Fly whether it accepts the token, when there is no default app.
PROBE_APP = "claw-operator-token-check"
BACKOFF_START, BACKOFF_CAP = 2.0, 30.0


class StartupError(Exception):
    """The operator cannot start: the message names the problem and the fix (one line)."""


class _Retry(Exception):
    """Not there yet (the message says what); worth waiting for."""


def _stopping(stop_flag: asyncio.Event | threading.Event | None) -> bool:
    return stop_flag is not None and stop_flag.is_set()


def _api_message(exc: ApiException) -> str:
    try:
        return str(json.loads(exc.body or "").get("message") or exc.reason)
    except (ValueError, TypeError, AttributeError):
        return str(exc.reason)


def _check_kubernetes(api_client: client.ApiClient, namespaces: tuple[str, ...]) -> None:
    custom = client.CustomObjectsApi(api_client)
    server = api_client.configuration.host
    scopes: list[str | None] = list(namespaces) or [None]
    for namespace in scopes:
        where = f"in namespace {namespace}" if namespace else "cluster-wide"
        try:
            if namespace is None:
                custom.list_cluster_custom_object(GROUP, VERSION, PLURAL, limit=1, _request_timeout=10)
            else:
                custom.list_namespaced_custom_object(
                    GROUP, VERSION, namespace, PLURAL, limit=1, _request_timeout=10
                )
        except ApiException as exc:
            if exc.status == 404:
                raise StartupError(
                    f"the {KIND} CRD ({PLURAL}.{GROUP}) is not installed at {server}: "
                    "kubectl apply -f crds/clawinstances.yaml (or install the Helm chart)"
                ) from exc
            if exc.status == 401:
                raise StartupError(
                    f"the Kubernetes API at {server} rejects our credentials (401): "
                    "fix the kubeconfig's user, or the pod's ServiceAccount token"
                ) from exc
            if exc.status == 403:
                raise StartupError(
                    f"RBAC forbids listing {PLURAL}.{GROUP} {where} ({_api_message(exc)}): grant get, "
                    "list, watch and patch on them (the chart's ClusterRole/Role does)"
                ) from exc
            if exc.status >= 500:
                raise _Retry(f"the Kubernetes API at {server} answers {exc.status}") from exc
            raise StartupError(
                f"listing {PLURAL}.{GROUP} {where} failed: {exc.status} {_api_message(exc)}"
            ) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _Retry(f"cannot reach the Kubernetes API at {server} ({type(exc).__name__})") from exc


async def _check_fly(config: OperatorConfig) -> None:
    fly = FlyMachinesClient(
        FlyClientConfig(
            token=config.fly_token,
            base_url=config.fly_api_url,
            retry=RetryPolicy(attempts=1, timeout=15.0),
            user_agent="claw-operator-preflight",
        )
    )
    app = config.default_app or PROBE_APP
    try:
        await fly.get_app(app)
    except (Unauthorized, Forbidden) as exc:
        if isinstance(exc, Forbidden) and config.default_app is None:
            return  # a token that may not read the probe app may still run the real ones
        logger.error(
            "Fly refuses the token at %s (%s): set a valid FLY_API_TOKEN (the chart's flyToken Secret; "
            "fly tokens create deploy -a APP); instances report Stalled=Unauthorized until Fly accepts it",
            config.fly_api_url,
            exc.status,
        )
    except NotFound:
        if config.default_app is not None:
            logger.error(
                "Fly has no app %r (--default-app) at %s: create it (fly apps create %s) or fix the flag",
                app,
                config.fly_api_url,
                app,
            )
    except FlyError as exc:
        if exc.status is None or exc.status >= 500 or exc.status == 429:
            raise _Retry(f"the Fly API at {config.fly_api_url} does not answer ({exc})") from exc
        logger.error("the Fly API at %s answers %s: %s", config.fly_api_url, exc.status, exc)
    finally:
        await fly.aclose()


async def check_startup(
    api_client: client.ApiClient,
    config: OperatorConfig,
    stop_flag: asyncio.Event | threading.Event | None = None,
) -> bool:
    """True once Kubernetes and Fly are usable; False when stopped while waiting for them.

    Raises `StartupError` for what waiting cannot fix.
    """
    delay = BACKOFF_START
    while not _stopping(stop_flag):
        try:
            await asyncio.to_thread(_check_kubernetes, api_client, config.namespaces)
            await _check_fly(config)
            return True
        except _Retry as problem:
            logger.error("%s; retrying in %.0fs (/readyz fails meanwhile)", problem, delay)
        waited = 0.0
        while waited < delay and not _stopping(stop_flag):
            await asyncio.sleep(0.2)
            waited += 0.2
        delay = min(BACKOFF_CAP, delay * 2)
    return False


def describe_kubeconfig_error(exc: Exception, kubeconfig: str | None) -> StartupError:
    where = (
        f"--kubeconfig {kubeconfig}" if kubeconfig else "the in-cluster config, $KUBECONFIG or ~/.kube/config"
    )
    detail = " ".join(str(exc).split())  # one line, whatever the parser said
    return StartupError(
        f"no usable Kubernetes configuration ({where}): {detail}; pass --kubeconfig PATH, set KUBECONFIG, "
        "or run in a pod with a ServiceAccount"
    )
