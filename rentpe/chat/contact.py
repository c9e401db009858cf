"""The contact-information guard: phone numbers, e-mail addresses and payment handles in messages.

Taking a deal off the platform is how most marketplace scams start ("WhatsApp me", "pay the
deposit to my UPI"). A message carrying such details is, by policy (`CONTACT_INFO_POLICY`):

- `warn` (the default): stored and delivered, with `Message.contact_flags` set; the recipient sees
  a safety notice under it and moderators find it in their queue;
- `reject`: refused in the composer with the reason, nothing stored.

Detection is deliberately plain: what a person types to share a number or a handle, not every
obfuscation. Prices ("₹90,000"), dates ("14/12/2026") and guest counts are too short to be
phone numbers, which need 10 to 13 digits.
"""
import re

PHONE, EMAIL, MESSENGER, PAYMENT = "phone", "email", "messenger", "payment"
KINDS = (PHONE, EMAIL, MESSENGER, PAYMENT)
WARN, REJECT = "warn", "reject"
POLICIES = (WARN, REJECT)

LABELS = {PHONE: "a phone number", EMAIL: "an e-mail address", MESSENGER: "an outside messaging app",
          PAYMENT: "a payment app or handle"}

# 10-13 digits, optionally after "+", with spaces, dots, dashes or brackets between them:
# +91 98765 43210, 098765-43210, (022) 2345 6789. Not inside a word or a link's path.
_PHONE = re.compile(r"(?<![\w+/=])\+?\(?\d(?:[ .()-]{0,2}\d){9,12}(?!\w)")
# An address with a dotted domain is e-mail; "name@okaxis" (no dot) is a UPI id, below.
_EMAIL = re.compile(r"(?i)(?<![\w.+-])[\w.+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")
_UPI_ID = re.compile(r"(?i)(?<![\w.-])[\w.-]{2,}@[a-z]{2,}(?![\w.@-])")
# Messaging apps and payment apps people move a deal to.
_MESSENGER_WORDS = re.compile(r"(?i)\b(?:whats\s*app|wa\.me|telegram|t\.me|signal\s+me)\b")
_PAYMENT_WORDS = re.compile(
    r"(?i)\b(?:upi(?:\s*id)?|gpay|google\s*pay|phone\s*pe|phonepe|paytm|bhim|paypal(?:\.me)?|venmo|cash\s*app)\b"
)


def find_contact_details(text):
    """The kinds of contact details in `text`, in KINDS order (empty: none)."""
    text = text or ""
    found = set()
    if _PHONE.search(text):
        found.add(PHONE)
    if _EMAIL.search(text):
        found.add(EMAIL)
    if _MESSENGER_WORDS.search(text):
        found.add(MESSENGER)
    if _UPI_ID.search(_EMAIL.sub(" ", text)) or _PAYMENT_WORDS.search(text):
        found.add(PAYMENT)
    return tuple(kind for kind in KINDS if kind in found)


def as_flags(kinds):
    """The `Message.contact_flags` value: "phone,payment", or None when there is nothing."""
    return ",".join(kinds) or None


def flag_kinds(flags):
    return tuple(kind for kind in (flags or "").split(",") if kind in KINDS)


def describe(kinds):
    """"a phone number and a payment handle"."""
    labels = [LABELS[kind] for kind in kinds] or ["contact details"]
    return labels[0] if len(labels) == 1 else ", ".join(labels[:-1]) + " and " + labels[-1]


def refusal(kinds):
    return (f"This message contains {describe(kinds)}. To keep you safe, RentPe doesn't allow sharing "
            "contact or payment details in chat: please remove them and keep the booking here.")
