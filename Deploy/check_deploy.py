#!/usr/bin/env python3
"""Structural checks of the deployment files that no schema expresses (DeployFilesTests runs them; the schemas
themselves are checked by hadolint, check-jsonschema's Compose spec schema and kubernetes-validate).

  check_deploy.py dockerfile FILE --root REPO
  check_deploy.py compose FILE
  check_deploy.py k8s BUILT.yaml --root REPO          (the output of `kubectl kustomize`)
  check_deploy.py configmap-pipelines BUILT.yaml --root REPO --datenwerk BINARY --work DIR

Prints one `error: …` line per problem and `ok: …` at the end; exits 1 when there is a problem, 2 on bad input.
Runs with the deploy validators' venv (PyYAML, dockerfile), see scripts/ensure-validators.sh.
"""
import argparse
import fnmatch
import os
import re
import subprocess
import sys

import yaml

errors = []


def error(message):
    errors.append(message)
    print("error: " + message)


def finish(what):
    if errors:
        print(f"{len(errors)} problem(s) in {what}")
        sys.exit(1)
    print(f"ok: {what}")
    sys.exit(0)


# ---------------------------------------------------------------- Dockerfile

def dockerignore_excludes(patterns, path):
    """Docker's rule: the last matching pattern wins; `!` re-includes."""
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern[1:] if negate else pattern
        pat = pat.rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        plain = pat.replace("**/", "")
        if any(fnmatch.fnmatchcase(p, pat) or (pat.startswith("**/") and fnmatch.fnmatchcase(p.split("/")[-1], plain))
               for p in prefixes):
            excluded = not negate
    return excluded


