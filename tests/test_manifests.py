"""manifests/: every overlay renders, validates strictly (built-in kinds against Kubernetes' schemas, custom
resources against their CRD schemas), and holds together where schemas cannot tell."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from tests.support.cli import BIN, trainboard
from trainboard.app.kustomize import MANIFESTS_DIR, OVERLAYS, render

KUBERNETES_VERSION = "1.32"  # the schemas validated against; GKE's regular channel and kubectl here
BUCKET_ROOT = "gs://team-bucket/trainboard"
LOGDIR = f"{BUCKET_ROOT}/tensorboard"
CRD_SCHEMAS = Path(__file__).parent / "crd_schemas"
# Secrets docs/team-tensorboard.md tells an operator to create (credentials: never in the repository).
OUT_OF_BAND_SECRETS = {"basic": {"trainboard-gcp-key"}, "gke": {"trainboard-iap-oauth"}, "kubeflow": set()}


def rendered(overlay: str, **options: str) -> list[dict]:
    return list(yaml.safe_load_all(render(BUCKET_ROOT, overlay, **options)))


@pytest.fixture(scope="module", params=OVERLAYS)
def overlay(request) -> tuple[str, list[dict]]:
    return request.param, rendered(request.param)


def of_kind(objects: list[dict], kind: str) -> list[dict]:
    return [o for o in objects if o["kind"] == kind]


def named(objects: list[dict], kind: str, name: str) -> dict:
    matches = [o for o in of_kind(objects, kind) if o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} rendered"
    return matches[0]


def matches(selector: dict, labels: dict) -> bool:
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def pods(objects: list[dict]) -> list[dict]:
    return [d["spec"]["template"] for d in of_kind(objects, "Deployment")]


def has_port(containers: list[dict], port: int | str) -> bool:
    """Whether one of ``containers`` declares ``port`` (a number or a port name)."""
    return any(port in (p["containerPort"], p.get("name")) for c in containers for p in c.get("ports", []))


def containers_of(templates: list[dict]) -> list[dict]:
    return [c for t in templates for c in t["spec"]["containers"]]


def crd_schemas() -> dict[tuple[str, str], dict]:
    schemas = {}
    for path in CRD_SCHEMAS.glob("*.yaml"):
        doc = yaml.safe_load(path.read_text())
        schemas[doc["apiVersion"], doc["kind"]] = doc["openAPIV3Schema"]
    return schemas


def test_every_object_validates_strictly(overlay):
    name, objects = overlay
    schemas = crd_schemas()
    custom = []
    for obj in objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in schemas:
            jsonschema.validate(obj, schemas[key])
            custom.append(obj["kind"])
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    expected = {"gke": ["BackendConfig", "ManagedCertificate"], "kubeflow": ["PodDefault", "Tensorboard"]}
    assert sorted(custom) == expected.get(name, [])


def test_strict_validation_rejects_what_it_should():
    deployment = named(rendered("basic"), "Deployment", "trainboard-tensorboard")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    tensorboard = named(rendered("kubeflow"), "Tensorboard", "trainboard")
    del tensorboard["spec"]["logspath"]
    with pytest.raises(jsonschema.ValidationError, match="logspath"):
        jsonschema.validate(tensorboard, crd_schemas()["tensorboard.kubeflow.org/v1alpha1", "Tensorboard"])


def test_selectors_ports_and_names_hold_together(overlay):
    name, objects = overlay
    deployments = of_kind(objects, "Deployment")
    assert len(deployments) == 1
    for deployment in deployments:
        template = deployment["spec"]["template"]
        assert matches(deployment["spec"]["selector"]["matchLabels"], template["metadata"]["labels"])
        spec = template["spec"]
        named(objects, "ServiceAccount", spec["serviceAccountName"])
        volumes = {v["name"] for v in spec["volumes"]}
        for container in spec["containers"]:
            assert {m["name"] for m in container.get("volumeMounts", [])} <= volumes
            for probe in ("readinessProbe", "livenessProbe"):
                if probe in container:
                    assert has_port([container], container[probe]["httpGet"]["port"])
        secrets = {v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        rendered_secrets = {s["metadata"]["name"] for s in of_kind(objects, "Secret")}
        assert secrets <= rendered_secrets | OUT_OF_BAND_SECRETS[name]
    for service in of_kind(objects, "Service"):
        selected = [t for t in pods(objects) if matches(service["spec"]["selector"], t["metadata"]["labels"])]
        assert selected, f"Service {service['metadata']['name']} selects no pod"
        for port in service["spec"]["ports"]:
            assert has_port(containers_of(selected), port["targetPort"])
    for policy in of_kind(objects, "NetworkPolicy"):
        selected = [
            t
            for t in pods(objects)
            if matches(policy["spec"]["podSelector"]["matchLabels"], t["metadata"]["labels"])
        ]
        assert selected
        assert policy["spec"]["policyTypes"] == ["Ingress"]
        assert policy["spec"]["ingress"], "the overlay must say where ingress comes from"
        for rule in policy["spec"]["ingress"]:
            assert rule["from"], "a rule without `from` would let everyone in"
            for port in rule["ports"]:
                assert has_port(containers_of(selected), port["port"])
    for poddefault in of_kind(objects, "PodDefault"):
        named(objects, "ServiceAccount", poddefault["spec"]["serviceAccountName"])


def test_security_settings_in_every_pod(overlay):
    _, objects = overlay
    for template in pods(objects):
        spec = template["spec"]
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] > 0
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True
            assert context["readOnlyRootFilesystem"] is True
            assert context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]}
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) == {"cpu", "memory"}
            if container.get("ports"):
                assert "readinessProbe" in container and "livenessProbe" in container


def test_bucket_is_set_in_one_place(overlay):
    name, objects = overlay
    text = yaml.safe_dump_all(objects)
    assert "YOUR-BUCKET" not in text
    mirror = next(c for t in pods(objects) for c in t["spec"]["containers"] if c["name"] == "bucket-mirror")
    assert {"name": "TRAINBOARD_LOGDIR", "value": LOGDIR} in mirror["env"]
    assert "--source=$(TRAINBOARD_LOGDIR)" in mirror["args"]
    if name == "kubeflow":
        assert named(objects, "Tensorboard", "trainboard")["spec"]["logspath"] == LOGDIR
    assert text.count("gs://") == (2 if name == "kubeflow" else 1)
    assert of_kind(objects, "ConfigMap") == [], "kustomize-only settings must not be applied"
    settings = (MANIFESTS_DIR / "base" / "settings.yaml").read_text()
    assert "gs://YOUR-BUCKET/" in settings


def test_gke_workload_identity_iap_and_no_key():
    objects = rendered("gke", project="team-project-1", domain="tensorboard.team.example")
    account = named(objects, "ServiceAccount", "trainboard-tensorboard")
    assert account["metadata"]["annotations"] == {
        "iam.gke.io/gcp-service-account": "trainboard-tensorboard@team-project-1.iam.gserviceaccount.com"
    }
    assert of_kind(objects, "Secret") == []
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in yaml.safe_dump_all(objects)
    ingress = named(objects, "Ingress", "trainboard-tensorboard")
    assert ingress["metadata"]["annotations"]["kubernetes.io/ingress.allow-http"] == "false"
    certificate = named(
        objects,
        "ManagedCertificate",
        ingress["metadata"]["annotations"]["networking.gke.io/managed-certificates"],
    )
    assert certificate["spec"]["domains"] == ["tensorboard.team.example"]
    backend = ingress["spec"]["defaultBackend"]["service"]
    service = named(objects, "Service", backend["name"])
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    config_name = yaml.safe_load(service["metadata"]["annotations"]["cloud.google.com/backend-config"])[
        "default"
    ]
    backend_config = named(objects, "BackendConfig", config_name)
    assert backend_config["spec"]["iap"]["enabled"] is True
    assert has_port(containers_of(pods(objects)), backend_config["spec"]["healthCheck"]["port"])


def test_kubeflow_tensorboard_gets_workload_identity_not_a_key():
    objects = rendered("kubeflow", project="team-project-1")
    tensorboard = named(objects, "Tensorboard", "trainboard")
    poddefault = of_kind(objects, "PodDefault")[0]
    # The controller copies the resource's labels onto its pod: the PodDefault and the policy select it.
    assert matches(poddefault["spec"]["selector"]["matchLabels"], tensorboard["metadata"]["labels"])
    policy = named(objects, "NetworkPolicy", "trainboard-tensorboard")
    assert matches(policy["spec"]["podSelector"]["matchLabels"], tensorboard["metadata"]["labels"])
    account = named(objects, "ServiceAccount", poddefault["spec"]["serviceAccountName"])
    assert "iam.gke.io/gcp-service-account" in account["metadata"]["annotations"]
    # The controller mounts user-gcp-sa for gs://; it exists so the pod starts, and holds no key.
    secret = named(objects, "Secret", "user-gcp-sa")
    assert not secret.get("data") and not secret.get("stringData")


def test_namespace_applies_to_every_object():
    objects = rendered("basic", namespace="ml-team")
    assert {o["metadata"].get("namespace") for o in objects} == {"ml-team"}


def test_cli_prints_what_kubectl_applies(tmp_path):
    result = trainboard("manifests", "--bucket", BUCKET_ROOT, "--overlay", "basic", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == render(BUCKET_ROOT, "basic")


@pytest.mark.parametrize(
    ("overlay", "options"),
    [
        ("gke", ["--project", "team-project-1", "--domain", "tb.team.example"]),
        ("kubeflow", ["--project", "team-project-1"]),
    ],
)
def test_cli_renders_an_overlay_with_what_it_needs_and_no_placeholder(tmp_path, overlay, options):
    result = trainboard("manifests", "--bucket", BUCKET_ROOT, "--overlay", overlay, *options, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "YOUR-PROJECT" not in result.stdout and "tensorboard.example.com" not in result.stdout


BAD_MANIFESTS_INPUT = [
    # (arguments, after --bucket BUCKET_ROOT unless they name one; the option named; words of the message)
    (["--bucket", "s3://team-bucket/x", "--overlay", "gke"], "--bucket", "not a gs:// URI"),
    (["--bucket", "/local/path", "--overlay", "gke"], "--bucket", "not a gs:// URI"),
    (["--bucket", "gs://B/x", "--overlay", "gke"], "--bucket", "no valid bucket name"),
    (["--overlay", "aks"], "--overlay", "invalid choice: 'aks' (choose from 'gke', 'kubeflow', 'basic')"),
    (["--overlay", "basic", "--kubectl", "no-such-kubectl"], "--kubectl", "not found"),
    (["--overlay", "basic", "--project", "team-project-1"], "--project", "gke and kubeflow"),
    (["--overlay", "gke", "--project", "X"], "--project", "not a Google Cloud project"),
    (["--overlay", "gke", "--namespace", "Team_A"], "--namespace", "not a Kubernetes"),
    (["--overlay", "kubeflow", "--domain", "a.example"], "--domain", "gke overlay only"),
    # Placeholders (YOUR-PROJECT, tensorboard.example.com) would apply without a word.
    (["--overlay", "gke"], "--project", "gke overlay needs --project PROJECT"),
    (["--overlay", "gke"], "--project", "missing: --project, --domain"),
    (["--overlay", "gke", "--project", "team-project-1"], "--domain", "missing: --domain"),
    (["--overlay", "gke", "--domain", "tb.example.org"], "--project", "missing: --project"),
    (["--overlay", "kubeflow"], "--project", "kubeflow overlay needs --project PROJECT"),
]


@pytest.mark.parametrize(
    ("args", "option", "words"),
    BAD_MANIFESTS_INPUT,
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_bad_manifests_input_exits_2_with_one_line(tmp_path, args, option, words):
    bucket = [] if "--bucket" in args else ["--bucket", BUCKET_ROOT]
    result = trainboard("manifests", *bucket, *args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and lines[0].startswith(f"trainboard manifests: error: {option}: ")
        and words in lines[0]
    )


def test_image_dockerfile_is_hadolint_clean():
    dockerfile = MANIFESTS_DIR / "image" / "Dockerfile"
    result = subprocess.run([str(BIN / "hadolint"), str(dockerfile)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = dockerfile.read_text()
    assert "USER 10001:10001" in text  # the Deployment's runAsUser
    assert ":latest" not in text


def test_the_mirror_serves_health_and_both_probes_read_it(overlay):
    """The bucket mirror's /healthz (trainboard.board.bucket_mirror) is probed: liveness restarts a stale
    mirror, readiness shows a stale board; the port and the path are the ones the mirror serves."""
    _, objects = overlay
    mirror = next(c for t in pods(objects) for c in t["spec"]["containers"] if c["name"] == "bucket-mirror")
    args = dict(a.removeprefix("--").split("=", 1) for a in mirror["args"])
    port = int(args["health-port"])
    assert float(args["stale-after"]) >= 10 * float(args["interval"])
    assert {"name": "mirror-health", "containerPort": port, "protocol": "TCP"} in mirror["ports"]
    for probe in ("livenessProbe", "readinessProbe"):
        get = mirror[probe]["httpGet"]
        assert get["path"] == "/healthz" and get["port"] in ("mirror-health", port), probe
    assert int(args["keep-runs"]) > 0, "retention on: the board shows the latest runs and the champions"
    # The volume stays bounded whatever the bucket holds: the mirror's budget is under the emptyDir's
    # sizeLimit, past which the kubelet evicts the pod (one partial download of 4 MiB chunks aside).
    volume = next(c for t in pods(objects) for c in t["spec"]["volumes"] if c["name"] == "logs")
    limit = volume["emptyDir"]["sizeLimit"]
    assert limit.endswith("Gi") or limit.endswith("Mi"), limit
    limit_mib = float(limit[:-2]) * (1024 if limit.endswith("Gi") else 1)
    assert 0 < float(args["max-mib"]) <= 0.9 * limit_mib, (args["max-mib"], limit)
    liveness = mirror["livenessProbe"]
    # Restarts come only after the mirror itself says stale, not on one slow answer.
    assert liveness["periodSeconds"] * liveness["failureThreshold"] >= 60


def test_the_image_has_the_profile_plugin_pinned_to_match_tensorboard():
    dockerfile = (MANIFESTS_DIR / "image" / "Dockerfile").read_text()
    lock = (Path(__file__).parents[1] / "requirements" / "runtime.lock").read_text()
    tensorboard = next(line for line in lock.splitlines() if line.startswith("tensorboard=="))
    assert tensorboard in dockerfile
    minor = tensorboard.split("==")[1].rsplit(".", 1)[0]
    assert f"tensorboard-plugin-profile=={minor}." in dockerfile, "the plugin release of TensorBoard's minor"
    plugin = dockerfile.split("tensorboard-plugin-profile==")[1].split()[0]
    assert f"xprof=={plugin}" in dockerfile, "the plugin's implementation, pinned to the same version"


def test_the_image_pins_agree_with_the_locks():
    """A pin of the image's pip line that a lock also pins is the lock's version: pip refuses a constraint
    and a requirement that disagree, so a relock that forgets the Dockerfile breaks the image build."""
    from packaging.utils import canonicalize_name

    from tests.support.image_env import image_pip_arguments
    from tests.support.locks import locked_versions

    locked = locked_versions()
    pins = {
        canonicalize_name(name): version
        for name, _, version in (a.partition("==") for a in image_pip_arguments())
        if version
    }
    assert pins, "the Dockerfile's pip line is read"
    differing = {
        name: (version, locked[name])
        for name, version in pins.items()
        if locked.get(name, version) != version
    }
    assert not differing, f"Dockerfile pin vs lock: {differing}"


def test_the_multi_worker_component_validates_and_grants_what_the_hand_off_calls(tmp_path):
    """manifests/components/multi-worker, turned on in a team's kustomization: the ClusterTrainingRuntime
    against Trainer v2.3.0's CRD schema (unknown fields refused: the API server would drop them), the
    RBAC strictly, and they fit the code: the runtime's name, the workers' port, the verbs."""
    from tests.support.crd import strict_schema
    from trainboard.components.train.cluster_spec import PORT
    from trainboard.components.train.trainjob import GROUP, PLURAL, RUNTIME

    component = Path(MANIFESTS_DIR) / "components" / "multi-worker"
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"components:\n  - {os.path.relpath(component, tmp_path)}\n"
    )
    built = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, check=True
    )
    objects = list(yaml.safe_load_all(built.stdout))
    runtime = named(objects, "ClusterTrainingRuntime", RUNTIME)
    jsonschema.validate(runtime, strict_schema("clustertrainingruntimes.trainer.kubeflow.org"))
    for obj in of_kind(objects, "Role") + of_kind(objects, "RoleBinding"):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    [job] = runtime["spec"]["template"]["spec"]["replicatedJobs"]
    [node] = job["template"]["spec"]["template"]["spec"]["containers"]
    assert (job["name"], node["name"]) == ("node", "node"), "Trainer puts the TrainJob's image and env there"
    assert [p["containerPort"] for p in node["ports"]] == [PORT]
    rules = named(objects, "Role", "trainboard-trainjobs")["rules"]
    assert {"create", "get", "delete"} <= set(next(r for r in rules if r["apiGroups"] == [GROUP])["verbs"])
    assert next(r for r in rules if r["apiGroups"] == [GROUP])["resources"] == [PLURAL]
    assert {"resources": ["pods"], "verbs": ["get", "list"], "apiGroups": [""]} in rules
    assert {"resources": ["pods/log"], "verbs": ["get"], "apiGroups": [""]} in rules


def test_the_serving_component_validates_and_grants_exactly_the_rollout(tmp_path):
    """manifests/components/serving, turned on in a team's kustomization: the InferenceService against
    KServe v0.20.0's CRD schema (strict), the ServiceAccount and RBAC strictly; the tensorflow runtime
    at a pinned TF Serving, storageUri at the champion's export in KServe's layout, and the rollout's
    rights on that one object only."""
    from tests.support.crd import strict_schema

    component = Path(MANIFESTS_DIR) / "components" / "serving"
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"components:\n  - {os.path.relpath(component, tmp_path)}\n"
    )
    built = subprocess.run(
        ["kubectl", "kustomize", str(tmp_path)], capture_output=True, text=True, check=True
    )
    objects = list(yaml.safe_load_all(built.stdout))
    service = named(objects, "InferenceService", "trainboard-champion")
    schema = strict_schema("inferenceservices.serving.kserve.io")
    jsonschema.validate(service, schema)
    with pytest.raises(jsonschema.ValidationError, match="storageURI"):  # a misspelt field is refused
        model = {**service["spec"]["predictor"]["model"], "storageURI": "gs://x"}
        jsonschema.validate({**service, "spec": {"predictor": {"model": model}}}, schema)
    for obj in (
        of_kind(objects, "Role") + of_kind(objects, "RoleBinding") + of_kind(objects, "ServiceAccount")
    ):
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    predictor = service["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "tensorflow"} and model["runtimeVersion"] == "2.20.0"
    assert model["storageUri"].endswith("/models/champion/serving"), "the champion's export, not .keras"
    assert {"requests", "limits"} <= set(model["resources"])
    assert predictor["serviceAccountName"] == "trainboard-serving"
    named(objects, "ServiceAccount", "trainboard-serving")
    [rule] = named(objects, "Role", "trainboard-serving-rollout")["rules"]
    assert rule == {
        "apiGroups": ["serving.kserve.io"],
        "resources": ["inferenceservices"],
        "resourceNames": ["trainboard-champion"],
        "verbs": ["get", "patch"],
    }


# What each overlay needs (the CLI refuses placeholders).
COMPLETE_OPTIONS = {
    "gke": {"project": "team-project-1", "domain": "tb.team.example"},
    "kubeflow": {"project": "team-project-1"},
    "basic": {},
}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_serving_turned_on_renders_the_inference_service_over_the_roots_champion_and_validates(overlay):
    """`trainboard manifests --serving`: the serving component in the overlay, strictly valid, its
    storageUri the root's champion export (the bucket set once, by --bucket), and in the Workload Identity
    overlays the serving ServiceAccount acting as trainboard-serving@PROJECT; no placeholder left."""
    from tests.support.crd import strict_schema

    objects = list(
        yaml.safe_load_all(render(BUCKET_ROOT, overlay, serving=True, **COMPLETE_OPTIONS[overlay]))
    )
    service = named(objects, "InferenceService", "trainboard-champion")
    jsonschema.validate(service, strict_schema("inferenceservices.serving.kserve.io"))
    schemas = crd_schemas()
    for obj in objects:
        if (obj["apiVersion"], obj["kind"]) in schemas:
            jsonschema.validate(obj, schemas[obj["apiVersion"], obj["kind"]])
        else:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    model = service["spec"]["predictor"]["model"]
    assert model["storageUri"] == f"{BUCKET_ROOT}/models/champion/serving"
    account = named(objects, "ServiceAccount", service["spec"]["predictor"]["serviceAccountName"])
    annotations = account["metadata"].get("annotations", {})
    if overlay == "basic":
        assert "iam.gke.io/gcp-service-account" not in annotations, "no Workload Identity there"
    else:
        assert annotations["iam.gke.io/gcp-service-account"] == (
            "trainboard-serving@team-project-1.iam.gserviceaccount.com"
        )
        tensorboard = named(objects, "ServiceAccount", "trainboard-tensorboard")["metadata"]["annotations"]
        assert tensorboard["iam.gke.io/gcp-service-account"].startswith(
            "trainboard-tensorboard@team-project-1"
        )
    text = yaml.safe_dump_all(objects)
    assert "YOUR-" not in text
    assert named(objects, "Role", "trainboard-serving-rollout")["rules"][0]["resourceNames"] == [
        service["metadata"]["name"]
    ]


def test_serving_is_off_unless_asked(overlay):
    _, objects = overlay
    assert of_kind(objects, "InferenceService") == []
    assert all(o["metadata"]["name"] != "trainboard-serving" for o in objects)


def test_cli_serving_prints_what_render_renders(tmp_path):
    options = ["--project", "team-project-1"]
    result = trainboard(
        "manifests", "--bucket", BUCKET_ROOT, "--overlay", "kubeflow", *options, "--serving", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == render(BUCKET_ROOT, "kubeflow", project="team-project-1", serving=True)
    assert "kind: InferenceService" in result.stdout
