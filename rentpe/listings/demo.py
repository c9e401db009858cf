"""Demo listings with generated placeholder photos.

Deterministic (one seeded `random.Random`) and offline: the photos are drawn with Pillow
(a gradient, a few category shapes, the title) and stored through the same photo service as
uploads. 48 live listings across all six categories and seven cities, split between the two demo
sellers, plus one draft and one paused listing so the dashboard shows every status.
"""
import io
import random
import textwrap
from datetime import timedelta

from PIL import Image, ImageDraw, ImageFont

from ..extensions import db
from ..models_base import utcnow
from . import services

SEED = 20241123
# Small enough to keep seeding fast; the photo service makes the renditions from it.
PHOTO_SIZE = (800, 600)

AREAS = {
    "Mumbai": ["Andheri West", "Bandra", "Powai", "Juhu", "Lower Parel", "Goregaon East"],
    "Pune": ["Koregaon Park", "Baner", "Kothrud", "Viman Nagar"],
    "Delhi": ["Hauz Khas", "Saket", "Rajouri Garden", "Dwarka", "Connaught Place"],
    "Jaipur": ["C-Scheme", "Malviya Nagar", "Vaishali Nagar"],
    "Bengaluru": ["Koramangala", "Indiranagar", "Whitefield", "HSR Layout", "Jayanagar"],
    "Hyderabad": ["Banjara Hills", "Gachibowli", "Jubilee Hills", "Madhapur"],
    "Chennai": ["Adyar", "T. Nagar", "Anna Nagar", "Velachery"],
}
SELLER_CITIES = {
    "seller@demo.rentpe.test": ["Mumbai", "Mumbai", "Pune", "Delhi", "Jaipur"],
    "seller2@demo.rentpe.test": ["Bengaluru", "Bengaluru", "Hyderabad", "Chennai", "Pune"],
}

