#!/usr/bin/env python3
"""Checks hookgate's compose overrides against XBoard's compose templates (issue 33).

Each case is one of XBoard's four templates (a stand-in under tests/data/compose,
see its README.md) with hookgate added: by one of the overrides in examples/, or
by the config `hookgate init --compose NAME` writes. For each case:

1. the override is merged onto the template as `docker compose -f compose.yaml
   -f override.yaml` would (see `merge` below), and the merged file is
   validated against the Compose Specification's JSON schema (the vendored
   tests/data/compose/compose-spec.json, with python3-jsonschema);
2. every service has an image or a build (the schema's own
   `definitions/constraints/service`, which its top level does not apply, and
   which `docker compose` enforces: an override naming a service the template
   lacks makes one without an image);
3. every `depends_on` names a service of the merged file;
4. hookgate's config (the file the override mounts at
   /etc/hookgate/hookgate.toml, or init's output) passes `hookgate check`;
5. with an override, hookgate is the only service publishing ports;
6. every upstream URL in it names a service of the template and a port that
   service listens on (`expose` or a `ports` target), or, for hookgate on the
   host, 127.0.0.1 and a port on the host (a host-network service's, or a
   published one).

Then the cases under BROKEN, which are wrong on purpose, must each be refused
for the reason named, so this is a check that can fail.

The merge is a small merger written here, scoped to the keys these files use,
because no real Compose implementation is available from Debian bookworm that
reads these files: its docker-compose is 1.29.2 (Compose v1), whose YAML
loader refuses the `!reset` tag (added in Compose v2.24), and Compose v2 is not
packaged there. It follows the Compose Specification's merge rules
(compose-spec 13-merge.md): mappings are merged key by key, an override's
scalar replaces the base's, `!reset` removes the value and `!override`
replaces it whole, `ports`/`expose`/... are appended without duplicates,
`depends_on` and `networks` are merged as sets (or as mappings), `volumes` by
container path, `environment`/`sysctls`/`labels` as mappings, `command` and
`entrypoint` replaced. Any other sequence stops the check with an error
rather than being merged by guess.

Usage: tests/compose/check.py --hookgate target/debug/hookgate
Needs: python3-yaml, python3-jsonschema (Debian), Python 3.11+ (tomllib).
"""

import argparse
import json
import subprocess
import sys
import tomllib
import urllib.parse
from pathlib import Path

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests/data/compose"
MOUNT = "/etc/hookgate/hookgate.toml"

# (name, template, override or None, init's --compose value or None, where hookgate runs)
CASES = [
    ("default template + xboard-compose-default.yaml", "compose.sample.yaml", "examples/xboard-compose-default.yaml", None, "compose"),
    ("split template + xboard-compose-split.yaml", "compose.split.sample.yaml", "examples/xboard-compose-split.yaml", None, "compose"),
    ("default template + init --compose default", "compose.sample.yaml", "examples/xboard-compose-default.yaml", "default", "compose"),
    ("split template + init --compose split", "compose.split.sample.yaml", "examples/xboard-compose-split.yaml", "split", "compose"),
    ("host-network template + init --compose host", "compose.host.sample.yaml", None, "host", "host"),
    ("1Panel template + init --compose 1panel", "compose.1panel.sample.yaml", None, "1panel", "host"),
]

# The same shape, plus the reasons the check must give.
BROKEN = [
    ("the split override on the default template (issue 33's report)", "compose.sample.yaml",
     "examples/xboard-compose-split.yaml", None, "compose",
     ["service caddy has neither image nor build", "depends_on names web", "upstream frontend: web:7001",
      "service xboard publishes 7001:7001"]),
    ("the default override on the split template", "compose.split.sample.yaml",
     "examples/xboard-compose-default.yaml", None, "compose",
     ["service xboard has neither image nor build", "upstream backend: xboard:7001 names no service"]),
    ("an override the schema refuses", "compose.sample.yaml", "tests/data/compose/broken/schema.yaml", None, "compose",
     ["schema: services.hookgate.stop_grace_period: 40 is not of type 'string'"]),
    ("a config naming a port the service does not listen on", "compose.sample.yaml",
     "tests/data/compose/broken/wrong-port.yaml", None, "compose", ["upstream ws: xboard:8076"]),
    ("a config hookgate check refuses", "compose.sample.yaml", "tests/data/compose/broken/invalid-config.yaml",
     None, "compose", ["hookgate check exited 78"]),
    ("init --compose default's config on the host-network template", "compose.host.sample.yaml", None, "default",
     "host", ["upstream frontend: xboard:7001 is not on this host"]),
]


class CheckError(Exception):
    pass


class Reset:
    """`!reset`: the value is removed by the merge."""


