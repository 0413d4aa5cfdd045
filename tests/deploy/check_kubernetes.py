#!/usr/bin/python3
"""Checks deploy/kubernetes against the connector binary, offline.

Every manifest parses; kustomize renders the set (when kubectl is installed); every variable the
manifests give the connector is one its --help lists; the probes use the port of HTTP_ADDRESS's default
and paths --help names; the KEDA trigger reads the stream, group and Redis the ConfigMap names; the pod
is hardened and waits longer than the connector's shutdown grace period.

Usage: check_kubernetes.py CONNECTOR_BINARY MANIFEST_DIR
"""
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

problems = []


def check(condition, message):
    if not condition:
        problems.append(message)
    return condition


def load_manifests(directory):
    """Every document of every YAML file, by kind; kustomization.yaml lists them all."""
    documents = {}
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    files = sorted(p.name for p in directory.glob("*.yaml") if p.name != "kustomization.yaml")
    check(sorted(kustomization["resources"]) == files,
          f"kustomization.yaml resources {sorted(kustomization['resources'])} differ from the files {files}")
    for name in files:
        for document in yaml.safe_load_all((directory / name).read_text()):
            if document:
                check(document["kind"] not in documents, f"{name}: a second {document['kind']}")
                documents[document["kind"]] = document
    return documents


def render_with_kubectl(directory):
    """kubectl kustomize works offline; kubectl apply --dry-run=client needs an API server (discovery)."""
    kubectl = shutil.which("kubectl")
    if not kubectl:
        print("kubectl not installed: kustomize rendering not checked")
        return None
    result = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60)
    if not check(result.returncode == 0, f"kubectl kustomize failed: {result.stderr}"):
        return None
    return {d["kind"]: d for d in yaml.safe_load_all(result.stdout) if d}


def help_facts(binary):
    """Variables named in --help (`[VARIABLE, default: ...]`) and the full text."""
    text = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True, timeout=30).stdout
    variables = dict(re.findall(r"\[([A-Z][A-Z0-9_]+)(?:, ([^\]]*))?\]", text))
    return variables, text


def default_of(variables, name):
    value = variables.get(name, "")
    match = re.search(r"default: ([^,\]]+)", value)
    return match.group(1).strip() if match else None


