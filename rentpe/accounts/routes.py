"""Log-in, sign-up, log-out, becoming a seller, public seller pages."""
import secrets

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import ratelimits, realtime
from ..http import is_htmx, safe_next
from . import services
from .forms import LoginForm, SellerProfileForm, SignupForm

bp = Blueprint("accounts", __name__)


def start_session(user, remember=False):
    # A fresh session on every log-in: nothing from before survives, and the cookie changes.
    session.clear()
    session["sid"] = secrets.token_urlsafe(16)
    login_user(user, remember=remember)


def render_form(name, form):
    """The page, or for htmx just the form fragment (`accounts/_<name>_form.html`)."""
    template = f"accounts/_{name}_form.html" if is_htmx() else f"accounts/{name}.html"
    return render_template(template, form=form)


def login_account_key():
    return "account:" + services.normalise_email(request.form.get("email"))


def login_refused(message):
    form = LoginForm()
    form.form_errors.append(message)
    return render_form("login", form)


def signup_refused(message):
    form = SignupForm()
    form.form_errors.append(message)
    return render_form("signup", form)


@bp.route("/login", methods=["GET", "POST"])
@ratelimits.limit(ratelimits.LOGIN_FAILURES_PER_ACCOUNT, login_account_key, count=ratelimits.failures,
                  refused=login_refused)
@ratelimits.limit(ratelimits.LOGIN_FAILURES_PER_ADDRESS, ratelimits.per_address, count=ratelimits.failures,
                  refused=login_refused)
def login():
    if current_user.is_authenticated:
        return redirect(safe_next(url_for("listings.home")))
    form = LoginForm()
    if form.validate_on_submit():
        try:
            user = services.authenticate(form.email.data, form.password.data)
        except services.AccountSuspended as exc:
            form.form_errors.append(str(exc))
        else:
            if user is not None:
                start_session(user, remember=form.remember.data)
                return redirect(safe_next(url_for("listings.home")))
            form.password.errors.append("Wrong e-mail or password.")
    return render_form("login", form), 200 if request.method == "GET" else 422


@bp.route("/signup", methods=["GET", "POST"])
@ratelimits.limit(ratelimits.SIGNUPS_PER_ADDRESS, ratelimits.per_address, count=ratelimits.successes,
                  refused=signup_refused)
@ratelimits.limit(ratelimits.SIGNUP_ATTEMPTS_PER_ADDRESS, ratelimits.per_address, refused=signup_refused)
def signup():
    form = SignupForm()
    if form.validate_on_submit():
        try:
            user = services.create_user(form.email.data, form.password.data, form.display_name.data)
        except services.AccountError as exc:
            form.email.errors.append(str(exc))
        else:
            start_session(user)
            flash(f"Welcome to RentPe, {user.first_name}!", "success")
            return redirect(safe_next(url_for("listings.home")))
    return render_form("signup", form), 200 if request.method == "GET" else 422


@bp.post("/logout")
@login_required
def logout():
    user_id = current_user.id
    logout_user()
    session.clear()
    # This tab's stream must not outlive the session. The user's other tabs and devices reconnect
    # at once; with their sessions still valid they carry on where they were.
    realtime.end_streams(user_id)
    flash("You are logged out.", "info")
    return redirect(url_for("listings.home"))


@bp.route("/sell", methods=["GET", "POST"])
@login_required
def become_seller():
    profile = current_user.seller_profile
    form = SellerProfileForm(obj=profile)
    if form.validate_on_submit():
        services.become_seller(current_user, form.shop_name.data, form.city.data, form.bio.data, form.phone.data)
        flash("Your seller profile is saved." if profile else "You are now a seller. Add your first listing!", "success")
        return redirect(url_for("listings.dashboard"))
    return render_template("accounts/become_seller.html", form=form, editing=profile is not None), (
        200 if request.method == "GET" else 422
    )
