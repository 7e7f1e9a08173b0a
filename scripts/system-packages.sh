#!/usr/bin/env bash
# Debian packages the tests, the demo and the benchmarks need, installed only when one is missing, so a
# fresh machine needs nothing but `make test` / `make demo`. Usage: scripts/system-packages.sh test|bench
#   test:  chromium (dashboard browser tests), poppler-utils (pdftotext reads the briefing PDF),
#          pango (WeasyPrint renders the PDF), haproxy (replicas behind a load balancer),
#          debootstrap + systemd-container + python3.11-venv + nsenter (the agent's .deb built, then
#          installed and started in a container), fonts for the PDF, npm (the dashboard's assets)
#   bench: the above, and Lynis and OpenSCAP with Debian's SCAP content (the side-by-side benchmark)
set -euo pipefail

profile=${1:-test}
# command-or-file -> package
declare -A wanted=(
  [/usr/bin/chromium]=chromium
  [/usr/bin/pdftotext]=poppler-utils
  [/usr/bin/pdftoppm]=poppler-utils
  [/usr/lib/x86_64-linux-gnu/libpango-1.0.so.0]=libpango-1.0-0
  [/usr/lib/x86_64-linux-gnu/libpangoft2-1.0.so.0]=libpangoft2-1.0-0
  [/usr/sbin/haproxy]=haproxy
  [/usr/sbin/debootstrap]=debootstrap
  [/usr/bin/systemd-nspawn]=systemd-container
  [/usr/lib/python3.11/ensurepip]=python3.11-venv
  [/usr/bin/nsenter]=util-linux
  [/usr/bin/dpkg-deb]=dpkg-dev
  [/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf]=fonts-dejavu-core
  [/usr/share/fonts/truetype/liberation]=fonts-liberation
  [/usr/bin/npm]=npm
)
if [ "$profile" = bench ]; then
  wanted[/usr/sbin/lynis]=lynis
  wanted[/usr/bin/oscap]=openscap-scanner
  wanted[/usr/share/xml/scap/ssg/content]=ssg-debian
fi

missing=()
for path in "${!wanted[@]}"; do
  # Another architecture's library directory counts too.
  if [ ! -e "$path" ] && ! compgen -G "${path/x86_64-linux-gnu/*-linux-gnu}" >/dev/null; then
    missing+=("${wanted[$path]}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "system-packages: missing ${missing[*]} and no apt-get here: install them by hand" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-packages: installing ${missing[*]}"
$sudo apt-get update -q >/dev/null
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