# category -> (title, what it is, price range in ₹, unit, capacity range or None, seller e-mail)
S1, S2 = "seller@demo.rentpe.test", "seller2@demo.rentpe.test"
ITEMS = {
    "venues": [
        ("Rooftop terrace with city views", "An open-air terrace with a pergola, bar counter and seating for cocktail "
         "evenings, birthdays and engagement parties.", (25_000, 60_000), "event", (60, 120), S1),
        ("Banquet hall with in-house catering", "An air-conditioned hall with a stage, green room, valet parking and "
         "a kitchen team serving veg and non-veg menus.", (90_000, 250_000), "day", (200, 500), S1),
        ("Garden lawn for mehendi and sangeet", "A landscaped lawn with a permanent stage, power backup and space for "
         "a DJ floor and live counters.", (100_000, 300_000), "day", (300, 800), S1),
        ("Poolside deck for cocktail evenings", "A wooden deck around a lit pool, with lounge furniture and a "
         "bartending area.", (35_000, 75_000), "event", (50, 100), S1),
        ("Kids' party room with play area", "A bright room with a soft-play corner, tables for the cake and a "
         "projector for cartoons.", (2_500, 5_000), "hour", (30, 60), S1),
        ("Heritage haveli courtyard", "A restored courtyard with carved arches, lanterns and rooms for the family "
         "to get ready.", (150_000, 350_000), "day", (150, 400), S1),
        ("Private dining room for small celebrations", "A quiet dining room in a restaurant, with a set menu and "
         "its own music system.", (3_000, 6_000), "hour", (12, 30), S2),
        ("Convention hall for receptions", "A pillarless hall with a high ceiling, bridal suite and parking for "
         "300 cars.", (250_000, 600_000), "day", (500, 1200), S1),
        ("Farmhouse with lawn and rooms", "A farmhouse outside the city with a lawn, six rooms and a bonfire "
         "area for overnight functions.", (60_000, 150_000), "day", (100, 300), S2),
    ],
    "furniture": [
        ("Gold Tiffany chairs (set of 50)", "Stackable Tiffany chairs with cream cushions, delivered and arranged "
         "by our team.", (4_000, 7_500), "event", None, S1),
        ("Round banquet tables with linen (set of 10)", "Six-foot round tables that seat ten each, with ironed "
         "white or ivory cloths.", (3_500, 6_000), "event", None, S1),
        ("White lounge sofa set for receptions", "A three-seater, two armchairs and a coffee table in white "
         "leatherette, for a lounge corner or the stage.", (6_000, 12_000), "event", None, S2),
        ("Cocktail tables with spandex covers (set of 12)", "Tall poseur tables with stretch covers in black, "
         "white or gold.", (3_000, 5_500), "event", None, S2),
        ("Maharaja stage sofa for the couple", "A carved, gilded two-seater with velvet upholstery for the "
         "wedding stage.", (8_000, 15_000), "event", None, S1),
        ("Kids' chairs and tables (20 seats)", "Colourful plastic chairs and low tables for birthday parties, "
         "wiped and sanitised after every use.", (1_500, 3_000), "event", None, S2),
        ("Rustic benches and crates", "Wooden benches, crates and barrels for a boho or rustic seating area.",
         (4_000, 8_000), "event", None, S2),
        ("Bar counter with LED front", "A modular eight-foot bar counter whose front glows in any colour.",
         (5_000, 9_000), "event", None, S1),
    ],
    "decoration": [
        ("Balloon arch and backdrop for birthdays", "A balloon garland arch with a printed or sequin backdrop and "
         "a name board in your theme colours.", (6_000, 15_000), "event", None, S2),
        ("Marigold and mogra floral mandap", "A four-pillar mandap dressed in fresh marigold strings and mogra, "
         "with a draped ceiling.", (45_000, 120_000), "event", None, S2),
        ("Fresh flower car decoration", "Roses and orchids on the bonnet and doors of the wedding car, done at "
         "your venue.", (5_000, 12_000), "event", None, S2),
        ("Haldi ceremony décor", "Yellow and white drapes, a floral swing, brass urlis and marigold curtains.",
         (25_000, 60_000), "event", None, S2),
        ("Pastel baby shower backdrop", "A pastel backdrop with a floral hoop, a welcome board and a cake table "
         "set-up.", (8_000, 18_000), "event", None, S2),
        ("Neon sign: Happily Ever After", "A warm-white LED neon sign on an acrylic board, with a stand or for "
         "hanging.", (2_500, 4_500), "day", None, S2),
        ("Rangoli and diya entrance décor", "A flower rangoli at the entrance with brass diyas and torans on the "
         "door.", (4_000, 9_000), "event", None, S1),
        ("Centrepieces with candles and vases (set of 20)", "Glass vases, pillar candles and seasonal flowers for "
         "twenty tables.", (7_000, 14_000), "event", None, S2),
    ],
    "lighting": [
        ("Fairy light curtains, 10 × 10 ft", "Warm-white fairy light curtains for backdrops, windows and stage "
         "walls, with extension cords.", (1_500, 3_500), "day", None, S2),
        ("Festoon bulbs, 100 metres", "Warm vintage bulbs on a weatherproof cable for lawns and terraces.",
         (3_000, 6_000), "day", None, S2),
        ("Moving head lights with DMX controller (set of 4)", "Beam moving heads with a controller and an "
         "operator for the sangeet or the DJ night.", (12_000, 25_000), "event", None, S2),
        ("LED uplighters in any colour (set of 12)", "Battery uplighters that wash walls and pillars in your "
         "theme colour, no cables across the floor.", (4_500, 9_000), "event", None, S2),
        ("Crystal chandeliers for mandap and stage (set of 3)", "Three crystal chandeliers with rigging, hung by "
         "our crew.", (9_000, 18_000), "event", None, S1),
        ("Paper lanterns and string lights", "Paper lanterns in mixed sizes with string lights for garden "
         "parties.", (2_500, 5_000), "day", None, S2),
        ("Cold pyro machines (pair) with operator", "Indoor-safe cold spark fountains for the couple's entry or "
         "the first dance.", (7_000, 14_000), "event", None, S1),
        ("Marquee letter lights, 4 ft", "Giant light-up letters and numbers: initials, LOVE, or the birthday "
         "age.", (1_000, 2_500), "day", None, S2),
    ],
    "electronics": [
        ("DJ console with two 1000 W speakers", "A Pioneer controller, two powered speakers on stands and a "
         "wireless mic.", (8_000, 16_000), "event", None, S2),
        ("Line-array sound system for 500 guests", "A line-array system with subwoofers, a mixer and a sound "
         "engineer.", (30_000, 65_000), "event", None, S1),
        ("Projector with 10 ft screen", "A bright 4000-lumen projector with a tripod screen and HDMI cables for "
         "slideshows and match screenings.", (2_500, 5_000), "day", None, S2),
        ("Cordless microphones (set of 4)", "Four UHF handheld mics with a receiver and spare batteries.",
         (1_500, 3_000), "day", None, S2),
        ("55-inch LED TV on stand", "A 55-inch 4K TV on a floor stand for slideshows, welcome screens or "
         "scores.", (2_000, 4_000), "day", None, S2),
        ("Photo booth with instant prints", "An open photo booth with props, a backdrop and unlimited 4 × 6 "
         "prints for three hours.", (12_000, 22_000), "event", None, S2),
        ("Silent generator, 62.5 kVA, with operator", "A soundproof diesel generator with cabling and an "
         "operator; fuel billed at actuals.", (9_000, 16_000), "day", None, S1),
        ("LED video wall, 12 × 8 ft", "An indoor LED wall for stage backdrops and live feeds, with a "
         "technician.", (25_000, 50_000), "day", None, S1),
    ],
    "other": [
        ("Cotton candy and popcorn machines with attendant", "Both machines with supplies for 100 servings and an "
         "attendant in uniform.", (4_000, 8_000), "event", None, S1),
        ("Bouncy castle for kids' parties", "A 12 × 12 ft inflatable castle with a blower and safety mats, for "
         "ages 3 to 10.", (3_500, 7_000), "day", None, S2),
        ("Portable AC units (set of 4)", "Two-ton portable air conditioners with ducting for tents and "
         "halls.", (10_000, 20_000), "day", None, S1),
        ("Horse-drawn baggi for the baraat", "A decorated white baggi with two horses and a handler for the "
         "groom's procession.", (25_000, 45_000), "event", None, S1),
        ("Vintage car for the couple's entry", "A restored 1960s convertible with a chauffeur, decorated in "
         "flowers of your choice.", (15_000, 30_000), "event", None, S1),
        ("Chafing dishes and buffet set for 100", "Steel chafing dishes, serving spoons, plates and a buffet "
         "table with skirting.", (5_000, 9_000), "event", None, S1),
        ("Mehendi and haldi seating set", "Low cushioned seats, bolsters and a swing for mehendi artists and "
         "guests.", (6_000, 11_000), "event", None, S2),
    ],
}