class Override:
    """`!override VALUE`: the value replaces the base's whole."""

    def __init__(self, value):
        self.value = value


def load_yaml(path):
    class Loader(yaml.SafeLoader):
        pass

    def override(loader, node):
        if isinstance(node, yaml.MappingNode):
            return Override(loader.construct_mapping(node, deep=True))
        if isinstance(node, yaml.SequenceNode):
            return Override(loader.construct_sequence(node, deep=True))
        return Override(loader.construct_scalar(node))

    Loader.add_constructor("!reset", lambda loader, node: Reset())
    Loader.add_constructor("!override", override)
    with open(path, encoding="utf-8") as f:
        return yaml.load(f, Loader=Loader) or {}


APPENDED = {"ports", "expose", "dns", "dns_search", "external_links", "cap_add", "cap_drop", "security_opt", "tmpfs"}
AS_SETS = {"depends_on", "networks"}
AS_MAPPINGS = {"environment", "sysctls", "labels"}
REPLACED = {"command", "entrypoint"}


def as_mapping(value, key):
    if isinstance(value, dict):
        return dict(value)
    if key in AS_SETS:
        return {item: None for item in value}
    pairs = (item.split("=", 1) for item in value)
    return {pair[0]: pair[1] if len(pair) > 1 else None for pair in pairs}


def merge(base, over, path=""):
    """`over` merged onto `base`, by the rules in the module's doc."""
    if isinstance(over, Override):
        return strip(over.value)
    key = path.rsplit(".", 1)[-1]
    if isinstance(base, dict) and isinstance(over, dict):
        merged = dict(base)
        for name, value in over.items():
            if isinstance(value, Reset):
                merged.pop(name, None)
            elif name in merged:
                merged[name] = merge(merged[name], value, f"{path}.{name}" if path else name)
            else:
                merged[name] = strip(value)
        return merged
    in_service = path.startswith("services.") and path.count(".") == 2
    if in_service and key in AS_SETS | AS_MAPPINGS and (isinstance(base, dict) or isinstance(over, dict)):
        return merge(as_mapping(base, key), as_mapping(strip(over), key), path)
    if isinstance(base, list) and isinstance(over, list):
        over = strip(over)
        if in_service and key in APPENDED | AS_SETS:
            return base + [item for item in over if item not in base]
        if in_service and key in AS_MAPPINGS:
            return merge(as_mapping(base, key), as_mapping(over, key), path)
        if in_service and key == "volumes":
            target = lambda mount: mount["target"] if isinstance(mount, dict) else mount.split(":")[1]
            replaced = {target(mount) for mount in over}
            return [mount for mount in base if target(mount) not in replaced] + over
        if in_service and key in REPLACED:
            return over
        raise CheckError(f"merge: no rule in this checker for the sequence {path}; add one from compose-spec 13-merge.md")
    return strip(over)


def strip(value):
    """A value an override adds where the base has none: its `!reset`s removed."""
    if isinstance(value, Override):
        return strip(value.value)
    if isinstance(value, dict):
        return {k: strip(v) for k, v in value.items() if not isinstance(v, Reset)}
    if isinstance(value, list):
        return [strip(v) for v in value if not isinstance(v, Reset)]
    return value


def validate(merged, schema):
    problems = []
    validator = jsonschema.Draft201909Validator(schema)
    for error in sorted(validator.iter_errors(merged), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path) or "(top)"
        problems.append(f"schema: {where}: {error.message}")
    constraint = jsonschema.Draft201909Validator(schema["definitions"]["constraints"]["service"])
    services = merged.get("services") or {}
    for name, service in services.items():
        if not constraint.is_valid(service or {}):
            problems.append(f"service {name} has neither image nor build (does the template define {name}?)")
        depends = (service or {}).get("depends_on") or []
        for needed in depends:
            if needed not in services:
                problems.append(f"service {name}: depends_on names {needed}, which is not a service here")
    return problems


def container_ports(service):
    ports = {str(p) for p in service.get("expose", [])}
    for port in service.get("ports", []):
        ports.add(str(port["target"]) if isinstance(port, dict) else str(port).split(":")[-1].split("/")[0])
    return ports


def host_ports(template):
    """The ports hookgate on the host can reach: host-network services' own, and published ones."""
    ports = set()
    for service in (template.get("services") or {}).values():
        if service.get("network_mode") == "host":
            ports |= container_ports(service)
        for port in service.get("ports", []):
            text = str(port["published"]) if isinstance(port, dict) else str(port)
            if ":" in text:
                ports.add(text.split(":")[-2])
    return ports


