#!/bin/sh
# Installs the Debian 12 packages that building and testing steppy need.
# Run as root (or through sudo). Installs only what is missing, so a second
# run on a prepared machine takes a second and touches nothing.
#
#   scripts/install-deps.sh          build + test packages
#   scripts/install-deps.sh --check  exit 1 if anything is missing, install nothing
set -eu

# Build: compiler, pkg-config and the -dev packages the Makefile asks pkg-config for.
BUILD_PKGS="make gcc pkg-config libjansson-dev libyaml-dev libsqlite3-dev libuv1-dev libcurl4-openssl-dev libssl-dev libxml2-dev libmicrohttpd-dev libcjose-dev libsystemd-dev libpq-dev"
# Installing and packaging: pandoc makes the man pages from docs/ (make
# install), debhelper, lintian and fakeroot build and check the Debian
# package (dpkg-buildpackage, docs/operations.md).
BUILD_PKGS="$BUILD_PKGS pandoc debhelper lintian fakeroot dpkg-dev"
# Tests: unit test framework, second compiler with libFuzzer and sanitizer
# runtimes, leak checker, formatter, the browser for the dashboard's test
# (tests/web, driven by playwright-core on node), and the fake OpenID Connect
# provider's crypto (tests/oidc).
# postgresql-15: the throwaway server the PostgreSQL store's tests start
# (tests/lib/pg.sh; no system service is used).
TEST_PKGS="postgresql-15 man-db libcmocka-dev clang libclang-rt-14-dev valgrind clang-format python3 python3-yaml sqlite3 procps iproute2 python3-botocore awscli curl openssl chromium python3-cryptography python3-jwt"
# node and npm: Debian's nodejs and npm unless a node is already on PATH
# (a machine image may carry another build of Node.js, with its own npm).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    TEST_PKGS="$TEST_PKGS nodejs npm"
fi

missing=""
for p in $BUILD_PKGS $TEST_PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
        missing="$missing $p"
    fi
done

if [ -z "$missing" ]; then
    exit 0
fi
if [ "${1:-}" = "--check" ]; then
    echo "missing Debian packages:$missing" >&2
    exit 1
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "installing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# The tests start PostgreSQL themselves: on a machine without it yet, the
# package is told not to make and start its default cluster (a system
# service on port 5432 nobody asked for). An existing set-up is left alone.
case " $missing " in
*" postgresql-15 "*)
    if ! dpkg-query -W -f='${Status}' postgresql-common 2>/dev/null | grep -q "ok installed"; then
        $SUDO mkdir -p /etc/postgresql-common/createcluster.d
        echo "create_main_cluster = false" |
            $SUDO tee /etc/postgresql-common/createcluster.d/steppy-no-main-cluster.conf >/dev/null
    fi
    ;;
esac
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
