"""HTTPS for kubesim: a self-signed certificate made at start, which the kubeconfig carries as its
certificate authority, for clients that refuse plain HTTP.

The certificate comes from the `openssl` command (no Python dependency for a sandbox feature);
kubesim says so plainly when it is missing rather than falling back to HTTP.
"""

from __future__ import annotations

import base64
import shutil
import ssl
import subprocess
from dataclasses import dataclass
from pathlib import Path


class TlsUnavailable(RuntimeError):
    """The self-signed certificate cannot be made here."""


@dataclass(frozen=True)
class Certificate:
    cert_path: Path
    key_path: Path

    @property
    def pem(self) -> bytes:
        return self.cert_path.read_bytes()

    @property
    def authority_data(self) -> str:
        """The certificate as a kubeconfig's `certificate-authority-data` (base64 of the PEM)."""
        return base64.b64encode(self.pem).decode()

    def server_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_path, self.key_path)
        return context


def self_signed(directory: Path, host: str) -> Certificate:
    """A one-year self-signed certificate for `host`, localhost and 127.0.0.1, in `directory`."""
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsUnavailable("kubesim --tls needs the openssl command to make its certificate")
    directory.mkdir(parents=True, exist_ok=True)
    cert, key = directory / "kubesim.crt", directory / "kubesim.key"
    names = {"DNS:localhost", "IP:127.0.0.1"}
    if host not in ("", "0.0.0.0", "::"):
        names.add(f"IP:{host}" if host.replace(".", "").isdigit() or ":" in host else f"DNS:{host}")
    command = [
        openssl,
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-sha256",
        "-days",
        "365",
        "-subj",
        "/CN=kubesim",
        "-addext",
        "subjectAltName=" + ",".join(sorted(names)),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,digitalSignature,keyEncipherment,keyCertSign",
        "-addext",
        "extendedKeyUsage=serverAuth",
        "-keyout",
        str(key),
        "-out",
        str(cert),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise TlsUnavailable(f"openssl could not make kubesim's certificate: {result.stderr.strip()}")
    key.chmod(0o600)
    return Certificate(cert, key)
