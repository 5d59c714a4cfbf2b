#!/bin/sh
# System packages the test suite uses for real: openssl (key interop),
# ssh-keygen from openssh-client (OpenSSH key interop, keys tests),
# gnome-keyring + dbus (a real Secret Service for the keyring backend),
# dash + curl (the keytools/openssl shell scripts run under dash and bash),
# the shellcheck linter for those scripts, and chromium (the browser tests
# drive Debian's /usr/bin/chromium through Playwright; never `playwright install`).
# Installs what is missing when run as root (CI); otherwise lists it.
set -eu
need=""
command -v openssl >/dev/null 2>&1 || need="$need openssl"
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
command -v curl >/dev/null 2>&1 || need="$need curl"
command -v dash >/dev/null 2>&1 || need="$need dash"
command -v shellcheck >/dev/null 2>&1 || need="$need shellcheck"
[ -x /usr/bin/chromium ] || need="$need chromium"
command -v gnome-keyring-daemon >/dev/null 2>&1 || need="$need gnome-keyring libsecret-tools"
command -v dbus-daemon >/dev/null 2>&1 || need="$need dbus dbus-x11"
[ -n "$need" ] || exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$need"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
else
    echo "missing system packages (install them, e.g. sudo apt-get install$need); tests needing them will skip" >&2
fi