def check_upstreams(config, template, where):
    problems = []
    services = template.get("services") or {}
    for name, upstream in (config.get("upstreams") or {}).items():
        url = urllib.parse.urlsplit(upstream["url"])
        port = str(url.port or (443 if url.scheme == "https" else 80))
        said = f"upstream {name}: {url.hostname}:{port}"
        if where == "host":
            if url.hostname not in ("127.0.0.1", "localhost", "::1"):
                problems.append(f"{said} is not on this host, where hookgate runs beside this template")
            elif port not in host_ports(template):
                problems.append(f"{said}: nothing of the template listens on port {port} of the host")
            continue
        service = services.get(url.hostname)
        if service is None:
            problems.append(f"{said} names no service of the template (it has {', '.join(services)})")
        elif service.get("network_mode") == "host":
            problems.append(f"{said}: {url.hostname} uses host networking, no compose name reaches it")
        elif port not in container_ports(service):
            listens = ", ".join(sorted(container_ports(service))) or "nothing"
            problems.append(f"{said}: {url.hostname} listens on {listens}")
    return problems


def hookgate_config(case, merged, override_path, hookgate, scratch):
    """The config path: init's output for `--compose`, else the file the override mounts."""
    name, _, _, compose, _ = case[:5]
    if compose is not None:
        path = scratch / f"init-{compose}.toml"
        path.unlink(missing_ok=True)
        run = subprocess.run([hookgate, "init", "--preset", "xboard", "--compose", compose, "-o", str(path)],
                             capture_output=True, text=True)
        if run.returncode != 0:
            raise CheckError(f"hookgate init --compose {compose} exited {run.returncode}: {run.stderr.strip()}")
        return path
    hookgate_service = (merged.get("services") or {}).get("hookgate") or {}
    for mount in hookgate_service.get("volumes", []):
        source, target = (mount["source"], mount["target"]) if isinstance(mount, dict) else mount.split(":")[:2]
        if target == MOUNT:
            # Relative to the project folder: the README has the override copied beside XBoard's compose.yaml.
            return (override_path.parent / source).resolve()
    raise CheckError(f"{name}: the hookgate service mounts nothing at {MOUNT}")


def run_case(case, hookgate, schema, scratch):
    _, template_name, override, _, where = case[:5]
    template = load_yaml(DATA / template_name)
    override_path = ROOT / override if override else None
    merged = merge(template, load_yaml(override_path)) if override_path else strip(template)
    problems = validate(json.loads(json.dumps(merged)), schema)
    if override_path:
        for name, service in (merged.get("services") or {}).items():
            for port in (service or {}).get("ports", []) if name != "hookgate" else []:
                problems.append(f"service {name} publishes {port}: hookgate is to be the only way in")
    config_path = hookgate_config(case, merged, override_path, hookgate, scratch)
    checked = subprocess.run([hookgate, "check", "-c", str(config_path)], capture_output=True, text=True)
    if checked.returncode != 0:
        problems.append(f"hookgate check exited {checked.returncode} on {config_path.name}: {checked.stderr.strip()}")
        return problems, ""
    with open(config_path, "rb") as f:
        config = tomllib.load(f)
    problems += check_upstreams(config, template, where)
    upstreams = ", ".join(f"{name} {u['url']}" for name, u in (config.get("upstreams") or {}).items())
    return problems, f"{len(merged.get('services') or {})} services valid; upstreams {upstreams}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hookgate", required=True, help="the hookgate binary to run `check` and `init` with")
    args = parser.parse_args()
    hookgate = str(Path(args.hookgate).resolve())
    with open(DATA / "compose-spec.json", encoding="utf-8") as f:
        schema = json.load(f)
    scratch = Path(subprocess.run(["mktemp", "-d"], capture_output=True, text=True, check=True).stdout.strip())
    failed = 0
    for case in CASES:
        problems, summary = run_case(case, hookgate, schema, scratch)
        print(f"{'ok' if not problems else 'FAILED'}: {case[0]}: {summary}")
        for problem in problems:
            print(f"    {problem}")
        failed += bool(problems)
    for case in BROKEN:
        problems, _ = run_case(case, hookgate, schema, scratch)
        missing = [reason for reason in case[5] if not any(reason in p for p in problems)]
        print(f"{'refused as it must be' if not missing else 'FAILED, not refused'}: {case[0]}")
        for problem in problems:
            print(f"    {problem}")
        for reason in missing:
            print(f"    expected, not found: {reason}")
        failed += bool(missing)
    subprocess.run(["rm", "-rf", str(scratch)], check=True)
    total = len(CASES) + len(BROKEN)
    print(f"compose check: {total - failed} of {total} cases as expected")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except CheckError as e:
        print(f"compose check: {e}", file=sys.stderr)
        sys.exit(1)
