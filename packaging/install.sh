#!/usr/bin/env bash
# Install edge-extract from this offline bundle (Linux x86-64). Uses no network at all.
#
#   ./install.sh                 # for this user: ~/.local/share/edge-extract, ~/.local/bin/edge-extract
#   sudo ./install.sh --prefix /opt/edge-extract --bin-dir /usr/local/bin \
#        --desktop-dir /usr/share/applications          # for every user of the laptop
#
# Options: --prefix DIR, --bin-dir DIR, --desktop-dir DIR, --python PYTHON (default python3),
#          --portable (never pick the CPU-tuned llama.cpp build), --check (check the bundle and
#          this computer, say which build would be used, change nothing), -h/--help.
#
# Steps: check the bundle's checksums and that this computer fits it (Python, glibc, CPU), create
# an isolated Python environment, install from the bundle's wheels only, extract a synthetic
# report as a self-test, then put `edge-extract` and the drag-and-drop launcher in place.
# Any failed step stops here and leaves an earlier installation working as it was.
set -euo pipefail

BUNDLE=$(cd "$(dirname "$0")" && pwd)
DATA_HOME=${XDG_DATA_HOME:-$HOME/.local/share}
PREFIX=$DATA_HOME/edge-extract
BIN_DIR=$HOME/.local/bin
DESKTOP_DIR=$DATA_HOME/applications
PYTHON=python3
FLAVOUR=auto
CHECK_ONLY=

say() { echo "install.sh: $*" >&2; }
die() { echo "install.sh: error: $*" >&2; exit 1; }

while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a folder}; shift 2 ;;
    --bin-dir) BIN_DIR=${2:?--bin-dir needs a folder}; shift 2 ;;
    --desktop-dir) DESKTOP_DIR=${2:?--desktop-dir needs a folder}; shift 2 ;;
    --python) PYTHON=${2:?--python needs a program}; shift 2 ;;
    --portable) FLAVOUR=portable; shift ;;
    --check) CHECK_ONLY=1; shift ;;
    -h | --help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option $1 (see --help)" ;;
  esac
