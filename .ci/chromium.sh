#!/usr/bin/env bash
# Debian packages the ops tests and benchmarks use: headless Chromium (the HTML report's
# screenshot test), restic and borg (the backup benchmarks' peers). Sourced by .ci/run (root).
if ! command -v chromium >/dev/null || ! command -v restic >/dev/null || ! command -v borg >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium restic borgbackup zstd >/dev/null
fi
