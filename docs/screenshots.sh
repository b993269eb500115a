#!/usr/bin/env bash
# Regenerate the screenshots in docs/images/ from the browser tests (headless Chromium), so the
# docs show exactly what the tests saw. Commit the changed PNGs.
set -euo pipefail
cd "$(dirname "$0")/.."
# CJK glyphs: without a CJK font Chromium draws every Chinese character as a box.
fc-list 2>/dev/null | grep -qi cjk || { apt-get update -qq && apt-get install -y -qq fonts-noto-cjk >/dev/null; }
mkdir -p docs/images
PLANLOOP_DOC_IMAGES="$PWD/docs/images" PLANLOOP_TEST_DB=sqlite python -m pytest -q -m browser tests/test_pages_browser.py tests/test_console_browser.py tests/test_console_template_edit_browser.py tests/test_console_data_browser.py tests/test_guide_images.py
ls -l docs/images
