"""A real Kubernetes control plane for tests: etcd + kube-apiserver on 127.0.0.1.

No kubelet, scheduler or controller-manager run, so pods never start and nothing garbage
collects; every object the operator writes is still validated (schemas, CEL rules, RBAC)
and stored by the real API server. The binaries come from k8s/testenv/build.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cryptopipeline.localkafka._broker import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "k8s" / "testenv" / "build.py"
ADMIN_TOKEN_USER = "admin"


class ControlPlaneUnavailable(RuntimeError):
    """The binaries are missing and cannot be built here; the message says why."""


def binaries(*, build: bool = True) -> Path:
    """The folder holding kube-apiserver and etcd, building them first if allowed."""
    check = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--check"], capture_output=True, text=True
    )
    folder = Path(check.stdout.strip())
    if check.returncode == 0:
        return folder
    if not build:
        raise ControlPlaneUnavailable(f"control-plane binaries not built in {folder}")
    if shutil.which("go") is None:
        raise ControlPlaneUnavailable("go is not installed, so kube-apiserver cannot be built")
    done = subprocess.run(
        [sys.executable, str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=3600
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise ControlPlaneUnavailable(f"building kube-apiserver/etcd failed:\n{tail}")
    return Path(done.stdout.strip())


@dataclass
class User:
    """A static-token identity of the test API server."""

    name: str
    token: str
    groups: tuple[str, ...] = ()


@dataclass
class ControlPlane:
    """etcd and kube-apiserver in `home`, on free ports; `start()`, then `kubeconfig`."""

    home: Path
    bin_dir: Path
    users: list[User] = field(default_factory=list)
    etcd_port: int = field(default_factory=free_port)
    etcd_peer_port: int = field(default_factory=free_port)
    port: int = field(default_factory=free_port)
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def admin(self) -> User:
        return self.users[0]

    def start(self, *, within: float = 120.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        (self.home / "logs").mkdir(exist_ok=True)
        if not self.users:
            self.users.append(User(ADMIN_TOKEN_USER, os.urandom(16).hex(), ("system:masters",)))
        self._write_credentials()
        self._start_etcd()
        self._start_apiserver()
        self._wait_ready(within)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self._procs):
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self._procs.clear()

    def add_user(self, user: User) -> None:
        """Register another static-token identity; call before `start()`."""
        self.users.append(user)

    def kubeconfig(self, user: User | None = None) -> Path:
        """A kubeconfig file for `user` (default: the admin, in system:masters)."""
        user = user or self.admin
        path = self.home / f"kubeconfig-{user.name.replace(':', '_')}"
        path.write_text(
            "apiVersion: v1\nkind: Config\n"
            "clusters:\n- name: test\n  cluster:\n"
            f"    server: {self.url}\n"
            f"    certificate-authority: {self.home / 'certs' / 'apiserver.crt'}\n"
            "users:\n- name: user\n  user:\n"
            f"    token: {user.token}\n"
            "contexts:\n- name: test\n  context: {cluster: test, user: user, namespace: default}\n"
            "current-context: test\n"
        )
        return path

    def _write_credentials(self) -> None:
        lines = [f'{u.token},{u.name},{u.name},"{",".join(u.groups)}"' for u in self.users]
        (self.home / "tokens.csv").write_text("\n".join(lines) + "\n")
        key = self.home / "sa.key"
        if not key.exists():
            if shutil.which("openssl") is None:
                raise ControlPlaneUnavailable("openssl is needed for the ServiceAccount key")
            subprocess.run(
                ["openssl", "genrsa", "-out", str(key), "2048"], check=True, capture_output=True
            )

    def _spawn(self, name: str, cmd: list[str]) -> None:
        log = open(self.home / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - child keeps it
        proc = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.home
        )
        log.close()
        self._procs.append(proc)

    def _start_etcd(self) -> None:
        client = f"http://127.0.0.1:{self.etcd_port}"
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        self._spawn(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--name=test",
                f"--data-dir={self.home / 'etcd'}",
                f"--listen-client-urls={client}",
                f"--advertise-client-urls={client}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=test={peer}",
                "--unsafe-no-fsync",
                "--log-level=warn",
            ],
        )

    def _start_apiserver(self) -> None:
        key = self.home / "sa.key"
        self._spawn(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={self.port}",
                f"--cert-dir={self.home / 'certs'}",
                f"--token-auth-file={self.home / 'tokens.csv'}",
                "--authorization-mode=RBAC",
                f"--service-account-key-file={key}",
                f"--service-account-signing-key-file={key}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                # Only allocations in etcd (no kube-proxy, no routes): room for the operator
                # scale benchmark's 600 Services (a /24 ran out).
                "--service-cluster-ip-range=10.96.0.0/16",
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false",
                "--v=1",
            ],
        )

    def _wait_ready(self, within: float) -> None:
        deadline = time.monotonic() + within
        last = "no answer yet"
        while time.monotonic() < deadline:
            for proc, name in zip(self._procs, ("etcd", "kube-apiserver"), strict=False):
                if proc.poll() is not None:
                    tail = self.log_tail(name)
                    self.stop()
                    raise RuntimeError(f"{name} exited with {proc.returncode}:\n{tail}")
            ca = self.home / "certs" / "apiserver.crt"
            if ca.exists():
                try:
                    if self._get("/readyz", ca) == 200:
                        return
                except OSError as exc:
                    last = str(exc)
            time.sleep(0.25)
        tail = self.log_tail("kube-apiserver")
        self.stop()
        raise RuntimeError(f"kube-apiserver not ready within {within}s ({last}):\n{tail}")

    def _get(self, path: str, ca: Path) -> int:
        context = ssl.create_default_context(cafile=str(ca))
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {self.admin.token}"}
        )
        with contextlib.closing(urllib.request.urlopen(request, context=context, timeout=5)) as r:
            return int(r.status)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.home / "logs" / f"{name}.log"
        if not path.exists():
            return "(no log)"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextlib.contextmanager
def running(home: Path, *, users: list[User] | None = None) -> Iterator[ControlPlane]:
    """Start a control plane in `home` and stop it afterwards."""
    plane = ControlPlane(home=home, bin_dir=binaries())
    for user in users or []:
        plane.users.append(user)
    plane.start()
    try:
        yield plane
    finally:
        plane.stop()