def check_dockerfile(path, root):
    import dockerfile  # the official BuildKit parser (Go), via PyPI `dockerfile`

    commands = dockerfile.parse_file(path)
    stages = []  # (name, [commands])
    for c in commands:
        if c.cmd == "FROM":
            name = c.value[2] if len(c.value) >= 3 and c.value[1].upper() == "AS" else None
            stages.append((name, [c]))
        elif stages:
            stages[-1][1].append(c)
    if len(stages) < 2:
        error(f"not a multi-stage build: {len(stages)} FROM")
        return
    names = [n for n, _ in stages]
    final = stages[-1][1]

    users = [c for c in final if c.cmd == "USER"]
    if not users:
        error("the final stage has no USER: the container would run as root")
    else:
        user = users[-1].value[0].split(":")[0]
        if user in ("root", "0"):
            error(f"the final stage's USER is {user}")
    if not any(c.cmd == "HEALTHCHECK" and c.value and c.value[0] != "NONE" for c in final):
        error("the final stage has no HEALTHCHECK")
    elif not any("/health" in " ".join(c.value) for c in final if c.cmd == "HEALTHCHECK"):
        error("the HEALTHCHECK does not ask /health")
    if not any(c.cmd == "EXPOSE" for c in final):
        error("the final stage has no EXPOSE")

    # The binary and the migrations bundle: built in a named stage, staged, copied into the final stage.
    package = open(os.path.join(root, "Package.swift"), encoding="utf-8").read()
    package_name = re.search(r'Package\(\s*name:\s*"([^"]+)"', package).group(1)
    with_resources = re.findall(r'\.target\(\s*name:\s*"([^"]+)"(?:(?!\.target\().)*?resources:', package, re.S)
    bundles = [f"{package_name}_{t}.resources" for t in with_resources]
    if not bundles:
        error("no target with resources found in Package.swift")
    copies_from = [c for c in final if c.cmd == "COPY" and any(f.startswith("--from=") for f in c.flags)]
    if not copies_from:
        error("the final stage copies nothing from a build stage")
    entry = [c for c in final if c.cmd == "ENTRYPOINT"]
    entry_binary = entry[-1].value[0] if entry else None
    for c in copies_from:
        source_stage = [f.split("=", 1)[1] for f in c.flags if f.startswith("--from=")][0]
        if source_stage not in names[:-1]:
            error(f"COPY --from={source_stage}: no earlier stage has that name ({names})")
            continue
        stage_commands = stages[names.index(source_stage)][1]
        run_text = "\n".join(" ".join(x.value) for x in stage_commands if x.cmd == "RUN")
        sources, destination = c.value[:-1], c.value[-1]
        for source in sources:
            staged = source.rstrip("/")
            if not re.search(r"swift build[^&]*-c release", run_text):
                error(f"stage {source_stage} does not run `swift build -c release`")
            if not re.search(r'cp\s+"\$bin/datenwerk"\s+' + re.escape(staged), run_text):
                error(f"stage {source_stage} does not put the release binary (--show-bin-path)/datenwerk into {source}")
            copies_all = re.search(r"find \"\$bin\" -maxdepth 1 -name '\*\.resources' -exec cp -R \{\} " + re.escape(source), run_text)
            for bundle in bundles:
                if not copies_all and not re.search(r'cp\s+-R\s+"\$bin/' + re.escape(bundle) + r'"\s+' + re.escape(staged), run_text):
                    error(f"stage {source_stage} does not put the resource bundle {bundle} beside the binary in {source}")
        expected = destination.rstrip("/") + "/datenwerk"
        if entry_binary and destination.endswith("/") and entry_binary != expected:
            error(f"ENTRYPOINT runs {entry_binary}, but the binary is copied to {expected}")
    if not entry_binary:
        error("no ENTRYPOINT")

    # Every COPY from the build context exists and is not excluded by the Dockerfile's .dockerignore.
    ignore_file = path + ".dockerignore"
    patterns = []
    if os.path.exists(ignore_file):
        patterns = [l.strip() for l in open(ignore_file, encoding="utf-8") if l.strip() and not l.startswith("#")]
    else:
        error(f"{os.path.basename(ignore_file)} is missing: the whole repository (and .build) would be sent")
    for _, stage in stages:
        for c in stage:
            if c.cmd in ("COPY", "ADD") and not any(f.startswith("--from=") for f in c.flags):
                for source in c.value[:-1]:
                    rel = source.rstrip("/")
                    if not os.path.exists(os.path.join(root, rel)):
                        error(f"line {c.start_line}: COPY {source}: not in the repository")
                    elif dockerignore_excludes(patterns, rel):
                        error(f"line {c.start_line}: COPY {source}: excluded by {os.path.basename(ignore_file)}")
    finish(f"{path}: {len(stages)} stages ({', '.join(n or '?' for n in names)})")


# ---------------------------------------------------------------- compose.yaml

