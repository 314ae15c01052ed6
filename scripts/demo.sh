#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main demo. Installs what it needs, then runs the control plane end to end and prints the
# negotiated connection.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
./bin/nsm.js sandbox
