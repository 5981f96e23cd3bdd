"""The deployment artefacts against the code they run.

Every kustomization under deploy/k8s is rendered with `kubectl kustomize` and checked: valid for the
Kubernetes API, ports, commands and settings that agree with the servers and pyproject.toml, pods that
run unprivileged, migrations before new pods, replication in production, NetworkPolicies that let
through what the services need and nothing else, no secret values outside the dev overlay. The
Dockerfile is parsed line by line (no docker engine needed).
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from services.console.config import DEFAULT_CONSOLE_PORT
from services.runtime.config import DEFAULT_METRICS_PORTS, DEFAULT_PORTS
from services.runtime.server import LIVENESS
from services.users.config import DEFAULT_SCIM_PORT

# The oldest Kubernetes API the manifests must be valid for (kubernetes-validate carries its schemas).
KUBERNETES_VERSION = "1.32.0"

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
BASE, DEV, PROD = "base", "overlays/dev", "overlays/prod"
KUSTOMIZATIONS = (BASE, DEV, PROD)
SERVICES = tuple(DEFAULT_PORTS)
# Kinds whose pods run the Steward image. The dev overlay's PostgreSQL (a StatefulSet, the official
# image with its own entrypoint) is left out of the command checks but not out of the security ones.
STEWARD_WORKLOADS = ("Deployment", "Job")
WORKLOADS = ("Deployment", "StatefulSet", "Job")
AUTOSCALED = ("users", "rules")
# Secrets the operator creates (deploy/k8s/README.md): name -> key.
OPERATOR_SECRETS = {
    "steward-jwt": "secret",
    "steward-secrets-keys": "keys",
    "steward-console-oidc": "client-secret",  # optional: only with OIDC sign-in
    **{f"steward-{svc}-db": "url" for svc in SERVICES},
}
PUBLIC_IP = "13.110.54.1"  # somewhere on the internet (a Salesforce instance, say)
PRIVATE_IPS = ("10.0.0.7", "172.20.0.7", "192.168.1.7", "169.254.169.254")
DATABASE_IP = "10.20.30.40"  # an external PostgreSQL inside the VPC

pytestmark = pytest.mark.skipif(
    shutil.which("kubectl") is None, reason="kubectl is not on PATH: the kustomizations cannot be rendered"
)

Obj = dict[str, Any]


# --- rendering and lookups ---------------------------------------------------------------------


@functools.cache
def render(kustomization: str) -> tuple[Obj, ...]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / kustomization)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {kustomization} failed:\n{result.stderr}"
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def of_kind(objs: tuple[Obj, ...], *kinds: str) -> list[Obj]:
    return [obj for obj in objs if obj["kind"] in kinds]


def named(objs: tuple[Obj, ...], kind: str, name: str) -> Obj:
    found = [obj for obj in of_kind(objs, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def ident(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def pod_spec(workload: Obj) -> Obj:
    spec: Obj = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Obj) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"].get("labels", {})
    return labels


def all_containers(spec: Obj) -> list[Obj]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def deployment(objs: tuple[Obj, ...], service: str) -> Obj:
    return named(objs, "Deployment", f"steward-{service}")


def server_container(objs: tuple[Obj, ...], service: str) -> Obj:
    containers = [c for c in pod_spec(deployment(objs, service))["containers"] if c["name"] == service]
    assert len(containers) == 1, f"Deployment steward-{service} has no container named {service}"
    return containers[0]


def port_named(container: Obj, name: str) -> int:
    ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
    assert name in ports, f"container {container['name']} has no port named {name!r}"
    port: int = ports[name]
    return port


def env_of(objs: tuple[Obj, ...], container: Obj) -> dict[str, str | None]:
    """The container's environment: ConfigMaps of envFrom, then env (None where the value is a secret)."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            env.update(named(objs, "ConfigMap", source["configMapRef"]["name"]).get("data", {}))
    for var in container.get("env", []):
        env[var["name"]] = var.get("value")
    return env


def secret_ref(container: Obj, variable: str) -> tuple[str, str]:
    for var in container.get("env", []):
        if var["name"] == variable:
            ref = var.get("valueFrom", {}).get("secretKeyRef")
            assert ref, f"{container['name']}: {variable} must come from a Secret"
            return ref["name"], ref["key"]
    raise AssertionError(f"{container['name']} does not set {variable}")


def command_of(container: Obj) -> list[str]:
    command: list[str] = [*container.get("command", []), *container.get("args", [])]
    return command


def steward_containers(objs: tuple[Obj, ...]) -> Iterator[tuple[str, Obj]]:
    """(where, container) of every container and init container running the Steward image."""
    for workload in of_kind(objs, *STEWARD_WORKLOADS):
        for container in all_containers(pod_spec(workload)):
            yield f"{ident(workload)} container {container['name']}", container


