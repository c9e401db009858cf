"""HTTP hardening every response gets: the Content-Security-Policy and the other security headers,
HSTS in production, and trust in a reverse proxy's forwarded headers only when configured.

The policy allows scripts, styles, images and connections from our own origin only. There is no
inline script and no inline event handler anywhere (tests/test_hardening.py reads every template),
and no `'unsafe-eval'`, so htmx's `hx-on`/`js:` evaluation can't run either. htmx would add its
indicator rules as a constructed stylesheet; the `htmx-config` meta tag turns that off
(`includeIndicatorCSS: false`) and the same rules live in static/css/app.css.
"""
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
])

# Features no RentPe page uses: a page that gets injected anyway can't ask for any of them.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in ("camera", "microphone", "geolocation", "payment", "usb", "accelerometer", "gyroscope", "magnetometer")
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # The CSP's frame-ancestors, for browsers that predate it.
    "X-Frame-Options": "DENY",
    # Conversation and dashboard URLs never leak to the sites people link to in messages. Same-origin
    # requests keep their Referer: Flask-WTF's CSRF check requires it over https.
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": PERMISSIONS_POLICY,
    "Cross-Origin-Opener-Policy": "same-origin",
}


def add_security_headers(response, hsts_max_age=0):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    if hsts_max_age:
        response.headers.setdefault("Strict-Transport-Security", f"max-age={hsts_max_age}; includeSubDomains")
    return response


def init_app(app):
    hops = app.config.get("PROXY_FIX_HOPS", 0)
    if hops:
        # Only X-Forwarded-For (the client address: rate limits, logs) and X-Forwarded-Proto (https,
        # for secure redirects). The Host header is what the proxy sent; a forwarded host is not
        # trusted, since a proxy that doesn't overwrite it would let clients choose it.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=0, x_port=0, x_prefix=0)
    hsts_max_age = app.config.get("HSTS_MAX_AGE", 0)
    app.after_request(lambda response: add_security_headers(response, hsts_max_age))
