#!/usr/bin/env bash
# Starts what the tests need and a bare machine may lack: PostgreSQL and Debian's Chromium.
set -euo pipefail
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
apt_install() {
  $SUDO apt-get update -qq >/dev/null || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}
if ! command -v chromium >/dev/null 2>&1; then
  echo "installing Debian's chromium for the browser test"
  apt_install chromium
fi
if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    echo "installing PostgreSQL for the store tests"
    apt_install postgresql
  fi
  version=$(ls /etc/postgresql | sort -n | tail -1)
  conf=/etc/postgresql/$version/main
  # Trust auth on loopback, as the tests' URL has no password.
  if ! grep -q "nbsweep-tests" "$conf/pg_hba.conf"; then
    printf '# nbsweep-tests\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\nlocal all all trust\n' \
      | $SUDO tee /tmp/pg_hba.nbsweep >/dev/null
    $SUDO sh -c "cat $conf/pg_hba.conf >> /tmp/pg_hba.nbsweep && cp /tmp/pg_hba.nbsweep $conf/pg_hba.conf"
  fi
  $SUDO pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi
if ! psql -h 127.0.0.1 -U postgres -lqt 2>/dev/null | cut -d'|' -f1 | grep -qw test; then
  psql -h 127.0.0.1 -U postgres -c "CREATE DATABASE test" >/dev/null
fi
echo "services ready: PostgreSQL on 127.0.0.1:5432 (database test), chromium at $(command -v chromium)"