def check_compose(path):
    here = os.path.dirname(os.path.abspath(path))
    doc = yaml.safe_load(open(path, encoding="utf-8"))
    services = doc.get("services", {})
    for required in ("db", "serve", "worker", "grafana"):
        if required not in services:
            error(f"no service {required}")
    if errors:
        finish(path)
    if not str(services["db"].get("image", "")).startswith("postgis/postgis:"):
        error("db is not the postgis/postgis image")
    workers = services["worker"]
    replicas = (workers.get("deploy") or {}).get("replicas")
    worker_services = [n for n, s in services.items() if "worker" in (s.get("command") or [])[:1]]
    if not ((isinstance(replicas, int) and replicas >= 2) or len(worker_services) >= 2):
        error(f"fewer than 2 workers (deploy.replicas: {replicas})")
    for name in ("serve", "worker", "migrate"):
        service = services.get(name)
        if service is None:
            continue
        if "build" not in service and not str(service.get("image", "")).startswith("datenwerk"):
            error(f"{name} does not run the Datenwerk image")
    serve_check = " ".join((services["serve"].get("healthcheck") or {}).get("test") or [])
    if "/health" not in serve_check:
        error("serve's healthcheck does not ask /health")
    for name, service in services.items():
        check = service.get("healthcheck") or {}
        if not check.get("test") and not check.get("disable"):
            error(f"{name} has no healthcheck (or `disable: true` where the image's check does not apply)")
        for dependency, spec in (service.get("depends_on") or {}).items() if isinstance(service.get("depends_on"), dict) else []:
            condition = (spec or {}).get("condition")
            target = services.get(dependency) or {}
            has_check = bool((target.get("healthcheck") or {}).get("test")) and not (target.get("healthcheck") or {}).get("disable")
            if condition == "service_healthy" and not has_check:
                error(f"{name} waits for {dependency} to be healthy, but {dependency} has no healthcheck")
            if condition not in ("service_healthy", "service_completed_successfully"):
                error(f"{name} depends on {dependency} without waiting for it (condition: {condition})")
        if isinstance(service.get("depends_on"), list):
            error(f"{name}: depends_on is a list (no condition: it does not wait for health)")
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(e.split("=", 1) if "=" in e else (e, None) for e in env)
        for key, value in env.items():
            if re.search(r"PASSWORD|TOKEN|SECRET|DATABASE_URL", key) and value is not None:
                error(f"{name}: {key} is written in compose.yaml; it belongs in datenwerk.env")
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
            if source.startswith("."):
                if not os.path.exists(os.path.join(here, source)):
                    error(f"{name}: volume source {source} does not exist")
        for env_file in service.get("env_file") or []:
            file = env_file if isinstance(env_file, str) else env_file.get("path")
            if not os.path.exists(os.path.join(here, file + ".example")):
                error(f"{name}: env_file {file} has no {file}.example beside it")
    grafana_mounts = " ".join(services["grafana"].get("volumes") or [])
    for part in ("grafana/provisioning/datasources", "grafana/provisioning/dashboards", "grafana/dashboards"):
        if part not in grafana_mounts:
            error(f"grafana does not mount Deploy/{part}")
    finish(f"{path}: {len(services)} services")


# ---------------------------------------------------------------- Kubernetes (kustomize output)

def containers_of(deployment):
    spec = deployment["spec"]["template"]["spec"]
    return spec, spec.get("initContainers", []) + spec.get("containers", [])


def pipeline_keys(root):
    keys = {}
    base = os.path.join(root, "Pipelines")
    for directory, _, files in os.walk(base):
        for f in files:
            if f.endswith((".yaml", ".yml")):
                rel = os.path.relpath(os.path.join(directory, f), base)
                keys[rel.replace("/", "__")] = rel
    return keys


