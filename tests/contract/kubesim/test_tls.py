"""Issue 15, finding 9: kubesim over HTTPS with a self-signed certificate that the kubeconfig
carries, for clients that insist on TLS — each verifying it, none told to skip verification."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import kopf
import pytest
import yaml
from kubernetes import client, config

from claw_operator.sim.kubesim import KubeSimThread, run_in_thread
from tests.fixtures.kubesim import crds_directory, fast_kubesim

from .kubectl import Kubectl, requires_kubectl
from .test_kopf import claw, eventually, operator_settings


@pytest.fixture
def tls_kubesim(tmp_path: Path) -> Iterator[KubeSimThread]:
    sim = fast_kubesim()
    sim.tls = True
    runner = KubeSimThread(sim, crds=crds_directory(), kubeconfig=tmp_path / "kubeconfig")
    runner.start()
    try:
        assert runner.base_url.startswith("https://"), "every test here must go over TLS"
        yield runner
    finally:
        runner.stop()


def test_the_kubeconfig_carries_the_certificate_and_http_is_not_served(tls_kubesim: KubeSimThread) -> None:
    assert tls_kubesim.base_url.startswith("https://127.0.0.1:")
    assert tls_kubesim.kubeconfig is not None
    cluster = yaml.safe_load(tls_kubesim.kubeconfig.read_text())["clusters"][0]["cluster"]
    assert cluster["server"] == tls_kubesim.base_url and cluster["certificate-authority-data"]
    with pytest.raises(httpx.HTTPError):
        httpx.get(tls_kubesim.base_url.replace("https://", "http://") + "/version", timeout=2)
    with pytest.raises(httpx.ConnectError):  # not trusted without the kubeconfig's authority
        httpx.get(tls_kubesim.base_url + "/version", timeout=2)


@requires_kubectl
def test_kubectl_verifies_and_uses_the_certificate(tls_kubesim: KubeSimThread, tmp_path: Path) -> None:
    assert tls_kubesim.kubeconfig is not None
    kubectl = Kubectl(tls_kubesim.kubeconfig, tmp_path / "kube-cache")
    assert "default" in kubectl.run("get", "namespaces").stdout
    kubectl.run("apply", "-f", "-", stdin=yaml.safe_dump(claw("over-tls")))
    assert kubectl.json("get", "claw", "over-tls")["metadata"]["uid"]


def test_the_kubernetes_client_verifies_the_certificate(tls_kubesim: KubeSimThread) -> None:
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(tls_kubesim.kubeconfig), client_configuration=configuration)
    assert configuration.verify_ssl
    with client.ApiClient(configuration) as api:
        names = [ns.metadata.name for ns in client.CoreV1Api(api).list_namespace().items]
    assert "default" in names


async def test_kopf_connects_with_the_certificate(tls_kubesim: KubeSimThread) -> None:
    registry = kopf.OperatorRegistry()

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(**tls_kubesim.connection())

    @kopf.on.create("claw.dev", "v1alpha1", "clawinstances", registry=registry)
    def created(patch: kopf.Patch, **_: Any) -> None:
        patch.status["phase"] = "Provisioned"

    task = asyncio.create_task(
        kopf.operator(registry=registry, settings=operator_settings(), standalone=True, clusterwide=True)
    )
    try:
        tls_kubesim.create(claw("a"))
        await eventually(
            lambda: (
                (
                    (tls_kubesim.get("claw.dev/v1alpha1", "ClawInstance", "a", "default") or {}).get("status")
                    or {}
                ).get("phase")
                == "Provisioned"
            )
        )
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_run_in_thread_takes_the_tls_option(tmp_path: Path) -> None:
    with run_in_thread(tls=True, kubeconfig=tmp_path / "kubeconfig") as kubesim:
        assert kubesim.base_url.startswith("https://")
        assert kubesim.sim.certificate is not None
        pem = kubesim.sim.certificate.pem
        answer = httpx.get(kubesim.base_url + "/version", verify=_context(pem), timeout=5)
        assert answer.json()["major"] == "1"


def _context(pem: bytes) -> Any:
    import ssl

    context = ssl.create_default_context()
    context.load_verify_locations(cadata=pem.decode())
    return context
