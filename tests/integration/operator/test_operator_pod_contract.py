"""The contract test: start what the operator wrote, and check it does what the resource asked.

For every example and for a resource with every server feature on:
1. the ForecastModel is applied to the real control plane, with the operator running;
2. the Deployment the operator wrote, and the Secrets it references, are read back from
   the apiserver;
3. its container is started from its own command, args and env, Secrets resolved as a
   kubelet resolves them (devenv.pods), on the port the Deployment names;
4. the behaviour the resource asked for is checked against real services: the API key
   (401 without, 200 with), a JWT (its audience and expiry checked), rows in the
   prediction log (PostgreSQL), the retention, the cache (Redis), the model's credentials
   (an S3 store and an https store that refuse anonymous reads), the declared version.
The backup CronJob's container is run the same way against PostgreSQL and S3.

What the test bed changes in a resource, and nothing else: the model's location (the same
scheme and path on a local store) and its sha256 (of the small model trained here); the
backup's S3 endpoint; the Secrets' values. The https store's certificate is issued by a
test CA handed to the process as SSL_CERT_FILE: it stands in for the image's CA bundle.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.server
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg
import pytest
import redis
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from forecastops.backup.manifest import parse_manifest

from devenv import pods
from devenv.paths import REPO, free_port
from devenv.pki import CertificateAuthority
from devenv.predlog import migrate_prediction_log
from model_training.train import TrainResult

pytestmark = [pytest.mark.cluster, pytest.mark.services, pytest.mark.slow]

API_KEY = "contract-api-key"
MODEL_TOKEN = "Bearer model-store-token"


# --- the resources -------------------------------------------------------------------------
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))
SERVER_FEATURES = ("auth.apiKeySecret", "auth.jwt", "cache", "predictionLog")


def test_the_examples_switch_every_server_feature_on() -> None:
    """So that "every example" below covers a resource with every server feature on."""
    secured = yaml.safe_load((REPO / "examples/secured.yaml").read_text())["spec"]
    for feature in SERVER_FEATURES:
        node = secured["server"]
        for key in feature.split("."):
            node = node[key]
    assert secured["model"]["uri"].startswith("https://") and secured["model"]["credentialsSecret"]
    assert any("s3://" in path.read_text() and "credentialsSecret" in path.read_text()
               for path in EXAMPLES)  # fmt: skip


# --- the test bed's stores ---------------------------------------------------------------
class HttpsModelStore:
    """An https server on loopback serving one file; a path in `private` only to callers
    with `MODEL_TOKEN`, as a model store that needs the resource's credentials."""

    def __init__(self, model: bytes, workdir: Path) -> None:
        ca = CertificateAuthority(workdir / "pki", name="contract-test-ca")
        pair = ca.issue("store", "127.0.0.1", ips=("127.0.0.1",), server=True)
        self.ca_file = ca.cert_path
        self.private: set[str] = set()
        self.authorized: list[str] = []
        self.refused: list[str] = []
        store = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                token = self.headers.get("Authorization")
                if self.path in store.private and token != MODEL_TOKEN:
                    store.refused.append(self.path)
                    self.send_response(401)
                    self.end_headers()
                    return
                store.authorized.append(self.path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(model)))
                self.end_headers()
                self.wfile.write(model)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(pair.cert, pair.key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def uri(self, path: str) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}{path}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Bed:
    """The real services a resource's Secrets point at, and what it needs of them."""

    model: TrainResult
    s3: Any
    https: HttpsModelStore
    redis_url: str
    database_url: str
    jwt_private: rsa.RSAPrivateKey
    workdir: Path
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)

    def prepare(self, body: dict[str, Any]) -> dict[str, Any]:
        """`body` pointed at this test bed (see the module's docstring), its Secrets made."""
        spec = body["spec"]
        model = spec["model"]
        scheme, _, rest = model["uri"].partition("://")
        path = "/" + rest.partition("/")[2]
        if scheme == "s3":
            bucket = rest.partition("/")[0]
            self.s3.ensure_bucket(bucket)
            self.s3.client().put_object(
                Bucket=bucket, Key=path.lstrip("/"), Body=self.model.model_path.read_bytes()
            )
        else:
            assert scheme == "https", scheme
            model["uri"] = self.https.uri(path)
        model["sha256"] = self.model.sha256
        s3_keys = {
            "AWS_ACCESS_KEY_ID": self.s3.access_key,
            "AWS_SECRET_ACCESS_KEY": self.s3.secret_key,
            "AWS_ENDPOINT_URL": self.s3.endpoint_url,
        }
        if secret := model.get("credentialsSecret"):
            self.secrets[secret] = s3_keys if scheme == "s3" else {"authorization": MODEL_TOKEN}
            if scheme == "https":
                self.https.private.add(path)
        server = spec.get("server", {})
        auth = server.get("auth", {})
        if ref := auth.get("apiKeySecret"):
            self.secrets.setdefault(ref["name"], {})[ref["key"]] = API_KEY
        if token := auth.get("jwt"):
            public = self.jwt_private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            ref = token["keySecret"]
            self.secrets.setdefault(ref["name"], {})[ref["key"]] = public.decode()
        if cache := server.get("cache"):
            ref = cache["redisUrlSecret"]
            self.secrets.setdefault(ref["name"], {})[ref["key"]] = self.redis_url
        if log := server.get("predictionLog"):
            ref = log["postgresUrlSecret"]
            self.secrets.setdefault(ref["name"], {})[ref["key"]] = self.database_url
        if backup := spec.get("backup"):
            s3 = backup["destination"]["s3"]
            s3["endpoint"] = self.s3.endpoint_url
            self.s3.ensure_bucket(s3["bucket"])
            self.secrets[s3["credentialsSecret"]] = s3_keys
        return body

    def token(self, jwt_spec: dict[str, Any], **claims: Any) -> str:
        """A token as the resource's issuer would mint it for its audience, then `claims`."""
        now = int(time.time())
        payload = {"aud": jwt_spec["audience"], "sub": "t", "iat": now, "exp": now + 600}
        if "issuer" in jwt_spec:
            payload["iss"] = jwt_spec["issuer"]
        payload.update(claims)
        return jwt.encode(payload, self.jwt_private, algorithm="RS256")


