"""Photos, edits, deletions and reactions in two real browsers (a buyer and the seller, two Chromium
contexts): each change made in one shows live in the other, and what the pages show comes from the
same fragments every recipient gets."""
import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.e2e.test_chat import mine, new_buyer_asks_the_seller, seller_page, theirs, wait_for_stream  # noqa: F401
from tests.e2e.browser import screenshot

pytestmark = pytest.mark.e2e


def stage_photo():
    """A small 'photo' of a stage: a gradient with a bright band, as a JPEG."""
    image = Image.new("RGB", (640, 420), (60, 40, 90))
    for y in range(420):
        for x in range(0, 640, 8):
            image.putpixel((x, y), (60 + y // 4, 40 + x // 8, 90))
    for x in range(80, 560):
        for y in range(250, 300):
            image.putpixel((x, y), (240, 200, 120))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=85)
    return out.getvalue()


def test_photo_edit_reaction_and_delete_live_in_two_browsers(new_context, seller_page):  # noqa: F811
    buyer, cid = new_buyer_asks_the_seller(new_context, "Tara Menon", "Hello! Can you do this mandap?")
    seller_page.goto(f"/conversations/{cid}")
    wait_for_stream(seller_page)
    wait_for_stream(buyer)

    # A photo with a message, chosen in the composer: a preview before sending, a thumbnail after.
    composer = buyer.locator(f"#conv-{cid}-composer")
    composer.locator("input[type=file]").set_input_files(
        files=[{"name": "mandap.jpg", "mimeType": "image/jpeg", "buffer": stage_photo()}])
    expect(composer.locator("[data-photo-previews] img")).to_have_count(1)
    composer.locator("textarea").fill("Like this one, with marigolds")
    composer.get_by_role("button", name="Send").click()
    sent = mine(buyer, cid).last
    expect(sent).to_contain_text("Like this one, with marigolds")
    expect(sent.locator(".msg-photos img")).to_have_count(1)
    arrived = theirs(seller_page, cid).last
    photo = arrived.locator(".msg-photos img")
    expect(photo).to_have_count(1)
    expect(photo).to_have_js_property("complete", True)
    assert photo.evaluate("img => img.naturalWidth") > 0, "the thumbnail loaded for the other participant"
    message_id = int(re.search(r"\d+", arrived.get_attribute("id")).group())
    screenshot(seller_page, "message-photo")

    # The buyer fixes a word; the seller's open page shows the new text and "edited".
    sent.get_by_role("link", name="Edit").click()
    expect(buyer).to_have_url(re.compile(rf"/messages/{message_id}/edit$"))
    buyer.get_by_label("Message").fill("Like this one, with jasmine")
    buyer.get_by_role("button", name="Save").click()
    expect(buyer).to_have_url(re.compile(rf"/conversations/{cid}"))
    wait_for_stream(buyer)
    edited = seller_page.locator(f"#msg-{message_id}")
    expect(edited).to_contain_text("with jasmine")
    expect(edited.locator(".msg-edited")).to_have_text("edited")
    expect(edited).not_to_contain_text("marigolds")

    # The seller reacts (a plain form POST); the buyer sees it live, and who reacted on focus.
    edited.locator(".reaction-picker summary").click()
    edited.get_by_role("button", name="React with 🙏").click()
    expect(seller_page).to_have_url(re.compile(rf"/conversations/{cid}"))
    wait_for_stream(seller_page)
    reactions = buyer.locator(f"#msg-{message_id}-reactions")
    expect(reactions.locator(".reaction")).to_have_text(re.compile(r"🙏\s*1"))
    expect(reactions.locator(".reaction")).to_have_attribute("title", re.compile("Kumar|Ravi|Seller|\\w+"))
    expect(buyer.locator("#unread-badge")).to_have_text("")  # a reaction is not a message
    screenshot(buyer, "message-edited-reacted")

    # The buyer deletes it: both sides see "Message deleted", and the photo is gone for the seller.
    buyer.locator(f"#msg-{message_id}").get_by_role("link", name="Delete").click()
    buyer.get_by_role("button", name="Delete").click()
    expect(buyer).to_have_url(re.compile(rf"/conversations/{cid}"))
    gone = seller_page.locator(f"#msg-{message_id}")
    expect(gone).to_contain_text("Message deleted")
    expect(gone.locator("img")).to_have_count(0)
    expect(gone).not_to_contain_text("jasmine")
    expect(buyer.locator(f"#msg-{message_id}")).to_contain_text("Message deleted")
    screenshot(seller_page, "message-deleted")
