#!/usr/bin/env python3
"""A one-node Kubernetes cluster in its own network namespace, for `make e2e`.

containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
kube-proxy, CoreDNS and the test driver all run inside one network namespace that this
script creates (``ip netns add``) and removes. It holds the node address on a bridge with
no ports, the pod and Service ranges and no default route: nothing listens on, or sends to,
an address of the host itself.

    python3 k8s/cluster/cluster.py build           # packages, binaries, images (cached)
    python3 k8s/cluster/cluster.py up              # build, then start the cluster
    python3 k8s/cluster/cluster.py exec -- CMD     # run CMD inside the cluster's namespace
    python3 k8s/cluster/cluster.py down            # stop every process by PID, clean up
    python3 k8s/cluster/cluster.py run -- CMD      # up, CMD, down (also on failure/Ctrl-C)

Binaries and images are cached under ``$CRYPTOPIPELINE_CACHE/cluster`` (default
``~/.cache/cryptopipeline``), keyed by version and content hash; the running cluster's
files live in ``.work/cluster`` of the repository. Standard library only; needs root.
docs/deploy.md ("Run it on a local one-node cluster without Docker") explains it.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
TESTENV_BUILD = REPO / "k8s" / "testenv" / "build.py"
CHART_TOOLS = REPO / "charts" / "tools.py"

NETNS = "cryptopipeline-e2e"
NODE_NAME = "e2e-node"
NODE_BRIDGE = "cpnode0"
NODE_IP = "10.201.0.1"
NODE_CIDR = "10.201.0.1/24"
POD_CIDR = "10.202.0.0/16"
SERVICE_CIDR = "10.96.0.0/16"
CGROUP_ROOT = "/cryptopipeline-e2e"
API_PORT = 6443
PAUSE_IMAGE = "cryptopipeline.local/pause:e2e"
BASE_IMAGE = "cryptopipeline.local/python:3.11-bookworm"
PROJECT_IMAGE = "cryptopipeline"

DEBIAN_PACKAGES = {
    # package: a file it installs (present means installed)
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "debootstrap": "/usr/sbin/debootstrap",
    "buildah": "/usr/bin/buildah",
    "iptables": "/usr/sbin/iptables",
    "conntrack": "/usr/sbin/conntrack",
}
KUBE_BINARIES = {
    "kubelet": "k8s.io/kubernetes/cmd/kubelet",
    "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
    "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
    "kube-proxy": "k8s.io/kubernetes/cmd/kube-proxy",
    "kubectl": "k8s.io/kubernetes/cmd/kubectl",
}
# The files of the project image; a change in any of them builds it afresh.
IMAGE_INPUTS = ("Dockerfile", "pyproject.toml", "README.md", "workloads", "operator", "ksqldb")

_STARTED = time.monotonic()


class MissingPiece(SystemExit):
    """Something the cluster needs cannot be had here; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(f"cluster: {message}")