TERMS = [
    "Delivery, set-up and pick-up within city limits are included.",
    "Our team sets up two hours before your event and clears up afterwards.",
    "Outstation bookings are welcome; travel is charged at actuals.",
    "Booking is confirmed with 30% advance; the deposit is refunded within three days.",
    "Available for weddings, birthdays, corporate events and house parties.",
    "Message us with your date and guest count for a quick quote.",
]

# Two colours per category for the photo gradient, and the shapes drawn on top.
PALETTES = {
    "venues": ((180, 83, 9), (252, 211, 77)),
    "furniture": ((21, 128, 61), (190, 242, 100)),
    "decoration": ((190, 24, 93), (233, 213, 255)),
    "lighting": ((30, 27, 75), (250, 204, 21)),
    "electronics": ((15, 23, 42), (56, 189, 248)),
    "other": ((71, 85, 105), (203, 213, 225)),
}


def _shade(color, rng):
    return tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in color)


def _shapes(draw, category, rng, w, h):
    white = (255, 255, 255)
    if category == "venues":
        for i in range(5):  # the arches of a hall
            x = w * (0.06 + i * 0.18)
            draw.rounded_rectangle((x, h * 0.3, x + w * 0.14, h * 0.68), radius=int(w * 0.07), outline=white, width=5)
    elif category == "furniture":
        for i in range(6):  # a row of chairs
            x, y = (0.06 + i * 0.15 + rng.uniform(-0.02, 0.02)) * w, rng.uniform(0.35, 0.45) * h
            draw.rectangle((x, y, x + w * 0.09, y + h * 0.03), fill=white)
            draw.rectangle((x, y - h * 0.13, x + w * 0.015, y + h * 0.15), fill=white)
            draw.rectangle((x + w * 0.075, y, x + w * 0.09, y + h * 0.15), fill=white)
    elif category == "decoration":
        for _ in range(14):  # balloons
            x, y, r = rng.uniform(0, w), rng.uniform(0, h * 0.7), rng.uniform(0.03, 0.07) * w
            draw.ellipse((x - r, y - r * 1.2, x + r, y + r * 1.2), fill=_shade((244, 114, 182), rng), outline=white, width=3)
    elif category == "lighting":
        for row in range(3):  # strings of bulbs
            y0, step = h * (0.12 + row * 0.2), w / 12
            points = [(i * step, y0 + h * 0.05 * (i % 2)) for i in range(13)]
            draw.line(points, fill=(250, 250, 250), width=2)
            for x, y in points:
                draw.ellipse((x - 11, y + 3, x + 11, y + 29), fill=(253, 224, 71))
    elif category == "electronics":
        for x in (w * 0.08, w * 0.73):  # two speakers
            box = (x, h * 0.15, x + w * 0.19, h * 0.7)
            draw.rounded_rectangle(box, radius=14, fill=(30, 41, 59), outline=(148, 163, 184), width=4)
            cx, size = x + w * 0.095, w * 0.06
            for cy in (h * 0.3, h * 0.52):
                draw.ellipse((cx - size, cy - size, cx + size, cy + size), outline=(148, 163, 184), width=7)
    else:
        for _ in range(40):  # confetti
            x, y = rng.uniform(0, w), rng.uniform(0, h * 0.7)
            draw.rectangle((x, y, x + 12, y + 7), fill=_shade((251, 191, 36), rng))


