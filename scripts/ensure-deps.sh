#!/usr/bin/env bash
# Makes a fresh machine ready for `npm run demo` / `npm test`: Debian packages (when root) and npm packages.
# Cheap when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-system-deps.sh
# Browsers come from Debian; no package may download its own.
export PUPPETEER_SKIP_DOWNLOAD=1 PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
