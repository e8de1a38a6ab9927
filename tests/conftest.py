"""Shared test helpers: repository paths and the committed CRD."""

from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CRD_PATH = REPO / "crds" / "clawinstances.yaml"
EXAMPLES = REPO / "examples"


def load_crd() -> dict[str, Any]:
    crd: dict[str, Any] = yaml.safe_load(CRD_PATH.read_text())
    return crd


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    return load_crd()


@pytest.fixture(scope="session")
def crd_schema(crd: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema
