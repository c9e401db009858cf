"""HTTP hardening every response gets: the Content-Security-Policy and the other security headers,
HSTS in production, and trust in a reverse proxy's forwarded headers only when configured.

The policy allows scripts, styles, images and connections from our own origin only. There is no
inline script and no inline event handler anywhere (tests/test_hardening.py reads every template),
and no `'unsafe-eval'`, so htmx's `hx-on`/`js:` evaluation can't run either. htmx would add its
indicator rules as a constructed stylesheet; the `htmx-config` meta tag turns that off
(`includeIndicatorCSS: false`) and the same rules live in static/css/app.css.

One inline `<style>` is allowed, by a nonce: a logged-in page states who views it
(templates/chat/_viewer_style.html), which live fragments rendered once for every viewer rely on.
A template asks for the nonce with `csp_nonce()`; only a response that did gets a policy naming
it (a fresh one per response), so every other response keeps the plain policy.
"""
import secrets

from flask import g
from werkzeug.middleware.proxy_fix import ProxyFix

CONTENT_SECURITY_POLICY = "; ".join([
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    # blob: the composer's previews of photos chosen but not sent yet (object URLs this page's own
    # script made from the chosen files; nothing from elsewhere).
    "img-src 'self' blob:",
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


def csp_nonce():
    """This response's nonce for inline styles (made on first use)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def policy(style_nonce=None):
    if style_nonce is None:
        return CONTENT_SECURITY_POLICY
    return CONTENT_SECURITY_POLICY.replace("style-src 'self'", f"style-src 'self' 'nonce-{style_nonce}'")


# A page made for one logged-in person (their inbox, a conversation, the dashboard) must not be
# kept by a shared proxy, nor by the browser's disk cache or back button once they log out.
PRIVATE_PAGE_CACHE_CONTROL = "private, no-store"


def add_security_headers(response, hsts_max_age=0):
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    # The user this request loaded (every page made for someone did); never loaded here: this runs
    # on the database-overloaded answer too, which must not touch the database.
    user = g.get("_login_user")
    if response.mimetype == "text/html" and user is not None and user.is_authenticated:
        response.headers["Cache-Control"] = PRIVATE_PAGE_CACHE_CONTROL
    nonce = g.get("csp_nonce")
    if nonce is not None and response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY:
        response.headers["Content-Security-Policy"] = policy(nonce)
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
    app.add_template_global(csp_nonce, "csp_nonce")
