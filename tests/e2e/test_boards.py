"""Event boards in real browsers: the seen-by line on every member's page, live, and a removed
message (whose notice the accessibility check reads too)."""
import re
import secrets
from datetime import date, timedelta

import pytest
from playwright.sync_api import expect

from tests.e2e.test_chat import wait_for_stream

pytestmark = pytest.mark.e2e


def sign_up(context, name):
    """A fresh account in its own browser context: (page, e-mail)."""
    page = context.new_page()
    email = f"{name.split()[0].lower()}-{secrets.token_hex(4)}@example.test"
    page.goto("/signup")
    page.get_by_label("Your name").fill(name)
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password", exact=True).fill("long-enough-pw")
    page.get_by_label("Repeat password").fill("long-enough-pw")
    page.get_by_role("button", name="Sign up").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    return page, email


def create_board(page, title):
    page.goto("/boards/new")
    page.get_by_label("Board name").fill(title)
    page.get_by_label("Event date").fill((date.today() + timedelta(days=30)).isoformat())
    page.get_by_label("City").fill("Jaipur")
    page.get_by_role("button", name="Create board").click()
    expect(page).to_have_url(re.compile(r"/boards/\d+$"))
    return int(re.search(r"/boards/(\d+)$", page.url).group(1))


def invite(page, board_id, email, invitee):
    """The owner invites a co-organiser by e-mail, who joins from their invitations (and leaves
    the board's page, which would read what comes next)."""
    page.goto(f"/boards/{board_id}/manage")
    page.get_by_label("Co-organiser's e-mail").fill(email)
    page.get_by_role("button", name="Add or invite").click()
    expect(page).to_have_url(re.compile(rf"/boards/{board_id}/manage$"))
    invitee.goto("/boards/invitations")
    invitee.get_by_role("button", name="Join the board").click()
    expect(invitee).to_have_url(re.compile(rf"/boards/{board_id}$"))
    invitee.goto("/")


def seen_by(page, board_id):
    return page.locator(f"#conv-{board_id}-receipt")


def test_seen_by_is_right_on_every_members_page_live(new_context, guard):
    guard.allow_stream_cuts()
    owner, _ = sign_up(new_context(), "Anika Das")
    reader, reader_email = sign_up(new_context(), "Rohan Das")
    latecomer, latecomer_email = sign_up(new_context(), "Leela Menon")
    board_id = create_board(owner, "Anika's engagement")
    invite(owner, board_id, reader_email, reader)
    invite(owner, board_id, latecomer_email, latecomer)

    for page in (owner, reader):
        page.goto(f"/boards/{board_id}")
        wait_for_stream(page)
    owner.get_by_role("textbox", name="Message").fill("Venue visit on Saturday at 11?")
    owner.get_by_role("textbox", name="Message").press("Enter")

    # The reader's open page reads it at once: every open page, the reader's own included, says so.
    for page in (owner, reader):
        expect(seen_by(page, board_id).locator("summary")).to_have_text("Seen by 1 of 2")
        expect(seen_by(page, board_id)).to_contain_text("Seen: Rohan Das", use_inner_text=False)
        expect(seen_by(page, board_id)).to_contain_text("Not yet: Leela Menon", use_inner_text=False)

    # The latecomer opens the board: the pages already open follow, live.
    latecomer.goto(f"/boards/{board_id}")
    for page in (owner, reader, latecomer):
        expect(seen_by(page, board_id).locator("summary")).to_have_text("Seen by 2 of 2")
        expect(seen_by(page, board_id)).not_to_contain_text("Not yet", use_inner_text=False)

    # A message the owner removes: the notice takes its place on every page.
    wait_for_stream(latecomer)
    latecomer.get_by_role("textbox", name="Message").fill("Call me on 98765 43210")
    latecomer.get_by_role("textbox", name="Message").press("Enter")
    message = owner.locator(f"#conv-{board_id}-messages .msg").last
    expect(message).to_contain_text("Call me on")
    message.get_by_role("link", name="Remove").click()
    owner.get_by_role("button", name="Remove message").click()
    for page in (owner, reader, latecomer):
        expect(page.locator(f"#conv-{board_id}-messages .msg.removed")).to_contain_text(
            "This message was removed by the board owner")
