#!/bin/bash
# Written by difyctl: renders squid.conf from the environment, writes the
# optional allow-lists (SSRF_PROXY_ALLOW_PRIVATE_IPS / _DOMAINS) and the
# optional sandbox bridge (SSRF_SANDBOX_PROXY_PORT), and runs squid.
set -e

if [ ! -f /etc/ssl/private/ssl-cert-snakeoil.key ]; then
    /usr/sbin/make-ssl-cert generate-default-snakeoil --force-overwrite >/dev/null 2>&1 || true
fi
for log in access error store cache; do
    tail -F "/var/log/squid/$log.log" 2>/dev/null &
done

allow=/etc/squid/dify_allow_private.conf
echo "# written at start-up from SSRF_PROXY_ALLOW_PRIVATE_*" > "$allow"
add_allow() { # env var, acl name, acl type
    values="${!1:-}"
    values="${values//,/ }"
    [ -z "${values//[[:space:]]/}" ] && return
    echo "acl $2 $3 $values" >> "$allow"
    echo "http_access allow client_localnet $2" >> "$allow"
}
add_allow SSRF_PROXY_ALLOW_PRIVATE_IPS dify_allowed_private_networks dst
add_allow SSRF_PROXY_ALLOW_PRIVATE_DOMAINS dify_allowed_private_domains dstdomain

bridge=/etc/squid/dify_sandbox_proxy.conf
echo "# written at start-up from SSRF_SANDBOX_PROXY_PORT" > "$bridge"
if [ -n "${SSRF_SANDBOX_PROXY_PORT:-}" ]; then
    {
        echo "http_port ${SSRF_SANDBOX_PROXY_PORT} accel vhost"
        echo "cache_peer ${SSRF_SANDBOX_PROXY_HOST:-sandbox} parent ${SANDBOX_PORT:-8194} 0 no-query originserver name=dify_sandbox"
        echo "acl dify_sandbox_proxy_port localport ${SSRF_SANDBOX_PROXY_PORT}"
        echo "http_access allow dify_sandbox_proxy_port"
    } >> "$bridge"
fi

# ${NAME} → its value, for every variable in the template.
awk '{
    while (match($0, /\$\{[A-Za-z_][A-Za-z_0-9]*\}/)) {
        name = substr($0, RSTART + 2, RLENGTH - 3)
        $0 = substr($0, 1, RSTART - 1) ENVIRON[name] substr($0, RSTART + RLENGTH)
    }
    print
}' /etc/squid/squid.conf.template > /etc/squid/squid.conf

/usr/sbin/squid -Nz
exec /usr/sbin/squid -f /etc/squid/squid.conf -NYC 1