def main():
    binary, directory = sys.argv[1], Path(sys.argv[2])
    manifests = load_manifests(directory)
    rendered = render_with_kubectl(directory)
    variables, help_text = help_facts(binary)

    config = manifests["ConfigMap"]["data"]
    secret = manifests["Secret"]["stringData"]
    statefulset = manifests["StatefulSet"]
    pod = statefulset["spec"]["template"]["spec"]
    container = pod["containers"][0]

    # Every variable the pod gets is a connector setting (a typo would be silently ignored).
    given = list(config) + list(secret) + [e["name"] for e in container.get("env", [])]
    for name in given:
        check(name in variables, f"{name} is given to the pod but is not a setting in --help")
    env_from = {(s.get("configMapRef") or s.get("secretRef"))["name"] for s in container["envFrom"]}
    check(env_from == {manifests["ConfigMap"]["metadata"]["name"], manifests["Secret"]["metadata"]["name"]},
          f"envFrom {env_from} is not the ConfigMap and the Secret")
    for secret_setting in ("EVENT_HUB_CONNECTION_STRING", "REDIS_PASSWORD"):
        check(secret_setting not in config, f"{secret_setting} is a secret but sits in the ConfigMap")
        check(secret_setting in secret, f"{secret_setting} is missing from the Secret")

    # CONSUMER_NAME is the pod's (stable) name.
    consumer = [e for e in container.get("env", []) if e["name"] == "CONSUMER_NAME"]
    check(consumer and consumer[0].get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "metadata.name",
          "CONSUMER_NAME does not come from metadata.name (downward API)")

    # Probes: HTTP_ADDRESS's default port (or the ConfigMap's value), paths the binary serves.
    address = config.get("HTTP_ADDRESS") or default_of(variables, "HTTP_ADDRESS")
    if check(address, "HTTP_ADDRESS is not in --help with a default: the probes cannot be checked"):
        port = int(address.rsplit(":", 1)[1])
        ports = {p.get("name"): p["containerPort"] for p in container["ports"]}
        check(port in ports.values(), f"containerPort {list(ports.values())} is not HTTP_ADDRESS's port {port}")
        for probe_name, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            probe = container.get(probe_name, {}).get("httpGet", {})
            probe_port = ports.get(probe.get("port"), probe.get("port"))
            check(probe_port == port, f"{probe_name} uses port {probe.get('port')}, not {port}")
            check(probe.get("path") == path, f"{probe_name} path is {probe.get('path')}, not {path}")
            check(path in help_text, f"--help does not mention {path}")

    # Shutdown: the kubelet's SIGKILL must come well after the connector's own grace period.
    grace_ms = int(config.get("SHUTDOWN_GRACE_PERIOD_MS") or default_of(variables, "SHUTDOWN_GRACE_PERIOD_MS"))
    check(pod["terminationGracePeriodSeconds"] * 1000 >= grace_ms + 10000,
          f"terminationGracePeriodSeconds {pod['terminationGracePeriodSeconds']} is not 10 s above "
          f"SHUTDOWN_GRACE_PERIOD_MS {grace_ms}")

    # Hardening.
    security = container["securityContext"]
    check(pod["securityContext"].get("runAsNonRoot") is True, "runAsNonRoot is not true")
    check(security.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem is not true")
    check(security.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation is not false")
    check(security.get("capabilities", {}).get("drop") == ["ALL"], "capabilities are not all dropped")
    for kind in ("requests", "limits"):
        check({"cpu", "memory"} <= set(container["resources"].get(kind, {})), f"resources.{kind} lacks cpu or memory")

    # KEDA reads what the connector reads.
    scaled = manifests["ScaledObject"]["spec"]
    check(scaled["scaleTargetRef"]["kind"] == "StatefulSet" and
          scaled["scaleTargetRef"]["name"] == statefulset["metadata"]["name"], "ScaledObject does not target the StatefulSet")
    # One redis-streams trigger per stream of STREAM_KEY, in its order, summed into one metric.
    streams = [key.strip() for key in config["STREAM_KEY"].split(",")]
    triggers = scaled["triggers"]
    check([t["metadata"].get("stream") for t in triggers] == streams,
          f"trigger streams {[t['metadata'].get('stream') for t in triggers]} != STREAM_KEY {streams}")
    names = [t.get("name") for t in triggers]
    check(all(names) and len(set(names)) == len(names), f"triggers need distinct names: {names}")
    modifiers = scaled.get("advanced", {}).get("scalingModifiers", {})
    check(modifiers.get("formula") == " + ".join(names),
          f"scalingModifiers.formula {modifiers.get('formula')!r} is not the sum of the triggers {names}")
    check(modifiers.get("metricType") == "AverageValue" and "target" in modifiers,
          "scalingModifiers needs a per-replica target (metricType AverageValue)")
    url = urlsplit(config["REDIS_URL"])
    auth = manifests["TriggerAuthentication"]
    for trigger in triggers:
        meta = trigger["metadata"]
        check(trigger["type"] == "redis-streams", f"trigger type {trigger['type']}")
        check(meta.get("consumerGroup") == config["CONSUMER_GROUP_NAME"],
              f"trigger consumerGroup {meta.get('consumerGroup')} != CONSUMER_GROUP_NAME {config['CONSUMER_GROUP_NAME']}")
        check("lagCount" in meta, "the trigger does not scale on lagCount")
        check(meta.get("address") == f"{url.hostname}:{url.port or 6379}",
              f"trigger address {meta.get('address')} is not REDIS_URL's {url.hostname}:{url.port or 6379}")
        check((meta.get("enableTLS") == "true") == (url.scheme == "rediss"), "trigger enableTLS does not match REDIS_URL's scheme")
        check(trigger["authenticationRef"]["name"] == auth["metadata"]["name"], "authenticationRef names no TriggerAuthentication")
    for ref in auth["spec"]["secretTargetRef"]:
        check(ref["name"] == manifests["Secret"]["metadata"]["name"] and ref["key"] in secret,
              f"TriggerAuthentication reads {ref['name']}/{ref['key']}, which the Secret does not hold")

    # The PDB and the Service select the pods (after kustomize added the common labels).
    final = rendered or manifests
    labels = final["StatefulSet"]["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget", "Service"):
        selector = final[kind]["spec"].get("selector", {})
        selector = selector.get("matchLabels", selector)
        check(selector and all(labels.get(k) == v for k, v in selector.items()),
              f"{kind} selector {selector} does not select the pods {labels}")
    check(final["StatefulSet"]["spec"]["serviceName"] == final["Service"]["metadata"]["name"],
          "StatefulSet serviceName is not the Service")

    for problem in problems:
        print("FAIL:", problem)
    print(f"{len(manifests)} manifests, {len(given)} variables checked; {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
