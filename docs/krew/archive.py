"""Build the krew archive of `kubectl claw` reproducibly, and pin its sha256 in claw.yaml.

    python docs/krew/archive.py            # writes dist/kubectl-claw.tar.gz, updates claw.yaml
    python docs/krew/archive.py --check    # fails when claw.yaml's sha256 is stale

The archive holds the shim (`kubectl-claw`) and the LICENSE-free README line krew shows; its
bytes depend only on the shim's content (fixed mtime, owner and gzip header), so the sha256 in
the manifest can be checked by the test suite.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import re
import sys
import tarfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
SHIM = HERE / "kubectl-claw"
MANIFEST = HERE / "claw.yaml"
ARCHIVE = REPO / "dist" / "kubectl-claw.tar.gz"


def archive_bytes() -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        data = SHIM.read_bytes()
        info = tarfile.TarInfo("kubectl-claw")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def sha256() -> str:
    return hashlib.sha256(archive_bytes()).hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="only check claw.yaml's sha256")
    args = parser.parse_args()
    digest = sha256()
    text = MANIFEST.read_text()
    pinned = re.findall(r"sha256: ([0-9a-f]{64})", text)
    if args.check:
        if pinned and all(p == digest for p in pinned):
            return 0
        sys.stderr.write(
            f"docs/krew/claw.yaml: sha256 is stale ({digest}); run python docs/krew/archive.py\n"
        )
        return 1
    ARCHIVE.parent.mkdir(exist_ok=True)
    ARCHIVE.write_bytes(archive_bytes())
    MANIFEST.write_text(re.sub(r"sha256: [0-9a-f]{64}", f"sha256: {digest}", text))
    sys.stdout.write(f"{ARCHIVE.relative_to(REPO)}  sha256 {digest}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
