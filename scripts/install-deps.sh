#!/usr/bin/env bash
# Installs what `make run` and `make test` need and is missing: PostgreSQL, Redis and HAProxy
# from the distribution's packages, cargo-deny from crates.io, and the S3 server the attachment
# tests use (moto, from PyPI). Idempotent; prints what it does.
set -euo pipefail

# cargo-deny for `make deny` (part of `make test`), built from crates.io once.
if ! command -v cargo-deny >/dev/null 2>&1; then
  echo "install-deps: installing cargo-deny (cargo install, a few minutes)"
  cargo install cargo-deny --locked --quiet
fi

missing=()
have_pg() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}
have_pg || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v haproxy >/dev/null 2>&1 || missing+=(haproxy)

# --- Browser test (cluster/tests/browser.rs): Debian's chromium with an emoji font, and
# playwright-core pinned in clients/js/test-browser/package-lock.json (`npm ci`, needs npm).
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
dpkg-query -W -f='${Status}' fonts-noto-color-emoji 2>/dev/null | grep -q 'ok installed' \
  || missing+=(fonts-noto-color-emoji)
browser_test="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/clients/js/test-browser"
if [ ! -d "$browser_test/node_modules/playwright-core" ]; then
  if command -v npm >/dev/null 2>&1; then
    echo "install-deps: npm ci in clients/js/test-browser (playwright-core)"
    (cd "$browser_test" && npm ci --no-audit --no-fund --loglevel=error)
  else
    echo "install-deps: npm is missing: the browser test will fail (install Node 18+ and npm)" >&2
  fi
fi
# --- end of the browser test block

# --- S3 tests (api-server/tests/api/attachments.rs, testkit/src/s3.rs): moto's S3 server, from
# PyPI into a virtualenv of its own when no `moto_server` is on the PATH.
moto_venv="$HOME/.cache/chat-testdeps/moto"
need_moto=0
if ! command -v moto_server >/dev/null 2>&1 && [ ! -x "$moto_venv/bin/moto_server" ]; then
  need_moto=1
  python3 -c 'import ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)
fi
install_moto() {
  [ "$need_moto" -eq 1 ] || return 0
  echo "install-deps: pip install moto[server] into $moto_venv"
  python3 -m venv "$moto_venv"
  "$moto_venv/bin/pip" install --quiet --disable-pip-version-check "moto[server]==5.2.1"
}
# --- end of the S3 block

if [ ${#missing[@]} -eq 0 ]; then
  install_moto
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packages start system services where an init system runs; ours start their own.
for svc in redis-server haproxy postgresql; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    $sudo systemctl stop "$svc" || true
  fi
done
install_moto
echo "install-deps: done"
