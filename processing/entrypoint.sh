#!/bin/sh
# SageMaker mounts /opt/ml/processing/* at run time, owned by root: hand the output directories to the
# unprivileged user, then run the pipeline as that user. Nothing else runs as root.
set -eu
if [ "$(id -u)" = "0" ]; then
    if [ -d /opt/ml/processing/output ]; then
        chown -R ragops:ragops /opt/ml/processing/output
    fi
    exec setpriv --reuid=ragops --regid=ragops --init-groups python -m processing "$@"
fi
exec python -m processing "$@"
