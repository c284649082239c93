#!/bin/sh
# Written by difyctl: with VECTOR_STORE=elasticsearch-ja, installs the ICU
# and Japanese analysis plugins first; then runs the image's entrypoint.
set -e
if [ "${VECTOR_STORE}" = "elasticsearch-ja" ]; then
    for plugin in analysis-icu analysis-kuromoji; do
        if ! /usr/share/elasticsearch/bin/elasticsearch-plugin list | grep -q "$plugin"; then
            echo "installing the $plugin plugin"
            /usr/share/elasticsearch/bin/elasticsearch-plugin install "$plugin"
        fi
    done
fi
exec /bin/tini -- /usr/local/bin/docker-entrypoint.sh