def console_scripts() -> dict[str, str]:
    scripts: dict[str, str] = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    return scripts


def matches(selector: Obj, labels: dict[str, str]) -> bool:
    """A Kubernetes label selector (matchLabels and matchExpressions); {} selects everything."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator, values = expression["key"], expression["operator"], expression.get("values", [])
        ok = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not ok:
            return False
    return True


def minimum_replicas(objs: tuple[Obj, ...], workload: Obj) -> int:
    """The fewest pods a workload runs: its autoscaler's minReplicas, else its replicas."""
    for hpa in of_kind(objs, "HorizontalPodAutoscaler"):
        if hpa["spec"]["scaleTargetRef"]["name"] == workload["metadata"]["name"]:
            return int(hpa["spec"].get("minReplicas", 1))
    return int(workload["spec"].get("replicas", 1))


def replicas_disruptable(pdb: Obj, replicas: int) -> int:
    """How many of `replicas` pods the PodDisruptionBudget lets a drain evict at once (integers only)."""
    spec = pdb["spec"]
    if "maxUnavailable" in spec:
        assert isinstance(spec["maxUnavailable"], int), "use an integer maxUnavailable"
        return min(int(spec["maxUnavailable"]), replicas)
    assert isinstance(spec.get("minAvailable"), int), "use an integer minAvailable or maxUnavailable"
    return max(replicas - int(spec["minAvailable"]), 0)


# --- a small NetworkPolicy evaluator -----------------------------------------------------------


@dataclass
class Pod:
    name: str
    namespace: str
    labels: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    ip: str = "10.244.3.17"  # pod addresses are cluster-private; ipBlocks are matched against this one

    @property
    def namespace_labels(self) -> dict[str, str]:
        return {"kubernetes.io/metadata.name": self.namespace}


def namespace_of(objs: tuple[Obj, ...]) -> str:
    namespaces = {obj["metadata"].get("namespace", "default") for obj in objs if obj["kind"] != "Namespace"}
    assert len(namespaces) == 1, f"everything goes to one namespace, found {namespaces}"
    return namespaces.pop()


def workload_pods(objs: tuple[Obj, ...]) -> list[Pod]:
    namespace = namespace_of(objs)
    return [
        Pod(
            ident(w),
            namespace,
            pod_labels(w),
            {
                p["name"]: p["containerPort"]
                for c in pod_spec(w)["containers"]
                for p in c.get("ports", [])
                if "name" in p
            },
        )
        for w in of_kind(objs, *WORKLOADS)
    ]


def pod(objs: tuple[Obj, ...], kind: str, name: str) -> Pod:
    return next(p for p in workload_pods(objs) if p.name == f"{kind}/{name}")


