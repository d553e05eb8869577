#!/bin/sh
# SageMaker mounts /opt/ml/processing/* at run time, owned by root: hand the output directories to the
# unprivileged user, then run the pipeline as that user. Nothing else runs as root. `exec` keeps the PID, so
# tini (see Dockerfile) becomes PID 1 and Python its child: SIGTERM reaches the pipeline's handler.
set -eu
if [ "$(id -u)" = "0" ]; then
    if [ -d /opt/ml/processing/output ]; then
        chown -R ragops:ragops /opt/ml/processing/output
    fi
    exec setpriv --reuid=ragops --regid=ragops --init-groups tini -- python -m processing "$@"
fi
exec tini -- python -m processing "$@"
