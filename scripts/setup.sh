#!/usr/bin/env bash
# Create .venv (if missing) and install grsnn with a pinned CPU build of torch.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build
.venv/bin/python -m pip install -q "torch==2.13.0" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -m pip install -q -e ".[test]" 2>&1 | grep -v "^WARNING: Location" || true
# headless Chromium and its driver for the browser test of the interactive pages
# (tests/test_explain_html.py skips, saying why, where they cannot be installed)
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium and chromium-driver (apt) for the browser test ..."
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq chromium chromium-driver; } >/dev/null 2>&1 \
      || echo "could not install chromium: the browser test will be skipped"
  fi
fi
.venv/bin/python -c "import torch, torch_geometric, grsnn; print('grsnn', grsnn.__version__, 'torch', torch.__version__, 'pyg', torch_geometric.__version__)"
