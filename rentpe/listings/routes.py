"""Browse, listing pages, seller pages and the seller dashboard.

Routes are HTTP adapters: parse, call one guard and one service or query, render or redirect.
htmx requests get the fragment of their swap target; the same forms work without JavaScript
(full page, then a redirect back).
"""
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, send_from_directory, session, url_for
from flask_login import current_user, login_required

from .. import ratelimits
from ..accounts.models import User
from ..errors import render_error
from ..extensions import db
from ..http import is_htmx, safe_next
from ..paging import page_arg
from . import photos as photo_files
from . import queries, seo, services
from .forms import ListingForm, PhotoForm
from .guards import GONE, can_view, get_listing_for_owner, get_listing_for_viewer, unavailable_listing
from .models import CATEGORIES, REMOVED, STATUSES, ListingPhoto
from .search import FRAGMENT_HEADERS, SORTS, args_from, known_cities, search_listings, wants_results_fragment

bp = Blueprint("listings", __name__)

# Photos never change under a key (a new photo gets a new random key), so browsers keep them a year.
PHOTO_MAX_AGE = 365 * 24 * 3600
# How many listing ids a session remembers as already viewed, so a reload isn't another view.
VIEWS_REMEMBERED = 50
MAX_PAGE = 1000


def form_status():
    return 200 if request.method == "GET" else 422


def not_a_seller():
    return render_template("listings/not_seller.html"), 403


def login_redirect(next_url):
    """Log in first, then come back to `next_url` (htmx follows HX-Redirect; fetch would swap a 302)."""
    target = url_for("accounts.login", next=next_url)
    if is_htmx():
        return "", 401, {"HX-Redirect": target}
    return redirect(target)


bp.add_app_template_filter(photo_files.human_size, "filesize")
bp.add_app_template_global(seo.summary, "meta_summary")
bp.add_app_template_global(seo.listing_description, "listing_description")
bp.add_app_template_global(seo.listing_json_ld, "listing_json_ld")
bp.add_app_template_global(seo.preview_image_url, "preview_image_url")


@bp.app_template_global()
def saved_listing_ids():
    """Ids the current user saved, loaded once per request, for every heart on the page."""
    if not current_user.is_authenticated:
        return frozenset()
    if "saved_listing_ids" not in g:
        g.saved_listing_ids = queries.saved_ids(current_user.id)
    return g.saved_listing_ids


@bp.get("/")
def home():
    return render_template("listings/home.html", categories=CATEGORIES, listings=queries.newest_live())


@bp.get("/listings/<int:listing_id>")
def show(listing_id):
    gone = unavailable_listing(listing_id)
    if gone is not None:
        # Not available now: the seller's other listings instead, 404 while it may come back, 410
        # when it was removed (so search engines drop it).
        others = [] if gone.seller.is_suspended else queries.live_listings_of(gone.seller_id, limit=8)
        return render_template("listings/unavailable.html", listing=gone, others=others,
                               gone=gone.status in GONE), 410 if gone.status in GONE else 404
    listing = get_listing_for_viewer(listing_id)
    seen = session.get("viewed_listings")
    seen = seen if isinstance(seen, list) else []
    if listing.id not in seen and services.record_view(listing, current_user):
        session["viewed_listings"] = [*seen, listing.id][-VIEWS_REMEMBERED:]
    return render_template("listings/show.html", listing=listing, seller_live_count=queries.count_live_of(listing.seller_id))


def new_refused(message):
    form = ListingForm()  # what was typed stays in the form
    form.form_errors.append(message)
    return render_template("listings/new.html", form=form)


def add_photos_refused(message):
    listing = get_listing_for_owner(request.view_args["listing_id"])
    photo_form = PhotoForm()
    photo_form.photos.errors = [message]  # a tuple until the form is validated
    return render_template("listings/edit.html", form=ListingForm(obj=listing, formdata=None), listing=listing,
                           photo_form=photo_form)


@bp.route("/listings/new", methods=["GET", "POST"])
@login_required
@ratelimits.limit(ratelimits.PHOTO_UPLOADS_PER_USER, ratelimits.per_user, refused=new_refused,
                  exempt_when=ratelimits.without_photos)
def new():
    if not current_user.is_seller:
        return not_a_seller()
    form = ListingForm()
    if form.validate_on_submit():
        try:
            listing = services.create_listing(
                current_user, photos=form.photos.data or [], publish=form.publish.data, **form.listing_fields()
            )
        except services.PhotoError as exc:
            form.photos.errors.append(str(exc))
        except services.ListingError as exc:
            form.form_errors.append(str(exc))
        else:
            flash(f"“{listing.title}” is {'live' if listing.is_live else 'saved as a draft'}.", "success")
            return redirect(url_for(".show", listing_id=listing.id))
    return render_template("listings/new.html", form=form), form_status()