@pytest.fixture(scope="module")
def https_store(tiny_model: TrainResult, tmp_path_factory: pytest.TempPathFactory):
    store = HttpsModelStore(tiny_model.model_path.read_bytes(), tmp_path_factory.mktemp("https"))
    yield store
    store.close()


@pytest.fixture
def bed(tiny_model, s3, https_store, redis_server, pg_database, tmp_path) -> Bed:
    redis.Redis.from_url(redis_server.url).flushdb()
    return Bed(
        model=tiny_model,
        s3=S3Buckets(s3),
        https=https_store,
        redis_url=redis_server.url,
        database_url=pg_database,
        jwt_private=rsa.generate_private_key(public_exponent=65537, key_size=2048),
        workdir=tmp_path,
    )


class S3Buckets:
    """The session's S3 server, with buckets made on demand (kept for the session)."""

    def __init__(self, s3: Any) -> None:
        self._s3 = s3
        self.access_key, self.secret_key = s3.access_key, s3.secret_key
        self.endpoint_url = s3.endpoint_url

    def client(self) -> Any:
        return self._s3.client()

    def ensure_bucket(self, name: str) -> None:
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
        if name not in existing:
            client.create_bucket(Bucket=name)


# --- reading what the operator wrote -------------------------------------------------------
def create_secrets(kit, namespace: str, secrets: dict[str, dict[str, str]]) -> None:
    for name, data in secrets.items():
        secret = {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
        done = kit.apply(secret, namespace)
        assert done.returncode == 0, done.stderr


def secret_reader(kit, namespace: str) -> pods.SecretReader:
    """Secrets as the kubelet sees them: read from the apiserver, base64-decoded."""

    def read(name: str) -> dict[str, str] | None:
        secret = kit.get("secrets", name, namespace)
        if secret is None:
            return None
        return {k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()}

    return read


def written_deployment(kit, name: str, namespace: str) -> dict[str, Any]:
    return kit.wait_for(
        lambda: kit.get("deployments", name, namespace), timeout=60, what=f"Deployment {name}"
    )


def start_container(
    kit, namespace: str, deployment: dict, bed: Bed, stem: str, image: str | None = None
) -> pods.Container:
    """The Deployment's one container: a process, or in `image` under podman. The test
    CA stands in for the image's CA bundle."""
    workdir = bed.workdir / stem
    workdir.mkdir()
    pod = deployment["spec"]["template"]["spec"]
    container, secrets = pod["containers"][0], secret_reader(kit, namespace)
    if image is None:
        image_env = {"SSL_CERT_FILE": str(bed.https.ca_file)}
        return pods.start_process(container, secrets, workdir, image_env)
    ca = "/etc/forecastops-test/ca.crt"
    return pods.start_podman(
        container,
        pod,
        secrets,
        workdir,
        image=image,
        image_env={"SSL_CERT_FILE": ca},
        files={bed.https.ca_file: ca},
    )


@pytest.fixture
def started() -> Iterator[list[pods.Container]]:
    containers: list[pods.Container] = []
    yield containers
    for container in containers:
        container.stop()


# --- the behaviour the resource asked for ---------------------------------------------------
def infer_body(model: TrainResult, request_id: str, rows: int = 2) -> dict[str, Any]:
    n = len(model.feature_names)
    data = [float((i * 7 + j) % 5) for i in range(rows) for j in range(n)]
    tensor = {"name": "input", "shape": [rows, n], "datatype": "FP32", "data": data}
    return {"id": request_id, "inputs": [tensor]}


def check_auth(client: httpx.Client, url: str, body: dict[str, Any], spec: dict, bed: Bed):
    auth = spec.get("server", {}).get("auth")
    anonymous = client.post(url, json=body)
    if auth is None:
        assert anonymous.status_code == 200, anonymous.text
        return {}
    assert anonymous.status_code == 401, f"no credentials, yet {anonymous.status_code}"
    headers: dict[str, str] = {}
    if "apiKeySecret" in auth:
        wrong = client.post(url, json=body, headers={"X-API-Key": "wrong"})
        assert wrong.status_code == 401
        headers = {"X-API-Key": API_KEY}
        assert client.post(url, json=body, headers=headers).status_code == 200
    if "jwt" in auth:
        good = {"Authorization": f"Bearer {bed.token(auth['jwt'])}"}
        assert client.post(url, json=body, headers=good).status_code == 200
        for claims in ({"aud": "someone-else"}, {"exp": int(time.time()) - 60}, {"iss": "x"}):
            bad = {"Authorization": f"Bearer {bed.token(auth['jwt'], **claims)}"}
            refused = client.post(url, json=body, headers=bad)
            assert refused.status_code == 401, f"a token with {claims} got {refused.status_code}"
        headers = headers or good
    return headers


def metric(text: str, name: str) -> float:
    return sum(
        float(line.rpartition(" ")[2])
        for line in text.splitlines()
        if line.startswith(name + "{") or line.startswith(name + " ")
    )


def check_cache(client: httpx.Client, url: str, body, headers, container, bed: Bed) -> None:
    first = client.post(url, json=body, headers=headers)
    second = client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 200
    assert first.json()["outputs"] == second.json()["outputs"]
    keys = redis.Redis.from_url(bed.redis_url).dbsize()
    assert keys > 0, "the cache wrote nothing to Redis"
    hits = metric(client.get(container.url("/metrics")).text, "prediction_service_cache_hits_total")
    assert hits >= 1, "the repeated request was not answered from Redis"


def check_prediction_log(bed: Bed, revision: str, request_id: str, expired: date) -> None:
    """Rows of this request and revision arrive; the partition of `expired`, a day past the
    resource's retention, was dropped (secured.yaml keeps 14 days: under the default 30)."""

    def rows() -> int:
        with psycopg.connect(bed.database_url) as conn:
            query = "SELECT count(*) FROM prediction_log WHERE revision = %s AND request_id = %s"
            return conn.execute(query, [revision, request_id]).fetchone()[0]

    deadline = time.monotonic() + 30
    while rows() < 2:
        assert time.monotonic() < deadline, "no prediction reached PostgreSQL in 30 s"
        time.sleep(0.3)
    with psycopg.connect(bed.database_url) as conn:
        names = {
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass('prediction_log')"
            )
        }
    assert f"prediction_log_p{expired:%Y%m%d}" not in names, sorted(names)