done
absolute() { case "$1" in /*) echo "$1" ;; *) echo "$PWD/$1" ;; esac; }
PREFIX=$(absolute "$PREFIX") BIN_DIR=$(absolute "$BIN_DIR") DESKTOP_DIR=$(absolute "$DESKTOP_DIR")
cd "$BUNDLE"

# pip must see the bundle and nothing else: no config files, no PIP_* settings, no index.
while IFS='=' read -r name _; do unset "$name"; done < <(env | grep '^PIP_' || true)
export PIP_CONFIG_FILE=/dev/null PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 HF_HUB_OFFLINE=1

# 1. The bundle arrived whole.
[ -f SHA256SUMS ] || die "SHA256SUMS is missing: this is not a complete edge-extract bundle"
if ! bad=$(sha256sum --quiet -c SHA256SUMS 2>&1); then
  die "the bundle is damaged or incomplete; copy it again. sha256sum says:
$bad"
fi
say "checksums ok"

# 2. This computer fits the bundle.
command -v "$PYTHON" >/dev/null || die "$PYTHON not found: install Python 3 from the operating system's media"
info() { "$PYTHON" -c 'import json, sys
value = json.load(open("bundle.json"))
for key in sys.argv[1:]:
    value = value.get(key) if isinstance(value, dict) else None
print(" ".join(value) if isinstance(value, list) else value or "")' "$@"; }
PLATFORM=$(info platform)
[ "$PLATFORM" = linux-x86_64 ] || die "this bundle is for $PLATFORM; build one on a machine like this laptop"
[ "$(uname -s)-$(uname -m)" = Linux-x86_64 ] || die "this bundle is for Linux x86-64, not $(uname -s) $(uname -m)"
PY_VERSION=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
case " $(info python_versions) " in
  *" $PY_VERSION "*) ;;
  *) die "$PYTHON is Python $PY_VERSION; this bundle has packages for Python $(info python_versions) only.
Pick one of those with --python, or build a bundle for $PY_VERSION (build-bundle --python-version; 3.10 or newer)" ;;
esac
GLIBC_NEEDED=$(info glibc)
GLIBC_HERE=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
if [ -n "$GLIBC_NEEDED" ] && [ -n "$GLIBC_HERE" ] &&
  [ "$(printf '%s\n%s\n' "$GLIBC_NEEDED" "$GLIBC_HERE" | sort -V | head -n1)" != "$GLIBC_NEEDED" ]; then
  die "this system has glibc $GLIBC_HERE; the bundle's llama.cpp needs $GLIBC_NEEDED or newer (e.g. Ubuntu 22.04, Debian 12)"
fi
CPU_FLAGS=" $(grep -m1 '^flags' /proc/cpuinfo | cut -d: -f2) "
lacking() { for flag in "$@"; do case "$CPU_FLAGS" in *" $flag "*) ;; *) printf '%s ' "$flag" ;; esac; done; }
read -ra PORTABLE_FLAGS <<<"$(info llama portable cpu_flags)"
missing=$(lacking "${PORTABLE_FLAGS[@]}")
[ -z "$missing" ] || die "this CPU lacks ${missing% }: edge-extract's llama.cpp build needs AVX2 (x86-64 CPUs from about 2015 on)"
WHEEL_DIR=llama/portable
read -ra NATIVE_FLAGS <<<"$(info llama native cpu_flags)"
if [ "$FLAVOUR" = auto ] && [ ${#NATIVE_FLAGS[@]} -gt 0 ]; then
  missing=$(lacking "${NATIVE_FLAGS[@]}")
  if [ -z "$missing" ]; then WHEEL_DIR=llama/native; else say "using the portable build: this CPU lacks ${missing% }"; fi
fi
say "Python $PY_VERSION, glibc ${GLIBC_HERE:-?}, llama.cpp build: ${WHEEL_DIR#llama/}"
[ -z "$CHECK_ONLY" ] || { say "this computer can run the bundle (--check: nothing installed)"; exit 0; }

# 3. An isolated environment in a fresh slot; `current` moves to it only after the self-test.
START=$SECONDS
mkdir -p "$PREFIX"
OLD=$(readlink "$PREFIX/current" 2>/dev/null || true)
SLOT=env-a
[ "$OLD" = env-a ] && SLOT=env-b
ENV=$PREFIX/$SLOT
rm -rf "$ENV"
# --without-pip: Debian and Ubuntu ship venv without ensurepip unless python3-venv is installed;
# pip comes from the bundle instead.
"$PYTHON" -m venv --without-pip "$ENV" || die "$PYTHON cannot create a virtual environment"
PIP_WHEELS=(wheels/pip-*.whl)
[ -f "${PIP_WHEELS[0]}" ] || die "the bundle has no pip wheel in wheels/"
VERSION=$(info edge_extract)
say "installing edge-extract $VERSION into $ENV"
"$ENV/bin/python" "${PIP_WHEELS[0]}/pip" install --quiet --no-index --only-binary :all: --no-cache-dir \
  --find-links wheels --find-links "$WHEEL_DIR" pip "edge-extract[$(info extras)]==$VERSION" ||
  die "pip could not install from the bundle (see above)"

# 4. Self-test: a synthetic report through the real model; the record must validate.
LOG=$PREFIX/selftest.log
say "self-test: extracting selftest-report.txt (first run unpacks the model, about 250 MB)"
if ! "$ENV/bin/edge-extract" extract selftest-report.txt --json >"$PREFIX/selftest.json" 2>"$LOG"; then
  die "self-test failed: $(tail -n 3 "$LOG")"
fi
"$ENV/bin/python" selftest_check.py "$PREFIX/selftest.json" || die "self-test failed: the record did not validate"
say "self-test ok ($(wc -c <"$PREFIX/selftest.json") bytes of valid record)"
for model in $(info models); do
  say "installing the optional model $model from the bundle"
  "$ENV/bin/edge-extract" models install "$model" --find-links models || die "could not install $model (see above)"
done

# 5. Switch over, then link the command and the launcher.
ln -sfn "$SLOT" "$PREFIX/current.new"
mv -T "$PREFIX/current.new" "$PREFIX/current"
[ -n "$OLD" ] && [ "$OLD" != "$SLOT" ] && rm -rf "${PREFIX:?}/$OLD"
mkdir -p "$BIN_DIR"
ln -sfn "$PREFIX/current/bin/edge-extract" "$BIN_DIR/edge-extract"
for launcher in launchers/*.desktop; do
  [ -f "$launcher" ] || continue
  mkdir -p "$DESKTOP_DIR"
  # Desktop sessions often lack ~/.local/bin on PATH: point Exec at the command itself.
  sed "s|^Exec=edge-extract |Exec=$BIN_DIR/edge-extract |" "$launcher" >"$DESKTOP_DIR/$(basename "$launcher")"
  if command -v update-desktop-database >/dev/null; then update-desktop-database "$DESKTOP_DIR" 2>/dev/null || true; fi
  say "launcher: $DESKTOP_DIR/$(basename "$launcher")"
done
say "installed edge-extract $VERSION in $((SECONDS - START)) s: $BIN_DIR/edge-extract"
case ":$PATH:" in *":$BIN_DIR:"*) ;; *) say "note: $BIN_DIR is not on PATH; add it, or run $BIN_DIR/edge-extract" ;; esac
"$BIN_DIR/edge-extract" doctor --out "$HOME" || say "doctor found problems (above); the install itself succeeded"