def check_k8s(path, root):
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)
    deployments = {d["metadata"]["name"]: d for d in by_kind.get("Deployment", [])}
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    serve = deployments.get("datenwerk-serve")
    worker = deployments.get("datenwerk-worker")
    if not serve or not worker:
        error(f"Deployments datenwerk-serve and datenwerk-worker expected, found {sorted(deployments)}")
        finish(path)
    if (worker["spec"].get("replicas") or 1) < 2:
        error(f"the worker Deployment has replicas: {worker['spec'].get('replicas')}")
    for name, deployment in deployments.items():
        pod, containers = containers_of(deployment)
        security = pod.get("securityContext") or {}
        if security.get("runAsNonRoot") is not True:
            error(f"{name}: the pod does not set runAsNonRoot: true")
        if security.get("runAsUser") in (None, 0):
            error(f"{name}: the pod has no non-root runAsUser")
        for c in containers:
            where = f"{name}/{c['name']}"
            resources = c.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if resource not in (resources.get(kind) or {}):
                        error(f"{where}: no {kind}.{resource}")
            cs = c.get("securityContext") or {}
            if cs.get("readOnlyRootFilesystem") is not True:
                error(f"{where}: readOnlyRootFilesystem is not true")
            if cs.get("allowPrivilegeEscalation") is not False:
                error(f"{where}: allowPrivilegeEscalation is not false")
            if "ALL" not in ((cs.get("capabilities") or {}).get("drop") or []):
                error(f"{where}: capabilities are not all dropped")
            mounts = {m["mountPath"] for m in c.get("volumeMounts") or []}
            if c in pod.get("containers", []) and "/tmp" not in mounts:
                error(f"{where}: no writable /tmp (the root filesystem is read-only)")
            if c in pod.get("containers", []) and "envFrom" not in c:
                error(f"{where}: reads no Secret (envFrom) for DATABASE_URL")
        volumes = {v["name"]: v for v in pod.get("volumes") or []}
        for c in containers:
            for m in c.get("volumeMounts") or []:
                if m["name"] not in volumes:
                    error(f"{name}/{c['name']}: mounts an undeclared volume {m['name']}")
        for v in volumes.values():
            if "configMap" in v and v["configMap"]["name"] not in configmaps:
                error(f"{name}: volume {v['name']} uses ConfigMap {v['configMap']['name']}, which is not generated")
    serve_pod, serve_containers = containers_of(serve)
    main = serve_pod["containers"][0]
    readiness = (main.get("readinessProbe") or {}).get("httpGet") or {}
    if readiness.get("path") != "/health":
        error("datenwerk-serve: the readiness probe does not ask /health")
    if not main.get("livenessProbe"):
        error("datenwerk-serve: no liveness probe")
    ports = {p.get("name"): p["containerPort"] for p in main.get("ports") or []}
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        target = ((main.get(probe) or {}).get("httpGet") or (main.get(probe) or {}).get("tcpSocket") or {}).get("port")
        if target is not None and target not in ports and target not in ports.values():
            error(f"datenwerk-serve: {probe} asks port {target}, which the container does not declare")
    args = main.get("args") or []
    if "--host" not in args or args[args.index("--host") + 1] not in ("0.0.0.0", "::"):
        error("datenwerk-serve: serve does not bind all addresses (--host 0.0.0.0): probes and the Service cannot reach it")
    services = by_kind.get("Service", [])
    labels = serve["spec"]["template"]["metadata"]["labels"]
    if not any(all(labels.get(k) == v for k, v in (s["spec"].get("selector") or {}).items()) and s["spec"].get("selector")
               for s in services):
        error("no Service selects the serve pods")
    for s in services:
        for p in s["spec"].get("ports") or []:
            if p.get("targetPort") not in ports and p.get("targetPort") not in ports.values():
                error(f"Service {s['metadata']['name']}: targetPort {p.get('targetPort')} is not a port of serve")
    # The pipelines ConfigMap holds every file of Pipelines/, keyed by its path ("/" as "__").
    pipelines = [cm for name, cm in configmaps.items() if name.startswith("datenwerk-pipelines")]
    if not pipelines:
        error("no datenwerk-pipelines ConfigMap")
    else:
        keys = set(pipelines[0].get("data", {}))
        want = pipeline_keys(root)
        for missing in sorted(set(want) - keys):
            error(f"Pipelines/{want[missing]} is not in the ConfigMap: run sh Deploy/k8s/update-pipelines.sh")
        for extra in sorted(keys - set(want)):
            error(f"the ConfigMap has {extra}, which is not a file in Pipelines/: run sh Deploy/k8s/update-pipelines.sh")
        for key in keys & set(want):
            if pipelines[0]["data"][key] != open(os.path.join(root, "Pipelines", want[key]), encoding="utf-8").read():
                error(f"ConfigMap key {key} differs from Pipelines/{want[key]}")
    finish(f"{path}: {len(docs)} objects ({', '.join(sorted(f'{len(v)} {k}' for k, v in by_kind.items()))})")