# --- the tests ------------------------------------------------------------------------------
@pytest.fixture(params=["process", "image"])
def runtime(request: pytest.FixtureRequest) -> str | None:
    """None: the container as a process; else the server image, run by podman."""
    return request.getfixturevalue("server_image") if request.param == "image" else None


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda path: path.stem)
def test_the_server_the_operator_wrote_does_what_the_resource_asked(
    example: Path, runtime: str | None, kit, operator, namespace: str, bed: Bed, started
) -> None:
    body = bed.prepare(yaml.safe_load(example.read_text()))
    create_secrets(kit, namespace, bed.secrets)
    applied = kit.apply(body, namespace)
    assert applied.returncode == 0, applied.stderr
    name, spec = body["metadata"]["name"], body["spec"]

    log = spec.get("server", {}).get("predictionLog")
    if log:  # the log as earlier pods left it, with a day just past this resource's retention
        expired = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=log["retentionDays"] + 1)
        migrate_prediction_log(bed.database_url, old_partitions=(expired,))
    deployment = written_deployment(kit, name, namespace)
    revision = deployment["spec"]["template"]["metadata"]["labels"]["forecastops.io/revision"]
    process = start_container(kit, namespace, deployment, bed, "pod", image=runtime)
    started.append(process)
    process.wait_ready(timeout=60)
    assert "is not a setting" not in process.text()

    url = process.url(f"/v2/models/{name}/infer")
    request_id = f"contract-{uuid.uuid4().hex[:8]}"
    with httpx.Client(timeout=10) as client:
        headers = check_auth(client, url, infer_body(bed.model, request_id), spec, bed)
        meta = client.get(process.url(f"/v2/models/{name}"), headers=headers).json()
        assert meta["versions"] == [spec["model"]["version"]], meta
        if "cache" in spec.get("server", {}):
            check_cache(client, url, infer_body(bed.model, "cached"), headers, process, bed)
    model = spec["model"]
    if model["uri"].startswith("https://") and model.get("credentialsSecret"):
        assert bed.https.authorized and not bed.https.refused, "the model's credentials"
    if log:
        check_prediction_log(bed, revision, request_id, expired)