def placeholder_photo(title, category, rng, number):
    """A JPEG of a category-coloured gradient, shapes and the title: recognisable, not a real photo."""
    width, height = PHOTO_SIZE
    top, bottom = (_shade(c, rng) for c in PALETTES[category])
    mask = Image.linear_gradient("L").resize((width, height))
    image = Image.composite(Image.new("RGB", (width, height), bottom), Image.new("RGB", (width, height), top), mask)
    draw = ImageDraw.Draw(image)
    _shapes(draw, category, rng, width, height)
    draw.rectangle((0, height - 160, width, height), fill=(15, 23, 42))
    font, small = ImageFont.load_default(size=38), ImageFont.load_default(size=20)
    # The bundled font has no "×"; the photo only needs to be recognisable.
    for i, line in enumerate(textwrap.wrap(title.replace("×", "x"), 34)[:2]):
        draw.text((30, height - 145 + i * 46), line, font=font, fill=(255, 255, 255))
    draw.text((30, height - 42), f"RentPe demo photo {number}", font=small, fill=(148, 163, 184))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def _price(rng, low, high):
    step = 500 if high < 20_000 else 5_000
    return rng.randrange(low // step, high // step + 1) * step


def _description(summary, capacity, rng):
    lines = [summary]
    if capacity:
        lines.append(f"Comfortably hosts up to {capacity} guests seated.")
    lines.append("")
    lines += rng.sample(TERMS, 2)
    return "\n".join(lines)


def plan(rng):
    """The demo listings as plain data (no database): the same `rng` seed gives the same plan."""
    listings = []
    for category, items in ITEMS.items():
        for title, summary, (low, high), unit, capacity_range, seller_email in items:
            city = rng.choice(SELLER_CITIES[seller_email])
            capacity = rng.randrange(capacity_range[0], capacity_range[1] + 1, 10) if capacity_range else None
            price = _price(rng, low, high)
            listings.append({
                "seller": seller_email,
                "photo_seeds": [rng.getrandbits(32) for _ in range(rng.randint(1, 3))],
                "fields": {
                    "title": title, "category": category, "description": _description(summary, capacity, rng),
                    "city": city, "area": rng.choice(AREAS[city]), "price": price, "price_unit": unit,
                    "deposit": (price // 5 // 500) * 500 if rng.random() < 0.7 else 0, "capacity": capacity,
                },
            })
    return listings


def seed(users):
    """Create the demo listings for the demo sellers in `users` (email -> User). Returns them."""
    rng = random.Random(SEED)
    now = utcnow()
    created = []
    for spec in plan(rng):
        fields = spec["fields"]
        photos = [
            placeholder_photo(fields["title"], fields["category"], random.Random(photo_seed), number)
            for number, photo_seed in enumerate(spec["photo_seeds"], start=1)
        ]
        created.append(services.create_listing(users[spec["seller"]], photos=photos, publish=True, **fields))
    _extra_statuses(users, rng, created)
    _history(users, rng, created, now)
    return created


def _extra_statuses(users, rng, created):
    """One draft and one paused listing, so the dashboard shows every status."""
    draft = services.create_listing(
        users[S1], title="Mirror-work tent for mehendi (draft)", category="decoration",
        description="A colourful Rajasthani tent with mirror-work panels and floor seating.\nPhotos coming soon.",
        city="Jaipur", area="C-Scheme", price=35_000, price_unit="event", deposit=5_000,
    )
    paused = services.create_listing(
        users[S2], photos=[placeholder_photo("Snow machine for sangeet night", "other", rng, 1)], publish=True,
        title="Snow machine for sangeet night", category="other",
        description="A foam snow machine with fluid for two hours of snowfall on the dance floor.",
        city="Bengaluru", area="Indiranagar", price=6_000, price_unit="event", deposit=2_000,
    )
    services.pause_listing(paused)
    created += [draft, paused]


def _history(users, rng, created, now):
    """Spread the listings over the last two months, give them views, and let the buyer save some."""
    for listing in created:
        age = timedelta(days=rng.randint(0, 60), minutes=rng.randint(0, 1439))
        views = rng.randint(5, 400) if listing.is_live else 0
        listing.created_at = listing.updated_at = now - age
        listing.view_count = views
    db.session.commit()
    buyer = users.get("buyer@demo.rentpe.test")
    if buyer is not None:
        for listing in rng.sample([item for item in created if item.is_live], 5):
            services.set_favourite(buyer, listing, True)

