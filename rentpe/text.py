"""Rules for the plain text people type and the app stores (chat messages, moderators' notes)."""
import re

# C0 controls other than tab and newline, DEL, and NUL (PostgreSQL text can't hold NUL): what a
# stored text drops.
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