def test_the_backup_cronjob_the_operator_wrote_backs_up(
    kit, operator, namespace: str, bed: Bed, started
) -> None:
    """production.yaml: its server writes predictions, then its CronJob's container, run as
    its Job's pod would run it, backs them up with the model file."""
    body = bed.prepare(yaml.safe_load((REPO / "examples/production.yaml").read_text()))
    create_secrets(kit, namespace, bed.secrets)
    assert kit.apply(body, namespace).returncode == 0
    name = body["metadata"]["name"]
    server = start_container(kit, namespace, written_deployment(kit, name, namespace), bed, "pod")
    started.append(server)
    server.wait_ready(timeout=60)
    with httpx.Client(timeout=10, headers={"X-API-Key": API_KEY}) as client:
        for i in range(3):
            body_ = infer_body(bed.model, f"backup-{i}")
            assert client.post(server.url(f"/v2/models/{name}/infer"), json=body_).is_success
    server.stop()  # a graceful stop flushes the prediction log
    with psycopg.connect(bed.database_url) as conn:
        logged = conn.execute("SELECT count(*) FROM prediction_log").fetchone()[0]
    assert logged == 6

    cronjob = kit.wait_for(
        lambda: kit.get("cronjobs", f"{name}-backup", namespace), timeout=60, what="CronJob"
    )
    pod = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    workdir = bed.workdir / "job"
    workdir.mkdir()
    job = pods.start_process(pod["containers"][0], secret_reader(kit, namespace), workdir)
    started.append(job)
    assert job.wait_exit(timeout=120) == 0, job.text()[-4000:]

    s3 = body["spec"]["backup"]["destination"]["s3"]
    listing = bed.s3.client().list_objects_v2(Bucket=s3["bucket"], Prefix=s3["prefix"] + name)
    keys = [item["Key"] for item in listing.get("Contents", [])]
    manifests = [key for key in keys if key.endswith("/manifest.json")]
    assert manifests, keys
    raw = bed.s3.client().get_object(Bucket=s3["bucket"], Key=manifests[-1])["Body"].read()
    manifest, problems = parse_manifest(raw)
    assert manifest is not None, problems
    counts = manifest.database.row_counts  # by partition: public.prediction_log_p<day>
    assert sum(n for table, n in counts.items() if "prediction_log" in table) == logged, counts
    artifacts = [key for key in keys if "/artifacts/stable/" in key]
    assert artifacts, f"the stable model was not backed up: {keys}"