@bp.route("/listings/<int:listing_id>/edit", methods=["GET", "POST"])
@login_required
def edit(listing_id):
    listing = get_listing_for_owner(listing_id)
    form = ListingForm(obj=listing)
    if form.validate_on_submit():
        try:
            services.update_listing(listing, publish=form.publish.data, **form.listing_fields())
        except services.ListingError as exc:
            form.form_errors.append(str(exc))
        else:
            flash("Your changes are saved.", "success")
            return redirect(url_for(".show", listing_id=listing.id))
    return render_template("listings/edit.html", form=form, listing=listing, photo_form=PhotoForm()), form_status()


STATUS_ACTIONS = {
    "publish": (services.publish_listing, "“{}” is live."),
    "pause": (services.pause_listing, "“{}” is paused: buyers won't see it until you resume it."),
    "resume": (services.resume_listing, "“{}” is live again."),
}


@bp.post("/listings/<int:listing_id>/<any(publish, pause, resume):action>")
@login_required
def change_status(listing_id, action):
    listing = get_listing_for_owner(listing_id)
    change, message = STATUS_ACTIONS[action]
    try:
        change(listing)
    except services.ListingStateError as exc:
        return render_error(409, str(exc))
    if is_htmx():
        return dashboard_row_and_totals(listing)
    flash(message.format(listing.title), "success")
    return redirect(safe_next(url_for(".dashboard")))


def dashboard_row_and_totals(listing):
    """The dashboard's row of a listing whose status changed, and its totals and tab counts (out
    of band): the dashboard tells the truth without a reload."""
    return (render_template("listings/_dashboard_row.html", listing=listing)
            + render_template("listings/_dashboard_totals.html", stats=queries.seller_stats(listing.seller_id),
                              oob=True))


@bp.route("/listings/<int:listing_id>/delete", methods=["GET", "POST"])
@login_required
def delete(listing_id):
    """GET asks for confirmation (the no-JS path); htmx posts directly after `hx-confirm`."""
    listing = get_listing_for_owner(listing_id)
    if request.method == "GET":
        return render_template("listings/delete.html", listing=listing)
    services.delete_listing(listing)
    if is_htmx():
        return dashboard_row_and_totals(listing)
    flash(f"“{listing.title}” is deleted.", "success")
    return redirect(url_for(".dashboard"))


@bp.post("/listings/<int:listing_id>/photos")
@login_required
@ratelimits.limit(ratelimits.PHOTO_UPLOADS_PER_USER, ratelimits.per_user, refused=add_photos_refused,
                  exempt_when=ratelimits.without_photos)
def add_photos(listing_id):
    listing = get_listing_for_owner(listing_id)
    photo_form = PhotoForm()
    if photo_form.validate_on_submit():
        try:
            services.add_photos(listing, photo_form.photos.data or [])
        except services.PhotoError as exc:
            photo_form.photos.errors.append(str(exc))
        else:
            flash("Photos added.", "success")
            return redirect(url_for(".edit", listing_id=listing.id, _anchor="photos"))
    form = ListingForm(obj=listing, formdata=None)
    return render_template("listings/edit.html", form=form, listing=listing, photo_form=photo_form), 422


def get_photo_of(listing, photo_id):
    photo = db.session.get(ListingPhoto, photo_id)
    if photo is None or photo.listing_id != listing.id:
        abort(404)
    return photo


def photos_changed(listing, message):
    if is_htmx():
        return render_template("listings/_photo_manager.html", listing=listing, photo_form=PhotoForm())
    flash(message, "success")
    return redirect(url_for(".edit", listing_id=listing.id, _anchor="photos"))


@bp.post("/listings/<int:listing_id>/photos/<int:photo_id>/delete")
@login_required
def remove_photo(listing_id, photo_id):
    listing = get_listing_for_owner(listing_id)
    services.remove_photo(get_photo_of(listing, photo_id))
    return photos_changed(listing, "Photo removed.")


@bp.post("/listings/<int:listing_id>/photos/<int:photo_id>/cover")
@login_required
def cover_photo(listing_id, photo_id):
    listing = get_listing_for_owner(listing_id)
    services.set_cover_photo(get_photo_of(listing, photo_id))
    return photos_changed(listing, "Cover photo changed.")


@bp.post("/listings/<int:listing_id>/favourite")
def favourite(listing_id):
    """Heart or un-heart. The button posts the state it wants (`saved=1|0`), so a double click or
    a second tab can't flip it back; without that field it toggles."""
    if not current_user.is_authenticated:
        return login_redirect(url_for(".show", listing_id=listing_id))
    listing = get_listing_for_viewer(listing_id)
    wanted = request.form.get("saved")
    try:
        if wanted in ("0", "1"):
            saved = services.set_favourite(current_user, listing, wanted == "1")
        else:
            saved = services.toggle_favourite(current_user, listing)
    except services.ListingError as exc:
        return render_error(403, str(exc))
    if is_htmx():
        return render_template("listings/_favourite_button.html", listing=listing, saved=saved)
    flash("Saved to your list." if saved else "Removed from your saved listings.", "success")
    return redirect(safe_next(url_for(".show", listing_id=listing.id)))


