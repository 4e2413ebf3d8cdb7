#!/usr/bin/env bash
# Installs what the GUI tests need (Xvfb + Mesa software OpenGL, xdotool for real input) when it is missing and we
# may install it.
# Without it the GUI tests are skipped with a reason; everything else still runs.
set -u
command -v Xvfb >/dev/null 2>&1 && command -v xdotool >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "ensure_xvfb: installing xvfb + Mesa (GUI tests)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null 2>&1 || true
  apt-get install -y -qq --no-install-recommends xvfb xauth libegl1 libopengl0 libgl1 libglx-mesa0 libgl1-mesa-dri libosmesa6 xdotool >/dev/null 2>&1 \
    && echo "ensure_xvfb: done" || echo "ensure_xvfb: install failed; GUI tests will be skipped"
else
  echo "ensure_xvfb: Xvfb/xdotool missing and cannot install (need root + apt-get); GUI tests will be skipped"
fi