def say(message: str) -> None:
    print(f"[{time.monotonic() - _STARTED:7.1f}s] {message}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def step(name: str) -> Iterator[None]:
    started = time.monotonic()
    say(f"{name} ...")
    yield
    say(f"{name}: done in {time.monotonic() - started:.1f}s")


def cache_root() -> Path:
    base = os.environ.get("CRYPTOPIPELINE_CACHE")
    return (Path(base) if base else Path.home() / ".cache" / "cryptopipeline") / "cluster"


def run_dir() -> Path:
    return Path(os.environ.get("CRYPTOPIPELINE_CLUSTER_DIR", REPO / ".work" / "cluster"))


def _digest(*paths: Path, extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for f in files:
            if "__pycache__" in f.parts or f.suffix == ".pyc":
                continue
            h.update(str(f.relative_to(REPO) if f.is_relative_to(REPO) else f).encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def _locked(name: str) -> Iterator[None]:
    cache_root().mkdir(parents=True, exist_ok=True)
    with open(cache_root() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def sh(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    """Run a command; on failure, raise with its output's tail."""
    done = subprocess.run(cmd, capture_output=True, text=True, **kw)  # type: ignore[call-overload]
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise RuntimeError(f"{' '.join(cmd[:4])} ... exited {done.returncode}:\n{tail}")
    return done  # type: ignore[no-any-return]


# --- packages and binaries -------------------------------------------------------------


def ensure_packages() -> None:
    missing = [pkg for pkg, path in DEBIAN_PACKAGES.items() if not Path(path).exists()]
    if not missing:
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise MissingPiece(f"Debian packages missing: {' '.join(missing)} (apt-get as root)")
    with step(f"apt-get install {' '.join(missing)}"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        sh(["apt-get", "update", "-qq"], env=env)
        sh(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def kubernetes_version() -> str:
    match = re.search(r"k8s\.io/kubernetes (v[\d.]+)", (HERE / "kube" / "go.mod").read_text())
    if match is None:
        raise MissingPiece("k8s/cluster/kube/go.mod does not require k8s.io/kubernetes")
    return match.group(1)


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise MissingPiece("go is not installed: kubelet and friends are built from Go modules")
    return go


def control_plane_bin() -> Path:
    """kube-apiserver + etcd, built and cached by k8s/testenv/build.py."""
    done = subprocess.run([sys.executable, str(TESTENV_BUILD)], stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise MissingPiece("kube-apiserver/etcd could not be built (k8s/testenv/build.py)")
    return Path(done.stdout.strip())


def kube_bin() -> Path:
    """kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl (cached)."""
    kube = HERE / "kube"
    version = kubernetes_version()
    folder = (
        cache_root()
        / "bin"
        / f"{version}-{_digest(kube / 'go.mod', kube / 'go.sum', kube / 'tools.go')}"
    )
    if all((folder / name).exists() for name in KUBE_BINARIES):
        return folder
    go = _go()
    major, minor = version.lstrip("v").split(".")[:2]
    pkg = "k8s.io/component-base/version"
    ldflags = (
        f"-s -w -X {pkg}.gitVersion={version} -X {pkg}.gitMajor={major}"
        f" -X {pkg}.gitMinor={minor} -X {pkg}.gitTreeState=clean"
    )
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
    with _locked("bin"):
        folder.mkdir(parents=True, exist_ok=True)
        for name, package in KUBE_BINARIES.items():
            if (folder / name).exists():
                continue
            with step(f"go build {name} (cold: minutes)"):
                out = folder / f".{name}.partial"
                cmd = [
                    "nice", "-n", "15", go, "build", "-trimpath", "-ldflags", ldflags,
                    "-o", str(out), package,
                ]  # fmt: skip
                subprocess.run(cmd, cwd=kube, env=env, check=True)
                out.rename(folder / name)
    return folder


def coredns_bin() -> Path:
    src = HERE / "coredns"
    match = re.search(r"coredns/coredns (v[\d.]+)", (src / "go.mod").read_text())
    version = match.group(1) if match else "unknown"
    folder = cache_root() / "coredns" / f"{version}-{_digest(src)}"
    if (folder / "coredns").exists():
        return folder
    go = _go()
    with _locked("coredns"), step("go build coredns"):
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / ".coredns.partial"
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        cmd = ["nice", "-n", "15", go, "build", "-trimpath", "-ldflags=-s -w", "-o", str(out), "."]
        subprocess.run(cmd, cwd=src, env=env, check=True)
        out.rename(folder / "coredns")
    return folder


def prometheus_bin() -> Path:
    """Prometheus with Kubernetes service discovery (Debian's has none), built and cached."""
    src = HERE / "prometheus"
    match = re.search(r"prometheus/prometheus (v[\d.]+)", (src / "go.mod").read_text())
    version = match.group(1) if match else "unknown"
    folder = cache_root() / "prometheus" / f"{version}-{_digest(src)}"
    if (folder / "prometheus").exists():
        return folder
    go = _go()
    with _locked("prometheus"), step("go build prometheus (kubernetes_sd only)"):
        folder.mkdir(parents=True, exist_ok=True)
        out = folder / ".prometheus.partial"
        env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=readonly"}
        cmd = [
            "nice", "-n", "15", go, "build", "-trimpath", "-ldflags=-s -w",
            "-tags", "remove_all_sd,enable_kubernetes_sd", "-o", str(out),
            "github.com/prometheus/prometheus/cmd/prometheus",
        ]  # fmt: skip
        subprocess.run(cmd, cwd=src, env=env, check=True)
        out.rename(folder / "prometheus")
    return folder


def helm_bin() -> Path:
    done = subprocess.run([sys.executable, str(CHART_TOOLS)], capture_output=True, text=True)
    match = re.search(r"^helm: (\S+)", done.stdout, re.M)
    if done.returncode != 0 or match is None or not Path(match.group(1)).exists():
        raise MissingPiece(f"helm could not be built (charts/tools.py):\n{done.stdout}")
    return Path(match.group(1))


# --- images ----------------------------------------------------------------------------


def _buildah(*args: str) -> list[str]:
    store = cache_root() / "buildah"
    return [
        "buildah", "--root", str(store / "storage"), "--runroot", str(store / "run"),
        "--storage-driver", "overlay", *args,
    ]  # fmt: skip


def _mirror() -> str:
    """The Debian mirror apt already uses (debootstrap fetches the base from it)."""
    for source in [*sorted(Path("/etc/apt").rglob("*.sources")), Path("/etc/apt/sources.list")]:
        with contextlib.suppress(OSError):
            text = source.read_text()
            match = re.search(r"^URIs:\s*(\S+/debian)\s*$", text, re.M) or re.search(
                r"^deb\s+(?:\[[^]]*\]\s+)?(\S+/debian)\s+bookworm", text, re.M
            )
            if match:
                return match.group(1)
    return "http://deb.debian.org/debian"


def pause_archive() -> Path:
    """Kubernetes' pause.c compiled statically, as an image archive (the sandbox image)."""
    version = kubernetes_version()
    source = Path(
        sh(["go", "env", "GOMODCACHE"]).stdout.strip(),
        f"k8s.io/kubernetes@{version}/build/pause/linux/pause.c",
    )
    if not source.exists():
        sh(["go", "mod", "download", f"k8s.io/kubernetes@{version}"], cwd=HERE / "kube")
    archive = cache_root() / "images" / f"pause-{_digest(source)}.tar"
    if archive.exists():
        return archive
    if shutil.which("gcc") is None:
        raise MissingPiece("gcc is needed to compile the pause container (pause.c)")
    with _locked("images"), step("pause image (gcc -static pause.c)"):
        work = cache_root() / "images" / "pause-build"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        sh(
            [
                "gcc",
                "-Os",
                "-static",
                "-DVERSION=cryptopipeline",
                "-o",
                str(work / "pause"),
                str(source),
            ]
        )
        ctr = sh(_buildah("from", "scratch")).stdout.strip()
        try:
            sh(_buildah("copy", ctr, str(work / "pause"), "/pause"))
            sh(_buildah("config", "--entrypoint", '["/pause"]', "--user", "65535:65535", ctr))
            sh(_buildah("commit", "--rm", ctr, PAUSE_IMAGE))
        except BaseException:
            subprocess.run(_buildah("rm", ctr), capture_output=True)
            raise
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        sh(_buildah("push", PAUSE_IMAGE, f"docker-archive:{partial}:{PAUSE_IMAGE}"))
        partial.rename(archive)
        shutil.rmtree(work, ignore_errors=True)
    return archive


def base_image() -> str:
    """A Python 3.11 base (Debian bookworm minbase) in buildah's store, made once."""
    packages = "python3,python3-venv,python-is-python3,ca-certificates"
    marker = cache_root() / "images" / f"base-{_digest(extra=packages + BASE_IMAGE)}.done"
    if marker.exists():
        return BASE_IMAGE
    with _locked("images"), step("python base image (debootstrap bookworm minbase)"):
        rootfs = cache_root() / "images" / "base-rootfs"
        shutil.rmtree(rootfs, ignore_errors=True)
        sh(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={packages}",
                "bookworm",
                str(rootfs),
                _mirror(),
            ]
        )
        shutil.rmtree(rootfs / "var" / "cache" / "apt" / "archives", ignore_errors=True)
        (rootfs / "var" / "cache" / "apt" / "archives" / "partial").mkdir(parents=True)
        ctr = sh(_buildah("from", "scratch")).stdout.strip()
        try:
            sh(_buildah("add", ctr, str(rootfs), "/"))
            sh(_buildah("config", "--cmd", '["python3"]', "--env", "LANG=C.UTF-8", ctr))
            sh(_buildah("commit", "--rm", ctr, BASE_IMAGE))
        except BaseException:
            subprocess.run(_buildah("rm", ctr), capture_output=True)
            raise
        shutil.rmtree(rootfs, ignore_errors=True)
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
    return BASE_IMAGE


def project_version() -> str:
    match = re.search(r'^version\s*=\s*"([^"]+)"', (REPO / "pyproject.toml").read_text(), re.M)
    return match.group(1) if match else "0.0.0"


def project_archive() -> tuple[Path, str]:
    """The project's own Dockerfile (target runtime) built by buildah, as an archive."""
    tag = f"{PROJECT_IMAGE}:{project_version()}"
    key = _digest(*(REPO / name for name in IMAGE_INPUTS), extra=BASE_IMAGE)
    archive = cache_root() / "images" / f"cryptopipeline-{key}.tar"
    if archive.exists():
        return archive, tag
    base = base_image()
    with _locked("images"), step(f"image {tag} from the Dockerfile (buildah bud; cold ~6 min)"):
        mounts: list[str] = []
        # pip inside the build uses the host's CA bundle and pip configuration, read-only
        for path in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pip.conf"):
            if Path(path).exists():
                mounts += ["-v", f"{path}:{path}:ro"]
        env_args: list[str] = []
        for name in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT", "PIP_DEFAULT_TIMEOUT"):
            if os.environ.get(name):
                env_args += ["--build-arg", f"{name}={os.environ[name]}"]
        cmd = _buildah(
            "bud", "--pull=never", "--isolation=chroot", "--network=host", "--layers",
            "--target", "runtime", "--build-arg", f"PYTHON={base}", *mounts, *env_args,
            "-t", tag, "-f", str(REPO / "Dockerfile"), str(REPO),
        )  # fmt: skip
        log = cache_root() / "images" / "build.log"
        with log.open("w") as out:
            done = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
        if done.returncode != 0:
            tail = "\n".join(log.read_text().splitlines()[-25:])
            raise MissingPiece(f"the image build failed (full log {log}):\n{tail}")
        partial = archive.with_suffix(".partial")
        partial.unlink(missing_ok=True)
        sh(_buildah("push", tag, f"docker-archive:{partial}:{tag}"))
        partial.rename(archive)
        for old in archive.parent.glob("cryptopipeline-*.tar"):
            if old != archive:
                old.unlink()
    return archive, tag


def build() -> dict[str, str]:
    """Everything the cluster needs, from the cache when it is there."""
    ensure_packages()
    with step("kube-apiserver + etcd (k8s/testenv/build.py)"):
        cp = control_plane_bin()
    with step("kubelet, kube-controller-manager, kube-scheduler, kube-proxy, kubectl"):
        kb = kube_bin()
    with step("coredns"):
        dns = coredns_bin()
    with step("helm (charts/tools.py)"):
        helm = helm_bin()
    with step("prometheus"):
        prometheus = prometheus_bin()
    with step("pause image"):
        pause = pause_archive()
    with step("project image"):
        image, tag = project_archive()
    return {
        "control_plane": str(cp), "kube": str(kb), "coredns": str(dns), "helm": str(helm),
        "pause": str(pause), "image": str(image), "image_tag": tag,
        "prometheus": str(prometheus / "prometheus"),
    }  # fmt: skip


# --- the network namespace -------------------------------------------------------------

NETNS_PATH = Path("/run/netns") / NETNS
# Kernel settings the kubelet writes machine-wide; recorded at `up`, restored at `down`.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
)  # fmt: skip


def in_netns(cmd: list[str]) -> list[str]:
    """`cmd` in the cluster's network namespace only (same mounts, same /sys)."""
    return ["nsenter", f"--net={NETNS_PATH}", "--", *cmd]


def _ip(*args: str) -> None:
    sh(["ip", "netns", "exec", NETNS, *args])


def create_netns() -> None:
    if NETNS_PATH.exists():
        raise MissingPiece(
            f"network namespace {NETNS} exists: a cluster is up or was left over;"
            " run `python3 k8s/cluster/cluster.py down` first"
        )
    sh(["ip", "netns", "add", NETNS])
    _ip("ip", "link", "set", "lo", "up")
    # the node address lives on a bridge with no ports (the kernel has no dummy links here)
    _ip("ip", "link", "add", NODE_BRIDGE, "type", "bridge")
    _ip("ip", "addr", "add", NODE_CIDR, "dev", NODE_BRIDGE)
    _ip("ip", "link", "set", NODE_BRIDGE, "up")
    # ClusterIPs are DNATed by kube-proxy; the namespace's own processes need a route to
    # the Service range for that to happen (a local route, not a default one)
    _ip("ip", "route", "add", SERVICE_CIDR, "dev", NODE_BRIDGE)
    _ip("sysctl", "-qw", "net.ipv4.ip_forward=1")
    with contextlib.suppress(RuntimeError):  # present when br_netfilter is loaded
        _ip("sysctl", "-qw", "net.bridge.bridge-nf-call-iptables=1")
    assert_no_route_out()


def assert_no_route_out() -> None:
    """The namespace has no default route and no route to any address outside it."""
    routes = sh(["ip", "netns", "exec", NETNS, "ip", "-4", "route", "show", "table", "all"]).stdout
    routes6 = sh(["ip", "netns", "exec", NETNS, "ip", "-6", "route", "show", "table", "all"]).stdout
    if any(line.startswith("default") for line in (routes + routes6).splitlines()):
        raise RuntimeError(f"namespace {NETNS} has a default route:\n{routes}{routes6}")
    for probe in ("1.1.1.1", "192.168.1.1", "172.16.0.1"):
        done = subprocess.run(
            ["ip", "netns", "exec", NETNS, "ip", "-4", "route", "get", probe],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode == 0:
            raise RuntimeError(f"namespace {NETNS} routes {probe}: {done.stdout.strip()}")


# --- configuration files ----------------------------------------------------------------


def _kubeconfig(path: Path, token: str, certs: Path) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: e2e\n  cluster:\n    server: https://{NODE_IP}:{API_PORT}\n"
        f"    certificate-authority: {certs / 'apiserver.crt'}\n"
        f"users:\n- name: u\n  user:\n    token: {token}\n"
        "contexts:\n- name: e2e\n  context: {cluster: e2e, user: u, namespace: default}\n"
        "current-context: e2e\n"
    )
    path.chmod(0o600)
    return path


IDENTITIES = {
    # kubeconfig name: (user, groups)
    "admin": ("e2e-admin", "system:masters"),
    "kubelet": (f"system:node:{NODE_NAME}", "system:nodes"),
    "controller-manager": ("system:kube-controller-manager", ""),
    "scheduler": ("system:kube-scheduler", ""),
    "kube-proxy": ("system:kube-proxy", ""),
}


def write_config(home: Path) -> None:
    for sub in ("logs", "certs", "cni", "ipam", "containerd", "kubelet/root", "logs/pods"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    tokens = {name: os.urandom(16).hex() for name in IDENTITIES}
    lines = [f'{tokens[n]},{u},{u},"{g}"' for n, (u, g) in IDENTITIES.items()]
    (home / "tokens.csv").write_text("\n".join(lines) + "\n")
    (home / "tokens.csv").chmod(0o600)
    for name in IDENTITIES:
        _kubeconfig(home / f"kubeconfig-{name}", tokens[name], home / "certs")
    shutil.copy(home / "kubeconfig-admin", home / "kubeconfig")
    sh(["openssl", "genrsa", "-out", str(home / "sa.key"), "2048"])
    c = home / "containerd"
    (c / "config.toml").write_text(
        f"""version = 2
root = "{c / "root"}"
state = "{c / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "{c / "sock"}"
[ttrpc]
  address = "{c / "sock.ttrpc"}"
[plugins."io.containerd.internal.v1.opt"]
  path = "{c / "opt"}"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{home / "cni"}"
"""
    )
    (home / "cni" / "10-e2e.conflist").write_text(
        json.dumps(
            {
                "cniVersion": "1.0.0",
                "name": NETNS,
                "plugins": [
                    {
                        "type": "bridge",
                        "bridge": "cni0",
                        "isGateway": True,
                        "ipMasq": False,
                        "hairpinMode": True,
                        "ipam": {
                            "type": "host-local",
                            "dataDir": str(home / "ipam"),
                            "ranges": [[{"subnet": POD_CIDR}]],
                            "routes": [{"dst": "0.0.0.0/0"}],
                        },
                    },
                    {"type": "portmap", "capabilities": {"portMappings": True}},
                ],
            },
            indent=2,
        )
    )
    (home / "resolv.conf").write_text(f"nameserver {NODE_IP}\n")
    (home / "kubelet" / "config.yaml").write_text(
        f"""apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: {NODE_IP}
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
cgroupDriver: cgroupfs
cgroupRoot: {CGROUP_ROOT}
failSwapOn: false
failCgroupV1: false
containerRuntimeEndpoint: unix://{c / "sock"}
podLogsDir: {home / "logs" / "pods"}
resolvConf: {home / "resolv.conf"}
clusterDNS: [{NODE_IP}]
clusterDomain: cluster.local
authentication:
  anonymous: {{enabled: true}}
  webhook: {{enabled: false}}
authorization: {{mode: AlwaysAllow}}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  {{memory.available: 50Mi, nodefs.available: 1%, imagefs.available: 1%, nodefs.inodesFree: 1%}}
serializeImagePulls: false
protectKernelDefaults: false
"""
    )
    (home / "kube-proxy.yaml").write_text(
        f"""apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {{kubeconfig: {home / "kubeconfig-kube-proxy"}}}
mode: iptables
hostnameOverride: {NODE_NAME}
bindAddress: {NODE_IP}
clusterCIDR: {POD_CIDR}
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: [{NODE_IP}/32]
iptables: {{masqueradeAll: true}}
conntrack: {{maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}}
"""
    )
    (home / "Corefile").write_text(
        f""".:53 {{
    bind {NODE_IP}
    ready 127.0.0.1:8181
    health 127.0.0.1:8080
    errors
    cache 30
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {home / "kubeconfig-admin"} e2e
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
}}
"""
    )


# --- processes ------------------------------------------------------------------------


def _start_time(pid: int) -> str | None:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    return None


class Cluster:
    """The processes of one running cluster, recorded in `home`/state.json by PID."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.state_file = home / "state.json"
        self.state: dict[str, object] = {"procs": []}
        if self.state_file.exists():
            self.state = json.loads(self.state_file.read_text())

    def save(self) -> None:
        self.state_file.write_text(json.dumps(self.state, indent=1))

    @property
    def procs(self) -> list[dict[str, object]]:
        return self.state["procs"]  # type: ignore[return-value]

    def spawn(self, name: str, cmd: list[str], *, netns: bool = True) -> int:
        log = (self.home / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(
            in_netns(cmd) if netns else cmd, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.home,
        )  # fmt: skip
        log.close()
        self.procs.append({"name": name, "pid": proc.pid, "start": _start_time(proc.pid)})
        self.save()
        return proc.pid

    def alive(self, entry: dict[str, object]) -> bool:
        pid = int(entry["pid"])  # type: ignore[call-overload]
        return _start_time(pid) == entry["start"] and not _zombie(pid)

    def check_alive(self) -> None:
        for entry in self.procs:
            if not self.alive(entry):
                name = str(entry["name"])
                raise RuntimeError(f"{name} exited; last lines of its log:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            text = (self.home / "logs" / f"{name}.log").read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return "(no log)"

    def stop(self, name: str, timeout: float = 20.0) -> None:
        for entry in self.procs:
            if entry["name"] != name or not self.alive(entry):
                continue
            pid = int(entry["pid"])  # type: ignore[call-overload]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + timeout
            while self.alive(entry) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.1)
            if self.alive(entry):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                time.sleep(0.2)
            _reap(pid)

    def rss_mb(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for entry in self.procs:
            with contextlib.suppress(OSError, ValueError, IndexError):
                status = Path(f"/proc/{entry['pid']}/status").read_text()
                kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
                out[str(entry["name"])] = kb / 1024
        return out


def _zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def kubectl(
    env: dict[str, str], *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    cmd = in_netns([env["kubectl"], f"--kubeconfig={env['kubeconfig']}", *args])
    done = subprocess.run(cmd, capture_output=True, text=True)
    if check and done.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)}: {done.stderr.strip()}")
    return done


def wait_for(what: str, probe: object, cluster: Cluster, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        cluster.check_alive()
        if probe():  # type: ignore[operator]
            return
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not happen within {within:.0f}s")


def _cgroup_dirs() -> list[Path]:
    base = Path("/sys/fs/cgroup")
    if (base / "cgroup.controllers").exists():  # cgroup v2: one hierarchy
        return [base / CGROUP_ROOT.strip("/")]
    return [d / CGROUP_ROOT.strip("/") for d in base.iterdir() if d.is_dir() and not d.is_symlink()]


def up(built: dict[str, str]) -> dict[str, str]:
    """Start the cluster (netns, containerd, control plane, node); return its environment."""
    home = run_dir()
    if (home / "state.json").exists() or NETNS_PATH.exists():
        raise MissingPiece(f"a cluster is up or left over in {home}; run `cluster.py down` first")
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    cluster = Cluster(home)
    cluster.state["sysctls"] = {
        k: Path("/proc/sys", k).read_text().strip()
        for k in KUBELET_SYSCTLS
        if Path("/proc/sys", k).exists()
    }
    cluster.state["cni_netns_before"] = sorted(p.name for p in Path("/run/netns").glob("cni-*"))
    cluster.save()
    cp, kb = Path(built["control_plane"]), Path(built["kube"])
    env = {
        "home": str(home), "kubeconfig": str(home / "kubeconfig"), "kubectl": str(kb / "kubectl"),
        "helm": built["helm"], "image": built["image_tag"], "node_ip": NODE_IP,
        "netns": str(NETNS_PATH), "bin": f"{kb}:{cp}", "prometheus": built["prometheus"],
    }  # fmt: skip
    cluster.state["env"] = env
    cluster.save()
    with step(f"network namespace {NETNS} (node {NODE_IP}, no default route)"):
        create_netns()
        write_config(home)
        for d in _cgroup_dirs():
            d.mkdir(exist_ok=True)
    sock = home / "containerd" / "sock"
    ctr = ["ctr", "--address", str(sock), "--namespace", "k8s.io"]
    with step("containerd"):
        cluster.spawn(
            "containerd", ["containerd", "--config", str(home / "containerd" / "config.toml")]
        )
        wait_for("containerd's socket", lambda: subprocess.run(
            [*ctr, "version"], capture_output=True).returncode == 0, cluster, 60)  # fmt: skip
    with step("import the pause and project images into containerd (k8s.io)"):
        for archive in (built["pause"], built["image"]):
            sh([*ctr, "images", "import", "--snapshotter", "overlayfs", archive])
    with step("etcd + kube-apiserver"):
        cluster.spawn("etcd", [
            str(cp / "etcd"), "--name=e2e", f"--data-dir={home / 'etcd'}",
            "--listen-client-urls=http://127.0.0.1:2379", "--advertise-client-urls=http://127.0.0.1:2379",
            "--listen-peer-urls=http://127.0.0.1:2380", "--initial-advertise-peer-urls=http://127.0.0.1:2380",
            "--initial-cluster=e2e=http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level=warn",
        ])  # fmt: skip
        key = home / "sa.key"
        cluster.spawn("kube-apiserver", [
            str(cp / "kube-apiserver"), "--etcd-servers=http://127.0.0.1:2379",
            "--bind-address=0.0.0.0", f"--advertise-address={NODE_IP}", f"--secure-port={API_PORT}",
            f"--cert-dir={home / 'certs'}", f"--token-auth-file={home / 'tokens.csv'}",
            "--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
            f"--service-account-key-file={key}", f"--service-account-signing-key-file={key}",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-cluster-ip-range={SERVICE_CIDR}", "--allow-privileged=true",
            "--kubelet-preferred-address-types=InternalIP", "--v=1",
        ])  # fmt: skip
        wait_for("kube-apiserver /readyz", lambda: kubectl(
            env, "get", "--raw", "/readyz", check=False).returncode == 0, cluster, 180)  # fmt: skip
    with step("kube-controller-manager, kube-scheduler, kubelet, kube-proxy, coredns"):
        cluster.spawn("kube-controller-manager", [
            str(kb / "kube-controller-manager"),
            f"--kubeconfig={home / 'kubeconfig-controller-manager'}",
            "--use-service-account-credentials=true", f"--service-account-private-key-file={key}",
            f"--root-ca-file={home / 'certs' / 'apiserver.crt'}", "--leader-elect=false",
            "--bind-address=127.0.0.1", f"--cluster-cidr={POD_CIDR}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--v=1",
        ])  # fmt: skip
        cluster.spawn("kube-scheduler", [
            str(kb / "kube-scheduler"), f"--kubeconfig={home / 'kubeconfig-scheduler'}",
            "--leader-elect=false", "--bind-address=127.0.0.1", "--v=1",
        ])  # fmt: skip
        cluster.spawn("kubelet", [
            str(kb / "kubelet"), f"--config={home / 'kubelet' / 'config.yaml'}",
            f"--kubeconfig={home / 'kubeconfig-kubelet'}",
            f"--root-dir={home / 'kubelet' / 'root'}",
            f"--node-ip={NODE_IP}", f"--hostname-override={NODE_NAME}", "--v=1",
        ])  # fmt: skip
        cluster.spawn(
            "kube-proxy", [str(kb / "kube-proxy"), f"--config={home / 'kube-proxy.yaml'}", "--v=1"]
        )
        cluster.spawn(
            "coredns", [str(Path(built["coredns"]) / "coredns"), "-conf", str(home / "Corefile")]
        )
    with step(f"node {NODE_NAME} Ready"):

        def node_ready() -> bool:
            path = '{.status.conditions[?(@.type=="Ready")].status}'
            done = kubectl(env, "get", "node", NODE_NAME, "-o", f"jsonpath={path}", check=False)
            return done.stdout.strip() == "True"

        wait_for("node Ready", node_ready, cluster, 180)
        wait_for("the default ServiceAccount", lambda: kubectl(
            env, "get", "serviceaccount", "default", check=False
        ).returncode == 0, cluster, 60)  # fmt: skip
    assert_no_route_out()
    rss = cluster.rss_mb()
    say(
        f"cluster up; RSS {sum(rss.values()):.0f} MB ("
        + ", ".join(f"{k} {v:.0f}" for k, v in rss.items())
        + ")"
    )
    (home / "env.json").write_text(json.dumps(env, indent=1))
    return env


def _mounts_under(root: Path) -> list[str]:
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == str(root) or point.startswith(f"{root}/"):
            points.append(point)
    return sorted(points, key=len, reverse=True)


def down() -> None:
    """Stop every process by PID (containerd last), remove containers, mounts, the netns."""
    home = run_dir()
    cluster = Cluster(home)
    names = [str(e["name"]) for e in cluster.procs]
    with step("stop the cluster"):
        if cluster.procs:
            rss = cluster.rss_mb()
            say(f"RSS before stopping: {sum(rss.values()):.0f} MB")
        for name in (
            "coredns",
            "kube-proxy",
            "kube-scheduler",
            "kube-controller-manager",
            "kubelet",
        ):
            if name in names:
                cluster.stop(name)
        sock = home / "containerd" / "sock"
        ctr = ["ctr", "--address", str(sock), "--namespace", "k8s.io"]
        if "containerd" in names and sock.exists():
            tasks = subprocess.run(
                [*ctr, "tasks", "ls", "-q"], capture_output=True, text=True
            ).stdout.split()
            for task in tasks:
                subprocess.run([*ctr, "tasks", "kill", "-s", "SIGKILL", task], capture_output=True)
            for task in tasks:
                subprocess.run([*ctr, "tasks", "delete", "-f", task], capture_output=True)
            for container in subprocess.run(
                [*ctr, "containers", "ls", "-q"], capture_output=True, text=True
            ).stdout.split():
                subprocess.run([*ctr, "containers", "delete", container], capture_output=True)
        for name in ("kube-apiserver", "etcd"):
            if name in names:
                cluster.stop(name)
        # shims of our containerd (found by its socket in their command line), then containerd
        for proc in Path("/proc").glob("[0-9]*"):
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes().split(b"\0")
                if b"containerd-shim" in cmdline[0] and str(sock).encode() in cmdline:
                    os.kill(int(proc.name), signal.SIGKILL)
        if "containerd" in names:
            cluster.stop("containerd")
    stop_namespace_processes()
    with step("remove mounts, pod namespaces, cgroups and the network namespace"):
        before = set(cluster.state.get("cni_netns_before", []))  # type: ignore[call-overload]
        for ns in Path("/run/netns").glob("cni-*"):
            if ns.name not in before:
                subprocess.run(["ip", "netns", "del", ns.name], capture_output=True)
        for point in _mounts_under(home):
            subprocess.run(["umount", "-l", point], capture_output=True)
        for d in _cgroup_dirs():
            if d.exists():
                for sub in sorted(
                    (p for p in d.rglob("*") if p.is_dir()),
                    key=lambda p: len(p.parts),
                    reverse=True,
                ):
                    with contextlib.suppress(OSError):
                        sub.rmdir()
                with contextlib.suppress(OSError):
                    d.rmdir()
        for result in Path("/var/lib/cni/results").glob(f"{NETNS}-*"):
            result.unlink(missing_ok=True)
        if NETNS_PATH.exists():
            sh(["ip", "netns", "del", NETNS])
        for key, value in dict(cluster.state.get("sysctls", {})).items():  # type: ignore[call-overload]
            with contextlib.suppress(OSError):
                Path("/proc/sys", key).write_text(value)
        for part in ("containerd", "kubelet", "etcd", "ipam"):
            shutil.rmtree(home / part, ignore_errors=True)
        cluster.state_file.unlink(missing_ok=True)


def run_inside(cmd: list[str], env: dict[str, str]) -> int:
    """`cmd` in the namespace; on Ctrl-C or SIGTERM it gets SIGINT and time to clean up
    (pytest stops its fixtures, e.g. the Kafka broker) before the cluster goes down."""
    proc = subprocess.Popen(in_netns(cmd), env=exec_env(env))
    try:
        return proc.wait()
    except KeyboardInterrupt:
        say("interrupted: letting the command finish its clean-up")
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise


def stop_namespace_processes(timeout: float = 30.0) -> None:
    """Every process still in the cluster's network namespace (a broker a killed test left,
    say), found by the namespace's inode: SIGTERM, then SIGKILL."""
    try:
        inode = NETNS_PATH.stat().st_ino
    except OSError:
        return
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        with contextlib.suppress(OSError):
            if os.readlink(proc / "ns" / "net") == f"net:[{inode}]":
                pids.append(int(proc.name))
    for pid in pids:
        say(f"stopping pid {pid} left in the namespace: {_cmdline(pid)[:80]}")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(not _zombie(p) for p in pids):
        time.sleep(0.2)
    for pid in pids:
        if not _zombie(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return "?"


def _on_signal(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def exec_env(env: dict[str, str]) -> dict[str, str]:
    kb, cp = env["bin"].split(":")
    return {
        **os.environ,
        "KUBECONFIG": env["kubeconfig"],
        "PATH": f"{kb}:{cp}:{Path(env['helm']).parent}:{os.environ.get('PATH', '')}",
        "CRYPTOPIPELINE_E2E": json.dumps(env),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["build", "up", "down", "exec", "run", "status"])
    parser.add_argument("cmd", nargs=argparse.REMAINDER, help="for exec/run: the command, after --")
    args = parser.parse_args(argv)
    cmd = args.cmd[1:] if args.cmd[:1] == ["--"] else args.cmd
    signal.signal(signal.SIGTERM, _on_signal)
    if os.geteuid() != 0 and args.command != "status":
        raise MissingPiece("must run as root (network namespace, containerd, kubelet)")
    if args.command == "build":
        print(json.dumps(build(), indent=1))
        return 0
    if args.command == "down":
        down()
        return 0
    if args.command == "status":
        state = run_dir() / "state.json"
        if not state.exists():
            print("down")
            return 3
        cluster = Cluster(run_dir())
        for entry in cluster.procs:
            alive = "up" if cluster.alive(entry) else "EXITED"
            print(f"{entry['name']:24} pid {entry['pid']:>7} {alive}")
        return 0
    if args.command == "exec":
        env = json.loads((run_dir() / "env.json").read_text())
        return subprocess.run(in_netns(cmd), env=exec_env(env)).returncode
    built = build()
    if args.command == "up":
        try:
            env = up(built)
        except BaseException:
            say("start failed; tearing down")
            down()
            raise
        say(f"KUBECONFIG={env['kubeconfig']}; use `cluster.py exec -- kubectl get pods -A`")
        return 0
    # run: up, the command inside the namespace, down - whatever happens
    try:
        env = up(built)
        with step(f"run {' '.join(cmd)}"):
            code = run_inside(cmd, env)
        say(f"command exited {code}")
        return code
    finally:
        down()


if __name__ == "__main__":
    sys.exit(main())