@bp.get("/sellers/<int:user_id>")
def seller(user_id):
    seller = db.session.get(User, user_id)
    if seller is None or seller.seller_profile is None or seller.is_suspended:
        abort(404)
    return render_template("listings/seller.html", seller=seller, listings=queries.live_listings_of(seller.id),
                           live_count=queries.count_live_of(seller.id))


@bp.get("/dashboard")
@login_required
def dashboard():
    if not current_user.is_seller:
        return not_a_seller()
    status = request.args.get("status")
    status = status if status in STATUSES and status != REMOVED else None
    return render_template("listings/dashboard.html", status=status, stats=queries.seller_stats(current_user.id),
                           listings=queries.dashboard_listings(current_user.id, status))


@bp.get("/search")
def search():
    """The search page; htmx swaps of the results get only `_results.html` (see wants_results_fragment)."""
    results = search_listings(**args_from(request.args))
    headers = {"Vary": ", ".join(FRAGMENT_HEADERS)}
    if wants_results_fragment(request.headers):
        # The canonical URL (defaults and ignored parameters left out) goes into the history.
        headers["HX-Push-Url"] = url_for("listings.search", **results.query.url_args())
        return render_template("listings/_results.html", results=results), headers
    cities = known_cities()
    page = render_template(
        "listings/search.html", results=results, categories=CATEGORIES, sorts=SORTS, cities=cities,
        seo=seo.search_meta(results, cities),
    )
    return page, headers


@bp.get("/saved")
@login_required
def favourites():
    return render_template("listings/saved.html", page=queries.saved_listings(current_user.id, page=page_arg(MAX_PAGE)))


@bp.get("/photos/<size>/<key>")
def photo(size, key):
    """A photo rendition, only if the viewer may see its listing. Public listings' photos may sit
    in shared caches; a draft's or paused listing's photos only in the seller's own browser."""
    if photo_files.path_for(key, size) is None:
        abort(404)
    stored = db.session.scalar(db.select(ListingPhoto).where(ListingPhoto.key == key))
    if stored is None or not can_view(stored.listing, current_user):
        abort(404)
    if size == photo_files.PREVIEW and not photo_files.ensure_preview(key):
        abort(404)
    response = send_from_directory(
        photo_files.storage_root(), f"{key[:2]}/{key}-{size}.jpg", mimetype="image/jpeg", max_age=PHOTO_MAX_AGE
    )
    response.cache_control.immutable = True
    if not stored.listing.is_live:
        response.cache_control.public = False
        response.cache_control.private = True
    return response


# What search engines may crawl, and the sitemap. Cached for an hour: crawlers come back often.
CRAWLER_MAX_AGE = 3600
# Paths only a logged-in person has a use for (their pages also say noindex). Prefixes, as robots.txt
# reads them; `*` is any run of characters and a final `$` the end (so /sell spares /sellers/).
PRIVATE_PATHS = (
    "/account", "/admin/", "/boards", "/conversations/", "/dashboard", "/events", "/inbox", "/listings/new",
    "/listings/*/edit", "/listings/*/delete", "/logout", "/report/", "/reports/", "/saved", "/sell$",
)


def crawler_response(body, mimetype):
    response = current_app.response_class(body, mimetype=mimetype)
    response.cache_control.public = True
    response.cache_control.max_age = CRAWLER_MAX_AGE
    return response


@bp.get("/robots.txt")
def robots_txt():
    return crawler_response(render_template("listings/robots.txt", private_paths=PRIVATE_PATHS), "text/plain")


def sitemap_page_size():
    return current_app.config.get("SITEMAP_URLS_PER_FILE", seo.SITEMAP_URLS_PER_FILE)


@bp.get("/sitemap.xml")
def sitemap():
    """A sitemap index: the protocol allows 50,000 URLs a file, so listings and shops are cut into
    numbered files, each named here with its newest change."""
    files = seo.sitemap_files(sitemap_page_size())
    return crawler_response(render_template("listings/sitemap_index.xml", files=files), "application/xml")


@bp.get("/sitemaps/<any(listings, shops):kind>-<int:number>.xml")
def sitemap_file(kind, number):
    # A sitemap index may name 50,000 files; a number past that is garbage (and past SQL's OFFSET).
    entries = seo.sitemap_entries(kind, number, sitemap_page_size()) if 1 <= number <= 50_000 else []
    if not entries:
        abort(404)
    endpoint, key = ("listings.show", "listing_id") if kind == "listings" else ("listings.seller", "user_id")
    urls = [(url_for(endpoint, _external=True, **{key: entry_id}), modified) for entry_id, modified in entries]
    return crawler_response(render_template("listings/sitemap.xml", urls=urls), "application/xml")
