"""deploy/: the compose file and the Kubernetes manifests agree with the server and the
nginx template (probes, the template's variables, settings that exist)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tiler.settings import Settings

yaml = pytest.importorskip("yaml")

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
VARIABLES = set(re.findall(r"\$\{([A-Z_]+)\}", (DEPLOY / "nginx/tiler.conf.template").read_text()))


def _docs(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def _known(env: dict[str, str]) -> None:
    fields = {f"TILER_{name.upper()}" for name in Settings.model_fields} | {
        "TILER_HOST",
        "TILER_PORT",
        "TILER_WORKERS",
        "DATABASE_URL",
        "FORWARDED_ALLOW_IPS",
    }
    assert set(env) <= fields, set(env) - fields


def test_kubernetes_probes_settings_and_nginx_variables() -> None:
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _docs("k8s/tiler.yaml")}
    deployment = docs[("Deployment", "qualitymosaic")]
    assert deployment["spec"]["replicas"] >= 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["resources"]["limits"]["cpu"]
    settings = docs[("ConfigMap", "qualitymosaic")]["data"]
    _known(settings)
    assert settings["TILER_WORKERS"] == str(container["resources"]["limits"]["cpu"])
    Settings(
        **{
            k.removeprefix("TILER_").lower(): v
            for k, v in settings.items()
            if k.startswith("TILER_") and k not in ("TILER_HOST", "TILER_PORT", "TILER_WORKERS")
        }
    )
    assert ("Service", "qualitymosaic") in docs
    nginx = next(d for d in _docs("k8s/nginx.yaml") if d["kind"] == "Deployment")
    env = {e["name"] for e in nginx["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env == VARIABLES


def test_compose_services_and_nginx_variables() -> None:
    compose = _docs("docker-compose.yml")[0]
    assert set(compose["services"]) == {"pgstac", "tiler", "nginx"}
    _known(compose["services"]["tiler"]["environment"])
    assert set(compose["services"]["nginx"]["environment"]) == VARIABLES
    assert "/healthz" in " ".join(compose["services"]["tiler"]["healthcheck"]["test"])
