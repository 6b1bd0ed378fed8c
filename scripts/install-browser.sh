#!/usr/bin/env bash
# Installs what the Swagger UI browser test needs: Debian's headless-capable Chromium
# (/usr/bin/chromium) and the npm packages pinned in package-lock.json (playwright-core,
# swagger-ui-dist). Idempotent; safe to run on every CI run.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt_get=(apt-get)
  [ "$(id -u)" = 0 ] || apt_get=(sudo apt-get)
  "${apt_get[@]}" update -qq
  "${apt_get[@]}" install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
if [ ! -d "$here/node_modules/playwright-core" ] || [ ! -d "$here/node_modules/swagger-ui-dist" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts)
fi
/usr/bin/chromium --version
