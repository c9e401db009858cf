"""Log-in, sign-up, log-out, the account page (password, log out everywhere), becoming a seller."""
from flask import Blueprint, current_app, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_required, login_user, logout_user

from .. import ratelimits
from ..http import is_htmx, safe_next
from . import services
from .forms import LoginForm, NotificationsForm, PasswordForm, ProfileForm, SellerProfileForm, SignupForm

bp = Blueprint("accounts", __name__)


def start_session(user, remember=False):
    # A fresh session on every log-in: nothing from before survives, the cookie changes, and the
    # log-in gets its own server-side row (and so its own remember cookie value).
    session.clear()
    services.open_session(user, current_app.config["REMEMBER_COOKIE_DURATION"])
    login_user(user, remember=remember)


def end_session():
    logout_user()
    session.clear()


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
    # This log-in ends for every copy of its cookies, and its streams with it. The user's other
    # tabs and devices reconnect at once; with their log-ins still open they carry on.
    services.close_session(current_user._get_current_object())
    end_session()
    flash("You are logged out.", "info")
    return redirect(url_for("listings.home"))


def render_account(status=200, **forms):
    """The account page: name and e-mail, e-mail notifications, password, log-ins. `forms` replaces
    the blank form of the one that was posted (with its errors)."""
    user = current_user._get_current_object()
    forms.setdefault("form", PasswordForm(formdata=None))
    forms.setdefault("profile", ProfileForm(formdata=None, obj=user))
    forms.setdefault("notifications", NotificationsForm(formdata=None, obj=user))
    return render_template("accounts/account.html", open_sessions=services.open_session_count(user),
                           **forms), status


def password_refused(message):
    form = PasswordForm()
    form.form_errors.append(message)
    return render_account(form=form)[0]


def profile_refused(message):
    profile = ProfileForm()
    profile.form_errors.append(message)
    return render_account(profile=profile)[0]


@bp.route("/account", methods=["GET", "POST"])
@login_required
@ratelimits.limit(ratelimits.PASSWORD_FAILURES_PER_USER, ratelimits.per_user, count=ratelimits.failures,
                  refused=password_refused)
def account():
    """The account page; its form changes the password, which ends every other log-in."""
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        try:
            services.change_password(user, form.current.data, form.password.data)
        except services.AccountError as exc:
            form.current.errors.append(str(exc))
        else:
            # This browser stays logged in, on a fresh log-in (kept as long as before if it was).
            start_session(user, remember=bool(request.cookies.get(current_app.config["REMEMBER_COOKIE_NAME"])))
            flash("Your password is changed. Every other device was logged out.", "success")
            return redirect(url_for("accounts.account"))
    if request.method == "GET":
        return render_account()
    return render_account(422, form=form)


@bp.post("/account/profile")
@login_required
@ratelimits.limit(ratelimits.PASSWORD_FAILURES_PER_USER, ratelimits.per_user, count=ratelimits.failures,
                  refused=profile_refused)
def profile():
    """Name and e-mail address (a new address needs the current password)."""
    profile = ProfileForm()
    if profile.validate_on_submit():
        try:
            services.update_profile(current_user._get_current_object(), profile.display_name.data,
                                    profile.email.data, profile.current.data)
        except services.AccountError as exc:
            (profile.current if "password" in str(exc) else profile.email).errors.append(str(exc))
        else:
            flash("Your name and e-mail are saved.", "success")
            return redirect(url_for("accounts.account"), code=303)
    return render_account(422, profile=profile)


@bp.post("/account/notifications")
@login_required
def notifications():
    """How often unread messages are e-mailed: right away, hourly, a daily digest, never."""
    form = NotificationsForm()
    if form.validate_on_submit():
        services.set_notify_email(current_user._get_current_object(), form.notify_email.data)
        flash("Your e-mail settings are saved.", "success")
        return redirect(url_for("accounts.account", _anchor="notifications"), code=303)
    return render_account(422, notifications=form)


@bp.post("/account/sessions/end")
@login_required
def end_all_sessions():
    services.end_all_sessions(current_user._get_current_object())
    end_session()
    flash("You are logged out everywhere, this browser included.", "info")
    return redirect(url_for("accounts.login"))


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
