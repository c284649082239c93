#!/bin/sh
# Written by difyctl: renders the nginx templates from the environment and
# starts nginx in the foreground.
set -e

HTTPS_CONFIG=''
if [ "${NGINX_HTTPS_ENABLED}" = "true" ]; then
    live="/etc/letsencrypt/live/${CERTBOT_DOMAIN}"
    if [ -n "${CERTBOT_DOMAIN}" ] && [ -f "$live/${NGINX_SSL_CERT_FILENAME}" ] && [ -f "$live/${NGINX_SSL_CERT_KEY_FILENAME}" ]; then
        SSL_CERTIFICATE_PATH="$live/${NGINX_SSL_CERT_FILENAME}"
        SSL_CERTIFICATE_KEY_PATH="$live/${NGINX_SSL_CERT_KEY_FILENAME}"
    else
        SSL_CERTIFICATE_PATH="/etc/ssl/${NGINX_SSL_CERT_FILENAME}"
        SSL_CERTIFICATE_KEY_PATH="/etc/ssl/${NGINX_SSL_CERT_KEY_FILENAME}"
    fi
    export SSL_CERTIFICATE_PATH SSL_CERTIFICATE_KEY_PATH
    HTTPS_CONFIG=$(envsubst < /etc/nginx/https.conf.template)
fi
export HTTPS_CONFIG

ACME_CHALLENGE_LOCATION=''
if [ "${NGINX_ENABLE_CERTBOT_CHALLENGE}" = "true" ]; then
    ACME_CHALLENGE_LOCATION='location /.well-known/acme-challenge/ { root /var/www/html; }'
fi
export ACME_CHALLENGE_LOCATION

# Substitute only variables that are set, so nginx's own $variables survive.
vars=$(printenv | cut -d= -f1 | sed 's/^/$/' | paste -sd, -)
envsubst "$vars" < /etc/nginx/nginx.conf.template > /etc/nginx/nginx.conf
envsubst "$vars" < /etc/nginx/proxy.conf.template > /etc/nginx/proxy.conf
envsubst "$vars" < /etc/nginx/conf.d/default.conf.template > /etc/nginx/conf.d/default.conf

exec nginx -g 'daemon off;'
