"""lazy_ca_certificates: TLS set-up gets cheap, and a connection that verifies still does."""

import os
import shutil
import socket
import ssl
import subprocess
import sys
import threading

import pytest

from tutorial_kit.steps import lazy_ca_certificates

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def authority(tmp_path_factory):
    """A CA in a hashed folder (as /etc/ssl/certs is), and a server certificate it signed."""
    work = tmp_path_factory.mktemp("ca")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=Tutorial Test CA", cwd=work)
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
            "-subj", "/CN=localhost", cwd=work)
    (work / "ext.cnf").write_text("subjectAltName=DNS:localhost\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf", cwd=work)
    (work / "certs").mkdir()
    shutil.copy(work / "ca.pem", work / "certs" / "ca.pem")
    (work / "bundle.pem").write_text((work / "ca.pem").read_text())
    openssl("rehash", "certs", cwd=work)
    (work / "empty").mkdir()
    return work


def verifies(env: dict[str, str], authority) -> str:
    """Handshake, verifying, with a server whose certificate the test CA signed."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(authority / "server.pem", authority / "server.key")
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        conn, _ = listener.accept()
        try:
            with server.wrap_socket(conn, server_side=True):
                pass
        except (ssl.SSLError, OSError):
            pass

    threading.Thread(target=serve, daemon=True).start()
    env = dict(env)
    lazy_ca_certificates(env)  # as step_env does for every step command
    # A process of its own: OpenSSL reads SSL_CERT_FILE and SSL_CERT_DIR from its environment.
    client = (
        "import socket, ssl\n"
        "ctx = ssl.create_default_context()\n"
        f"sock = socket.create_connection(('127.0.0.1', {listener.getsockname()[1]}))\n"
        "try:\n    ctx.wrap_socket(sock, server_hostname='localhost'); print('verified')\n"
        "except ssl.SSLCertVerificationError as exc:\n    print('refused:', exc.verify_message)\n"
    )
    result = subprocess.run([sys.executable, "-c", client], env=env, capture_output=True,
                            text=True, timeout=30)
    listener.close()
    return result.stdout.strip()


def test_the_bundle_is_no_longer_parsed_for_each_connection(authority):
    env = {"SSL_CERT_DIR": str(authority / "certs")}
    lazy_ca_certificates(env)
    assert env["SSL_CERT_FILE"].startswith(str(authority / "certs"))
    assert not os.path.exists(env["SSL_CERT_FILE"])


def test_a_connection_that_verifies_still_finds_its_ca_in_the_folder(authority):
    base = {k: v for k, v in os.environ.items() if k != "SSL_CERT_FILE"}
    # The system's bundle, named explicitly (as CI machines do), is replaced by the folder...
    env = {**base, "SSL_CERT_DIR": str(authority / "certs"), "SSL_CERT_FILE": ssl.get_default_verify_paths().openssl_cafile}
    assert verifies(env, authority) == "verified"
    # ...and verification is real: a folder without the CA refuses the same server.
    env = {**base, "SSL_CERT_DIR": str(authority / "empty")}
    assert verifies(env, authority).startswith("refused:")


def test_a_bundle_of_ones_own_is_kept(authority):
    env = {**os.environ, "SSL_CERT_FILE": str(authority / "bundle.pem"),
           "SSL_CERT_DIR": str(authority / "empty")}
    before = dict(env)
    lazy_ca_certificates(env)
    assert env == before
    assert verifies(env, authority) == "verified"  # from the bundle named, as before


def test_without_a_hashed_folder_nothing_changes(authority):
    env = {"SSL_CERT_DIR": str(authority / "empty")}
    lazy_ca_certificates(env)
    assert env == {"SSL_CERT_DIR": str(authority / "empty")}


def test_the_folders_are_those_of_the_environment_given(monkeypatch, authority):
    """Not this process's: step_env prepares the environment of another one."""
    monkeypatch.setenv("SSL_CERT_DIR", str(authority / "empty"))
    env = {"SSL_CERT_DIR": f"{authority / 'empty'}{os.pathsep}{authority / 'certs'}"}
    lazy_ca_certificates(env)
    assert env["SSL_CERT_FILE"].startswith(str(authority / "certs"))
