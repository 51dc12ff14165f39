"""The real engines a team runs, started on free loopback ports for the tests and the benchmarks:
PostgreSQL (Debian's package) and S3 (moto's server)."""

import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from contextlib import contextmanager
from pathlib import Path

from tasks.infra.local_servers import free_port


def postgres_bin(name: str) -> str | None:
    found = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return str(found[-1]) if found else shutil.which(name)


@contextmanager
def postgres_server():
    """A PostgreSQL server with a database `mlflow`; yields its SQLAlchemy URL (user mlpipe, trust on loopback)."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    # PostgreSQL refuses to run as root: run it as the package's postgres user then.
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    folder = Path(tempfile.mkdtemp(prefix="mlpipe-pg-"))
    if as_user:
        shutil.chown(folder, "postgres")
    data, port = folder / "data", free_port()
    subprocess.run([*as_user, initdb, "-D", str(data), "-U", "mlpipe", "--auth=trust"], check=True, capture_output=True)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
    # The server outlives pg_ctl: it must write to a log file, not to pipes that we would wait on forever.
    start = [*as_user, pg_ctl, "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w", "start"]
    subprocess.run(start, check=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, timeout=120)
    try:
        createdb = [postgres_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "mlpipe", "mlflow"]
        subprocess.run(createdb, check=True, capture_output=True)
        yield f"postgresql+psycopg://mlpipe@127.0.0.1:{port}/mlflow"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "stop"], stdout=subprocess.DEVNULL, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def new_database(postgres_url: str, name: str) -> str:
    """A fresh database on the server: the URL of `postgres_url` with its name."""
    import psycopg

    with psycopg.connect(postgres_url.replace("+psycopg", ""), autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return postgres_url.rsplit("/", 1)[0] + f"/{name}"


@contextmanager
def s3_server():
    """moto's S3 server, a real S3 API over HTTP; yields its endpoint URL."""
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "moto's S3 server did not start"
                time.sleep(0.2)
        yield endpoint
    finally:
        server.terminate()
        server.wait(timeout=30)


def s3_environment(endpoint: str) -> dict[str, str]:
    """The usual AWS variables that point boto3, s3fs and DVC at the server."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


def new_bucket() -> str:
    """A bucket of its own, on the server the AWS variables point at."""
    import boto3

    name = f"mlpipe-{uuid.uuid4().hex[:12]}"
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def bucket_objects(url: str) -> dict[str, int]:
    """The keys under an s3:// URL, relative to it, with their sizes in bytes."""
    import s3fs

    prefix = url.removeprefix("s3://")
    found = s3fs.S3FileSystem().find(prefix, detail=True)
    return {path.removeprefix(prefix + "/"): info["size"] for path, info in found.items()}
