"""A TLS Dask scheduler, as docs/cluster.md describes it (issue 14, item 9).

A private CA and certificate are made with the openssl command line; the scheduler
requires encryption; tmsnet's client takes its credentials from dask's configuration
(here the DASK_DISTRIBUTED__COMM__... environment variables), as the docs tell users.
"""

import os
import shutil
import subprocess
import sys

import pytest

CLI = [sys.executable, "-c", "import sys; from tmsnet.cli import main; sys.exit(main())"]

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl command is needed to make certificates")


def _certificates(folder):
    def run(*args):
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=tmsnet-ca",
        "-keyout", "ca.key", "-out", "ca.pem")
    run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=tmsnet", "-keyout", "tls.key",
        "-out", "tls.csr")
    run("x509", "-req", "-in", "tls.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "tls.pem")
    return folder / "ca.pem", folder / "tls.pem", folder / "tls.key"


@pytest.fixture(scope="module")
def tls_cluster(tmp_path_factory):
    from distributed import LocalCluster
    from distributed.security import Security

    ca, cert, key = _certificates(tmp_path_factory.mktemp("tls"))
    security = Security(tls_ca_file=str(ca), tls_scheduler_cert=str(cert),
                        tls_scheduler_key=str(key), tls_worker_cert=str(cert),
                        tls_worker_key=str(key), tls_client_cert=str(cert),
                        tls_client_key=str(key), require_encryption=True)
    with LocalCluster(n_workers=1, processes=False, threads_per_worker=1, protocol="tls://",
                      security=security, dashboard_address=None, silence_logs=40) as cluster:
        yield cluster, {"DASK_DISTRIBUTED__COMM__REQUIRE_ENCRYPTION": "True",
                        "DASK_DISTRIBUTED__COMM__TLS__CA_FILE": str(ca),
                        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__CERT": str(cert),
                        "DASK_DISTRIBUTED__COMM__TLS__CLIENT__KEY": str(key)}


def _participant(bids, out, address, env):
    return subprocess.run(
        [*CLI, str(bids), str(out), "participant", "--dask-scheduler", address, "--method",
         "peak", "--n-bootstrap", "0", "--no-report", "--quiet"],
        capture_output=True, text=True, timeout=300, env={**os.environ, **env})


def test_participant_runs_on_a_tls_scheduler_with_the_configured_certificates(
        tls_cluster, small_bids, tmp_path):
    cluster, env = tls_cluster
    assert cluster.scheduler_address.startswith("tls://")
    run = _participant(small_bids, tmp_path / "out", cluster.scheduler_address, env)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "out" / "sub-01").is_dir() and (tmp_path / "out" / "sub-02").is_dir()


def test_a_client_without_certificates_is_refused_in_one_line(tls_cluster, small_bids, tmp_path):
    cluster, _ = tls_cluster
    run = _participant(small_bids, tmp_path / "out", cluster.scheduler_address, {})
    assert run.returncode != 0
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "sub-01").exists()