def outsiders(objs: tuple[Obj, ...]) -> list[Pod]:
    """Pods that are not Steward's: labelled clients and unlabelled pods, here and elsewhere; Prometheus."""
    here = namespace_of(objs)
    client = {"steward.io/client": "true", "app": "billing"}
    return [
        Pod("client in another namespace", "billing", client),
        Pod("client in this namespace", here, client),
        Pod("unlabelled pod in another namespace", "billing", {"app": "billing"}),
        Pod("unlabelled pod in this namespace", here, {"app": "billing"}),
        Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
        Pod("ingress controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
        Pod("otel collector", "observability", {"app.kubernetes.io/name": "opentelemetry-collector"}),
    ]


def policies_for(objs: tuple[Obj, ...], target: Pod, direction: str) -> list[Obj]:
    return [
        policy
        for policy in of_kind(objs, "NetworkPolicy")
        if policy["metadata"].get("namespace", "default") == target.namespace
        and direction in policy["spec"].get("policyTypes", ["Ingress"])
        and matches(policy["spec"]["podSelector"], target.labels)
    ]


def peer_matches(peer: Obj, policy_namespace: str, other: Pod) -> bool:
    if "ipBlock" in peer:
        return ip_matches(peer, other.ip)
    if "namespaceSelector" in peer:
        in_namespace = matches(peer["namespaceSelector"], other.namespace_labels)
    else:
        in_namespace = other.namespace == policy_namespace
    return in_namespace and matches(peer.get("podSelector", {}), other.labels)


def ip_matches(peer: Obj, ip: str) -> bool:
    block = peer.get("ipBlock")
    if block is None:
        return False
    address = ipaddress.ip_address(ip)
    return address in ipaddress.ip_network(block["cidr"]) and not any(
        address in ipaddress.ip_network(excluded) for excluded in block.get("except", [])
    )


def ports_allow(rule: Obj, port: int, protocol: str, named_ports: dict[str, int]) -> bool:
    if not rule.get("ports"):
        return True
    for entry in rule["ports"]:
        if entry.get("protocol", "TCP") != protocol:
            continue
        if "port" not in entry:
            return True
        number = named_ports.get(entry["port"]) if isinstance(entry["port"], str) else entry["port"]
        if number is not None and number <= port <= entry.get("endPort", number):
            return True
    return False


def ingress_allowed(objs: tuple[Obj, ...], source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    policies = policies_for(objs, target, "Ingress")
    return not policies or any(
        ports_allow(rule, port, protocol, target.ports)
        and (not rule.get("from") or any(peer_matches(p, target.namespace, source) for p in rule["from"]))
        for policy in policies
        for rule in policy["spec"].get("ingress", [])
    )


def egress_allowed(objs: tuple[Obj, ...], source: Pod, to: Pod | str, port: int, protocol: str = "TCP") -> bool:
    """Whether `source` may open a connection to a pod or an IP address on `port`."""
    policies = policies_for(objs, source, "Egress")
    named_ports = to.ports if isinstance(to, Pod) else {}
    return not policies or any(
        ports_allow(rule, port, protocol, named_ports)
        and (
            not rule.get("to")
            or any(
                ip_matches(peer, to) if isinstance(to, str) else peer_matches(peer, source.namespace, to)
                for peer in rule["to"]
            )
        )
        for policy in policies
        for rule in policy["spec"].get("egress", [])
    )


def connects(objs: tuple[Obj, ...], source: Pod, target: Pod, port: int, protocol: str = "TCP") -> bool:
    return egress_allowed(objs, source, target, port, protocol) and ingress_allowed(
        objs, source, target, port, protocol
    )


# --- Dockerfile ---------------------------------------------------------------------------------


@dataclass
class Stage:
    image: str
    name: str
    instructions: list[tuple[str, str]]

    def all(self, instruction: str) -> list[str]:
        return [rest for name, rest in self.instructions if name == instruction]


def dockerfile_stages() -> list[Stage]:
    """Stages of the Dockerfile with their instructions: comments dropped, continuation lines joined (as docker
    does, in that order), ARG defaults substituted into FROM."""
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    text = re.sub(r"\\\n", " ", "\n".join(line for line in lines if not line.lstrip().startswith("#")))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        instruction, _, rest = line.partition(" ")
        instruction, rest = instruction.upper(), rest.strip()
        if instruction == "ARG" and not stages and "=" in rest:
            key, _, value = rest.partition("=")
            args[key] = value
        elif instruction == "FROM":
            image = re.sub(r"\$\{?(\w+)\}?", lambda m: args.get(m.group(1), m.group(0)), rest.split()[0])
            alias = rest.split()[-1] if " as " in rest.lower() else str(len(stages))
            stages.append(Stage(image, alias, []))
        else:
            assert stages, f"{instruction} before the first FROM"
            stages[-1].instructions.append((instruction, rest))
    return stages


def image_default_command() -> list[str]:
    """ENTRYPOINT, or else CMD, of the final stage (exec form)."""
    final = dockerfile_stages()[-1]
    default = final.all("ENTRYPOINT") or final.all("CMD")
    assert default, "the image needs a default command"
    command: list[str] = json.loads(default[-1])
    return command


# --- the tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_object_is_valid_for_the_kubernetes_api(kustomization: str) -> None:
    objs = render(kustomization)
    assert {"Deployment", "Service", "Job", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"} <= {
        obj["kind"] for obj in objs
    }
    errors = []
    for obj in objs:
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{ident(obj)}: {'.'.join(map(str, exc.path))}: {exc.message}")
        except kubernetes_validate.SchemaNotFoundError as exc:
            errors.append(f"{ident(obj)}: {exc.message}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_ports_probes_and_services_agree_with_the_server(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    workload = deployment(objs, service)
    container = server_container(objs, service)
    env = env_of(objs, container)
    prefix = f"STEWARD_{service.upper()}_"
    assert env.get("STEWARD_HOST") == "0.0.0.0", "the servers must listen on the pod's address"

    grpc = port_named(container, "grpc")
    assert grpc == DEFAULT_PORTS[service] == int(env.get(prefix + "PORT") or grpc)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["grpc"]["port"] == grpc, f"{probe} must ask grpc.health.v1 on the gRPC port"
    # Readiness asks the overall status (database, schema, draining); liveness the process only.
    assert container["readinessProbe"]["grpc"].get("service", "") == ""
    assert container["livenessProbe"]["grpc"].get("service") == LIVENESS

    metrics = port_named(container, "metrics")
    annotations = workload["spec"]["template"]["metadata"].get("annotations", {})
    assert metrics == DEFAULT_METRICS_PORTS[service] == int(env.get(prefix + "METRICS_PORT") or metrics)
    assert annotations.get("prometheus.io/scrape") == "true"
    assert annotations.get("prometheus.io/port") == str(metrics)
    assert annotations.get("prometheus.io/path") == "/metrics"

    svc = named(objs, "Service", f"steward-{service}")
    assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
    assert matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(workload))
    for job in of_kind(objs, "Job"):
        assert not matches({"matchLabels": svc["spec"]["selector"]}, pod_labels(job)), (
            f"{ident(svc)} selects {ident(job)}"
        )
    ports = {p["name"]: p for p in svc["spec"]["ports"]}
    assert ports["grpc"].get("appProtocol") == "grpc"
    for name, number in (("grpc", grpc), ("metrics", metrics)):
        target = ports[name].get("targetPort", ports[name]["port"])
        assert (port_named(container, target) if isinstance(target, str) else target) == number


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", [s for s in SERVICES if s != "users"])
def test_rules_and_sync_reach_the_users_service(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    address = env_of(objs, server_container(objs, service)).get("STEWARD_USERS_ADDRESS")
    assert address, f"{service} must be told where the users service is"
    # dns:/// + a headless Service: the client's round_robin sees every users pod.
    assert address.startswith("dns:///"), f"{address}: a ClusterIP would pin each client to one users pod"
    host, _, port = address.removeprefix("dns:///").rpartition(":")
    users = named(objs, "Service", host)
    assert users["spec"].get("clusterIP") == "None", f"{host} must be headless"
    grpc = next(p for p in users["spec"]["ports"] if p["name"] == "grpc")
    assert int(port) == grpc["port"]
    assert matches({"matchLabels": users["spec"]["selector"]}, pod_labels(deployment(objs, "users")))


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_every_command_is_a_declared_console_script(kustomization: str) -> None:
    scripts = console_scripts()
    for where, container in steward_containers(render(kustomization)):
        command = command_of(container)
        # Without a command a container would run the image's default (the users server).
        assert len(command) >= 2, f"{where}: name the console script and its subcommand"
        assert command[0] in scripts, f"{where}: {command[0]} is not in pyproject.toml [project.scripts]"


def test_every_subcommand_used_exists() -> None:
    used = {tuple(command_of(c)[:2]) for k in KUSTOMIZATIONS for _, c in steward_containers(render(k))}
    used.add(tuple(image_default_command()[:2]))
    bin_dir = Path(sys.executable).parent
    missing = sorted({script for script, *_ in used if not (bin_dir / script).exists()})
    assert not missing, f"console scripts missing from {bin_dir} (run `make setup`): {missing}"

    def run_help(command: tuple[str, ...]) -> str | None:
        """None if `<script> <subcommand> --help` works, else what went wrong."""
        args = [str(bin_dir / command[0]), *command[1:], "--help"]
        result = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
        return (
            f"{' '.join(command)} --help: exit {result.returncode}\n{result.stderr[-400:]}"
            if result.returncode
            else None
        )

    # One interpreter start per (script, subcommand), in parallel: each imports the whole service.
    with ThreadPoolExecutor(max_workers=len(used)) as pool:
        failed = [problem for problem in pool.map(run_help, sorted(used)) if problem]
    assert not failed, "\n".join(failed)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_migration_job_runs_before_new_pods_serve(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    script, url = f"steward-{service}", f"STEWARD_{service.upper()}_DATABASE_URL"
    job = named(objs, "Job", f"steward-{service}-migrate")
    [migrate] = pod_spec(job)["containers"]
    assert command_of(migrate) == [script, "migrate"]
    assert job["spec"].get("backoffLimit", 6) >= 1
    assert job["spec"].get("ttlSecondsAfterFinished") is not None, "finished Jobs must be cleaned up"
    assert pod_spec(job)["restartPolicy"] in ("Never", "OnFailure")

    workload = deployment(objs, service)
    waits = [c for c in pod_spec(workload).get("initContainers", []) if command_of(c)[:2] == [script, "await-schema"]]
    assert len(waits) == 1, f"{ident(workload)} needs one init container running `{script} await-schema`"
    command = command_of(waits[0])
    assert "--timeout" in command, "await-schema must give up after a while (and be restarted)"
    timeout = float(command[command.index("--timeout") + 1])
    # A rollout that waits for the migration must not be declared failed before await-schema gives up.
    assert workload["spec"].get("progressDeadlineSeconds", 600) > timeout

    server = server_container(objs, service)
    assert command_of(server) == [script, "serve"]
    assert env_of(objs, server).get("STEWARD_MIGRATE_ON_START") == "false", "only the Job may migrate"
    # The Job migrates the very database the pods wait for and serve from.
    assert secret_ref(migrate, url) == secret_ref(waits[0], url) == secret_ref(server, url)
    assert pod_spec(job)["securityContext"] == pod_spec(workload)["securityContext"]


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_no_container_runs_as_root_or_privileged(kustomization: str) -> None:
    problems = []
    for workload in of_kind(render(kustomization), *WORKLOADS):
        spec = pod_spec(workload)
        pod_context = spec.get("securityContext", {})
        if spec.get("automountServiceAccountToken") is not False:
            problems.append(f"{ident(workload)}: mounts a service account token")
        for container in all_containers(spec):
            where = f"{ident(workload)} container {container['name']}"
            context = container.get("securityContext", {})
            effective = {**pod_context, **context}
            if effective.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is not true")
            if not isinstance(effective.get("runAsUser"), int) or effective["runAsUser"] == 0:
                problems.append(f"{where}: no numeric non-root runAsUser")
            if effective.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                problems.append(f"{where}: seccompProfile is not RuntimeDefault")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation is not false")
            if context.get("privileged"):
                problems.append(f"{where}: privileged")
            capabilities = context.get("capabilities", {})
            if "ALL" not in capabilities.get("drop", []) or capabilities.get("add"):
                problems.append(f"{where}: capabilities must drop ALL and add none")
            if context.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{where}: readOnlyRootFilesystem is not true")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    problems.append(f"{where}: {kind} must set cpu and memory")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_termination_grace_covers_the_drain(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    env = env_of(objs, server_container(objs, service))
    assert env.get("STEWARD_DRAIN_DELAY_SECONDS") and env.get("STEWARD_GRACE_SECONDS"), "set both explicitly"
    drain, grace = float(env["STEWARD_DRAIN_DELAY_SECONDS"] or 0), float(env["STEWARD_GRACE_SECONDS"] or 0)
    assert drain > 0, "without a drain delay calls still routed to a stopping pod fail"
    period = pod_spec(deployment(objs, service)).get("terminationGracePeriodSeconds", 30)
    assert period > drain + grace, f"SIGKILL after {period}s would cut the drain ({drain}s) + grace ({grace}s)"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_a_disruption_budget_that_allows_drains(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    workload = deployment(objs, service)
    budgets = [p for p in of_kind(objs, "PodDisruptionBudget") if matches(p["spec"]["selector"], pod_labels(workload))]
    assert len(budgets) == 1, f"{ident(workload)} needs exactly one PodDisruptionBudget, found {len(budgets)}"
    assert replicas_disruptable(budgets[0], max(minimum_replicas(objs, workload), 1)) >= 1, "node drains would hang"


def test_prod_is_replicated_autoscaled_and_spread() -> None:
    objs = render(PROD)
    autoscalers = {hpa["spec"]["scaleTargetRef"]["name"]: hpa for hpa in of_kind(objs, "HorizontalPodAutoscaler")}
    for service in SERVICES:
        workload = deployment(objs, service)
        name, labels = workload["metadata"]["name"], pod_labels(workload)
        if service in AUTOSCALED:
            assert name in autoscalers, f"{name} needs a HorizontalPodAutoscaler"
            target = autoscalers[name]["spec"]["scaleTargetRef"]
            assert (target["apiVersion"], target["kind"]) == ("apps/v1", "Deployment")
            assert autoscalers[name]["spec"]["maxReplicas"] >= autoscalers[name]["spec"].get("minReplicas", 1)
            # With an autoscaler, a replicas field would scale the Deployment back on every apply.
            assert "replicas" not in workload["spec"], f"{name}: the HorizontalPodAutoscaler owns replicas"
        assert minimum_replicas(objs, workload) >= 2, f"{name} must run at least two pods"

        spec = pod_spec(workload)
        anti = spec.get("affinity", {}).get("podAntiAffinity", {})
        terms = [t["podAffinityTerm"] for t in anti.get("preferredDuringSchedulingIgnoredDuringExecution", [])]
        terms += anti.get("requiredDuringSchedulingIgnoredDuringExecution", [])
        assert any(
            t["topologyKey"] == "kubernetes.io/hostname" and matches(t["labelSelector"], labels) for t in terms
        ), f"{name}: podAntiAffinity must keep its own pods on different nodes"
        assert any(matches(c["labelSelector"], labels) for c in spec.get("topologySpreadConstraints", [])), name


def test_prod_pins_one_image_for_every_service() -> None:
    images = {c["image"] for _, c in steward_containers(render(PROD))}
    assert len(images) == 1, f"one image for all services, found {images}"
    image = images.pop()
    name, _, tag = image.partition("@")[0].rpartition(":")
    assert "/" in image.split(":")[0], f"{image}: use the registry's full name"
    assert "@sha256:" in image or (name and tag and tag != "latest"), f"{image}: pin a tag or digest"


def test_dev_runs_one_replica_each_and_its_own_postgres() -> None:
    objs = render(DEV)
    for service in SERVICES:
        assert minimum_replicas(objs, deployment(objs, service)) == 1
        assert deployment(objs, service)["spec"].get("replicas") == 1
    assert not [h for h in of_kind(objs, "HorizontalPodAutoscaler") if h["spec"].get("minReplicas", 1) > 1]
    [postgres] = of_kind(objs, "StatefulSet")
    [container] = pod_spec(postgres)["containers"]
    assert re.fullmatch(r"postgres:16\.\d+(-\w+)?", container["image"]), "pin a PostgreSQL 16 release"
    assert postgres["spec"].get("volumeClaimTemplates"), "the dev database keeps its data on a volume"
    database = named(objs, "Service", postgres["spec"]["serviceName"])
    assert matches({"matchLabels": database["spec"]["selector"]}, pod_labels(postgres))
    for svc in SERVICES:
        name, key = secret_ref(server_container(objs, svc), f"STEWARD_{svc.upper()}_DATABASE_URL")
        url = urlsplit(base64.b64decode(named(objs, "Secret", name)["data"][key]).decode())
        assert (url.scheme, url.hostname, url.port) == ("postgresql+psycopg", database["metadata"]["name"], 5432)


@pytest.mark.parametrize("kustomization", [BASE, PROD])
def test_no_secret_values_are_committed(kustomization: str) -> None:
    objs = render(kustomization)
    filled = [ident(s) for s in of_kind(objs, "Secret") if s.get("data") or s.get("stringData")]
    assert not filled, f"secrets come from the operator, not from the repository: {filled}"
    readme = (K8S / "README.md").read_text()
    referenced = {
        secret_ref(c, v["name"])
        for _, c in steward_containers(objs)
        for v in c.get("env", [])
        if "secretKeyRef" in v.get("valueFrom", {})
    }
    assert referenced == set(OPERATOR_SECRETS.items()), "update OPERATOR_SECRETS and deploy/k8s/README.md"
    for name, key in referenced:
        assert name in readme and f"`{key}`" in readme, f"deploy/k8s/README.md must document Secret {name} ({key})"


def test_dev_secrets_are_generated_and_marked_dev_only() -> None:
    objs = render(DEV)
    for secret in of_kind(objs, "Secret"):
        assert secret["metadata"].get("annotations", {}).get("steward.io/dev-only") == "true", ident(secret)
    for workload in of_kind(objs, *WORKLOADS):
        for container in all_containers(pod_spec(workload)):
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref and not ref.get("optional"):  # optional ones (OIDC) are for the operator to add
                    assert ref["key"] in named(objs, "Secret", ref["name"]).get("data", {}), (
                        f"{ref} in {ident(workload)}"
                    )


# --- NetworkPolicies ----------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_network_policies_deny_by_default(kustomization: str) -> None:
    objs = render(kustomization)
    deny = [
        p
        for p in of_kind(objs, "NetworkPolicy")
        if set(p["spec"].get("policyTypes", [])) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert deny, "a NetworkPolicy denying all ingress and egress is missing"
    for candidate in workload_pods(objs):
        assert any(matches(p["spec"]["podSelector"], candidate.labels) for p in deny), f"{candidate.name} is open"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_grpc_ingress_only_from_the_expected_callers(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    target = pod(objs, "Deployment", f"steward-{service}")
    # The console reads and writes through all three.
    expected = {"client in another namespace", "client in this namespace", "Deployment/steward-console"}
    if service == "users":
        expected |= {"Deployment/steward-rules", "Deployment/steward-sync"}
    port = DEFAULT_PORTS[service]
    callers = {p.name for p in workload_pods(objs) + outsiders(objs) if ingress_allowed(objs, p, target, port)}
    assert callers == expected


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
@pytest.mark.parametrize("service", SERVICES)
def test_metrics_only_from_the_monitoring_namespace(kustomization: str, service: str) -> None:
    objs = render(kustomization)
    target = pod(objs, "Deployment", f"steward-{service}")
    port = DEFAULT_METRICS_PORTS[service]
    scrapers = {p.name for p in workload_pods(objs) + outsiders(objs) if ingress_allowed(objs, p, target, port)}
    assert scrapers == {"prometheus"}
    prometheus = next(p for p in outsiders(objs) if p.name == "prometheus")
    assert not ingress_allowed(objs, prometheus, target, DEFAULT_PORTS[service]), "Prometheus needs no gRPC"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_egress_is_what_each_service_needs(kustomization: str) -> None:
    objs = render(kustomization)
    pods = workload_pods(objs)
    users = pod(objs, "Deployment", "steward-users")
    dns = Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"})
    for p in pods:
        assert egress_allowed(objs, p, dns, 53, "UDP") and egress_allowed(objs, p, dns, 53, "TCP"), p.name
    # Only sync (Salesforce), rules (plays' webhooks) and the console (the OIDC provider) go to
    # the internet, and none to private or metadata addresses; only rules on plain HTTP.
    internet = {"Deployment/steward-sync", "Deployment/steward-rules", "Deployment/steward-console"}
    assert {p.name for p in pods if egress_allowed(objs, p, PUBLIC_IP, 443)} == internet
    assert {p.name for p in pods if egress_allowed(objs, p, PUBLIC_IP, 80)} == {"Deployment/steward-rules"}
    for name in internet:
        outbound = pod(objs, "Deployment", name.split("/")[1])
        assert not [ip for ip in PRIVATE_IPS if egress_allowed(objs, outbound, ip, 443)], name
    # rules, sync and the console call users, no other Steward pod does.
    callers = {p.name for p in pods if connects(objs, p, users, DEFAULT_PORTS["users"])}
    assert callers == {"Deployment/steward-rules", "Deployment/steward-sync", "Deployment/steward-console"}
    # Email goes out from users (invitations) and the console (sign-in links) only.
    senders = {p.name for p in pods if egress_allowed(objs, p, PUBLIC_IP, 587)}
    assert senders == {"Deployment/steward-users", "Deployment/steward-console"}
    # Every server and migration Job reaches PostgreSQL; the console (no data) does not.
    steward = [p for p in pods if p.name.split("/")[0] in STEWARD_WORKLOADS and p.name != "Deployment/steward-console"]
    assert len(steward) == 2 * len(SERVICES)
    postgres = of_kind(objs, "StatefulSet")
    if postgres:
        database = pod(objs, "StatefulSet", postgres[0]["metadata"]["name"])
        assert {p.name for p in pods + outsiders(objs) if connects(objs, p, database, 5432)} == {
            p.name for p in steward
        }
    else:
        assert all(egress_allowed(objs, p, DATABASE_IP, 5432) for p in steward)


# --- the image ------------------------------------------------------------------------------------


def test_dockerfile_builds_in_stages_and_runs_unprivileged() -> None:
    stages = dockerfile_stages()
    assert len(stages) >= 2, "build in one stage, run from another without the build tools"
    for stage in stages:
        if stage.image not in {s.name for s in stages}:
            repository, _, tag = stage.image.partition(":")
            assert repository == "python" and tag.startswith("3.11") and "slim" in tag, stage.image
    final, earlier = stages[-1], {s.name for s in stages[:-1]}

    user = (final.all("USER") or ["root"])[-1]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) != 0, f"USER {user}: use a numeric non-root uid (runAsNonRoot checks it)"

    copied_from = {m.group(1) for rest in final.all("COPY") if (m := re.search(r"--from=(\S+)", rest))}
    assert copied_from and copied_from <= earlier, "the final stage copies its files from a build stage"
    runs = " ".join(final.all("RUN")).lower()
    for tool in ("apt-get install", "pip install", "gcc", "build-essential", "g++", "make "):
        assert tool not in runs, f"the final stage must not run {tool!r}"

    env = " ".join(final.all("ENV"))
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    exposed = {int(port.split("/")[0]) for rest in final.all("EXPOSE") for port in rest.split()}
    assert {*DEFAULT_PORTS.values(), *DEFAULT_METRICS_PORTS.values()} <= exposed

    command = image_default_command()
    assert command[0] in console_scripts(), f"the image's default command {command} is not a console script"


def test_dockerfile_installs_dependencies_before_copying_the_code() -> None:
    builder = dockerfile_stages()[0]
    steps = [f"{name} {rest}" for name, rest in builder.instructions]

    def first(pattern: str) -> int:
        found = [i for i, step in enumerate(steps) if re.search(pattern, step)]
        assert found, f"no build step matches {pattern!r}"
        return found[0]

    # Dependencies get their own layer, rebuilt only when pyproject.toml changes.
    assert first(r"^COPY .*pyproject\.toml") < first(r"^RUN .*pip install") < first(r"^COPY .*services")
    assert first(r"^RUN .*gen_protos\.py") < first(r"^RUN .*pip install --no-deps \.")


DEV_ONLY = ("grpcio-tools", "aiosmtpd", "pytest")
# Python's import names of the packages above.
DEV_ONLY_MODULES = ("grpc_tools", "aiosmtpd", "pytest")


def test_the_image_carries_no_dev_only_package_and_the_services_import_without_them() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = {re.split(r"[=<>\[ ]", pin, maxsplit=1)[0] for pin in project["dependencies"]}
    assert not runtime & set(DEV_ONLY), runtime & set(DEV_ONLY)
    builder, final = dockerfile_stages()[0], dockerfile_stages()[-1]
    # The code generator runs from a virtualenv of its own, which the final stage does not copy.
    codegen = [rest for rest in builder.all("RUN") if "/opt/codegen" in rest]
    assert codegen and any("gen_protos.py" in rest for rest in codegen)
    assert not any("/opt/codegen" in rest for rest in final.all("COPY"))
    # What the image runs imports without them (the build stage's check, and the CLI).
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {DEV_ONLY_MODULES!r}:\n"
        "            raise ImportError(f'{name} is a dev-only package')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import services.users.app, services.rules.app, services.sync.app, services.cli.main\n"
    )
    done = subprocess.run([sys.executable, "-c", blocker], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]


def test_dockerignore_keeps_local_state_out_of_the_build_context() -> None:
    patterns = {
        line.strip().strip("/").removeprefix("**/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", "gen", "var", ".git"} <= patterns


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_scim_is_served_and_reachable_only_through_the_ingress_controller(kustomization: str) -> None:
    objs = render(kustomization)
    container = server_container(objs, "users")
    env = env_of(objs, container)
    scim = port_named(container, "scim")
    assert scim == DEFAULT_SCIM_PORT == int(env.get("STEWARD_USERS_SCIM_PORT") or scim)
    ports = {p["name"]: p for p in named(objs, "Service", "steward-users")["spec"]["ports"]}
    assert ports["scim"]["port"] == scim and ports["scim"]["targetPort"] == "scim"
    target = pod(objs, "Deployment", "steward-users")
    callers = {p.name for p in workload_pods(objs) + outsiders(objs) if ingress_allowed(objs, p, target, scim)}
    assert callers == {"ingress controller"}
    controller = next(p for p in outsiders(objs) if p.name == "ingress controller")
    assert not ingress_allowed(objs, controller, target, DEFAULT_PORTS["users"]), "the ingress needs no gRPC"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_servers_export_traces_to_the_collector_and_nothing_else_reaches_it(kustomization: str) -> None:
    objs = render(kustomization)
    collector = next(p for p in outsiders(objs) if p.name == "otel collector")
    pods = workload_pods(objs)
    # The console does not export traces (yet): it is not let through either.
    servers = {p.name for p in pods if p.name.startswith("Deployment/") and p.name != "Deployment/steward-console"}
    assert {p.name for p in pods if egress_allowed(objs, p, collector, 4318)} == servers
    for service in SERVICES:
        env = env_of(objs, server_container(objs, service))
        assert env["OTEL_TRACES_EXPORTER"] == "otlp" and env["OTEL_TRACES_SAMPLER_ARG"] == "0.1"
        assert str(env["OTEL_EXPORTER_OTLP_ENDPOINT"]).endswith(":4318")
        keys = {pair.split("=")[0].strip() for pair in str(env.get("OTEL_RESOURCE_ATTRIBUTES") or "").split(",")}
        assert "service.name" not in keys and "OTEL_SERVICE_NAME" not in env, "each service names itself"


# --- the web console ------------------------------------------------------------------------------


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS)
def test_the_console_serves_http_with_probes_reachable_only_through_the_ingress(kustomization: str) -> None:
    objs = render(kustomization)
    workload = named(objs, "Deployment", "steward-console")
    (container,) = [c for c in pod_spec(workload)["containers"] if c["name"] == "console"]
    assert command_of(container) == ["steward-console", "serve"]
    env = env_of(objs, container)
    http = port_named(container, "http")
    assert http == DEFAULT_CONSOLE_PORT == int(env.get("STEWARD_CONSOLE_PORT") or http)
    secret, key = secret_ref(container, "STEWARD_JWT_SECRET")  # the dev overlay's name has a hash suffix
    assert secret.startswith("steward-jwt") and key == "secret"
    assert env["STEWARD_HOST"] == "0.0.0.0" and env["STEWARD_USERS_ADDRESS"], "binds the pod, finds users"
    probes = {kind: container[kind]["httpGet"] for kind in ("readinessProbe", "livenessProbe")}
    assert probes == {
        "readinessProbe": {"path": "/readyz", "port": "http"},
        "livenessProbe": {"path": "/healthz", "port": "http"},
    }
    (port,) = named(objs, "Service", "steward-console")["spec"]["ports"]
    assert (port["port"], port["targetPort"]) == (http, "http")
    target = pod(objs, "Deployment", "steward-console")
    callers = {p.name for p in workload_pods(objs) + outsiders(objs) if ingress_allowed(objs, p, target, http)}
    assert callers == {"ingress controller"}
    # The console owns no data: no database, no migration Job.
    assert not egress_allowed(objs, target, DATABASE_IP, 5432)
    assert "STEWARD_CONSOLE_DATABASE_URL" not in env