def check_configmap_pipelines(path, binary, work, root):
    """Lays the pipelines ConfigMap out as the kubelet does (files under a hidden timestamped folder, `..data`
    and per-key symlinks), runs the init container's script on it and lets `datenwerk validate` read the
    result: it must say exactly what it says about the repository's Pipelines/ (every pipeline and template
    once, all valid)."""
    binary = os.path.abspath(binary)
    reference = subprocess.run([binary, "validate", os.path.join(root, "Pipelines")], capture_output=True, text=True, cwd=root)
    reference_out = (reference.stdout + reference.stderr).strip()
    want = reference_out.splitlines()[-1] if reference_out else ""
    print(f"the repository's Pipelines/: {want}")
    if reference.returncode != 0 or not want.startswith("ok: "):
        error(f"datenwerk validate on the repository's Pipelines/ fails: {reference_out}")
        finish(path)
    docs = [d for d in yaml.safe_load_all(open(path, encoding="utf-8")) if d]
    cm = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].startswith("datenwerk-pipelines"))
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        name = deployment["metadata"]["name"]
        pod = deployment["spec"]["template"]["spec"]
        init = next((c for c in pod.get("initContainers") or [] if c["name"] == "pipelines"), None)
        if init is None:
            error(f"{name}: no init container 'pipelines' that unpacks the ConfigMap")
            continue
        volumes = {v["name"]: v for v in pod["volumes"]}
        source = next(m["mountPath"] for m in init["volumeMounts"] if "configMap" in volumes[m["name"]])
        target = next(m["mountPath"] for m in init["volumeMounts"] if "emptyDir" in volumes[m["name"]])
        script = init["args"][0]
        if source not in script or target not in script:
            error(f"{name}: the init script does not use its mounts {source} and {target}")
            continue
        main_mounts = {m["mountPath"]: m["name"] for m in pod["containers"][0]["volumeMounts"]}
        if volumes.get(main_mounts.get("/srv/datenwerk/Pipelines", ""), {}).get("emptyDir") is None:
            error(f"{name}: /srv/datenwerk/Pipelines in the main container is not the folder the init container fills")
        base = os.path.join(work, name)
        mounted, unpacked = os.path.join(base, "configmap"), os.path.join(base, "Pipelines")
        stamp = os.path.join(mounted, "..2026_01_01_00_00_00.000000001")
        os.makedirs(stamp)
        os.makedirs(unpacked)
        for key, text in cm["data"].items():
            with open(os.path.join(stamp, key), "w", encoding="utf-8") as f:
                f.write(text)
        os.symlink(os.path.basename(stamp), os.path.join(mounted, "..data"))
        for key in cm["data"]:
            os.symlink(os.path.join("..data", key), os.path.join(mounted, key))
        script = script.replace(source, mounted).replace(target, unpacked)
        run = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
        if run.returncode != 0:
            error(f"{name}: the init script failed: {run.stderr.strip()}")
            continue
        as_mounted = subprocess.run([binary, "validate", mounted], capture_output=True, text=True, cwd=base)
        validated = subprocess.run([binary, "validate", unpacked], capture_output=True, text=True, cwd=base)
        out = (validated.stdout + validated.stderr).strip()
        print(f"{name}: the ConfigMap folder as mounted: {(as_mounted.stdout + as_mounted.stderr).strip().splitlines()[-1]}")
        print(f"{name}: unpacked by the init container: {out.splitlines()[-1] if out else ''}")
        if validated.returncode != 0 or not out or out.splitlines()[-1] != want:
            error(f"{name}: datenwerk validate on the unpacked pipelines: expected '{want}', got: {out}")
    finish(f"{path}: pipelines ConfigMap unpacked and validated")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("what", choices=["dockerfile", "compose", "k8s", "configmap-pipelines"])
    parser.add_argument("file")
    parser.add_argument("--root")
    parser.add_argument("--datenwerk")
    parser.add_argument("--work")
    a = parser.parse_args()
    try:
        if a.what == "dockerfile":
            check_dockerfile(a.file, a.root)
        elif a.what == "compose":
            check_compose(a.file)
        elif a.what == "k8s":
            check_k8s(a.file, a.root)
        else:
            check_configmap_pipelines(a.file, a.datenwerk, a.work, a.root)
    except (OSError, yaml.YAMLError, KeyError, StopIteration, IndexError, AttributeError) as e:
        print(f"error: cannot check {a.file}: {type(e).__name__}: {e}")
        sys.exit(2)


if __name__ == "__main__":
    main()
