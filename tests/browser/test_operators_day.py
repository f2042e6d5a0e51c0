"""The operator's day in a real browser: enroll, search by a two-person still, reopen and re-rank the
result, review a sighting on its frame page, filter and delete persons; every page checked by axe-core."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import pytest

from tests.browser.conftest import AXE, SCREENSHOTS
from tests.browser.site import Site, astronaut, cameraman, two_person_still

SERIOUS = ("serious", "critical")


def axe_findings(page: Any) -> list[str]:
    """Run axe-core on the page; return its serious and critical findings, one line each."""
    page.evaluate(AXE.read_text())  # evaluated by the browser's devtools: the pages' CSP allows no inline script
    result = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in SERIOUS]


def check(page: Any, screenshot: str | None = None) -> None:
    """Assert the page has no serious accessibility findings; save a screenshot if asked to."""
    assert axe_findings(page) == [], page.url
    if screenshot and SCREENSHOTS:
        page.screenshot(path=str(Path(SCREENSHOTS) / screenshot), full_page=True)


def image_file(folder: Path, name: str, image: Any) -> str:
    path = folder / name
    cv2.imwrite(str(path), image)
    return str(path)


@pytest.fixture
def page(browser: Any, site: Site) -> Any:
    context = browser.new_context(base_url=site.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    page.on("dialog", lambda dialog: dialog.accept())
    yield page
    context.close()


def persons(page: Any) -> list[dict]:
    return page.request.get("/api/persons").json()["persons"]


@pytest.mark.slow  # a real server with the shipped models, driven in Chromium
def test_operators_day(page: Any, tmp_path: Path) -> None:
    page.goto("/persons")
    check(page)
    page.get_by_label("Name", exact=True).fill("Eileen Collins")
    page.get_by_label("Images (one person in each)").set_input_files(
        [image_file(tmp_path, "eileen.jpg", astronaut()[20:512, 60:470]),
         image_file(tmp_path, "eileen-2.jpg", cv2.flip(astronaut()[0:500, 40:480], 1))])
    page.get_by_role("button", name="Enroll").dblclick()  # a double click sends the form once
    page.wait_for_url(re.compile(r"/persons/\d+$"))
    assert page.get_by_text("Enrolled Eileen Collins with 2 image(s)").is_visible()
    assert [p["name"] for p in persons(page)] == ["Eileen Collins"]
    check(page)

    page.goto("/persons")
    page.get_by_label("Name", exact=True).fill("Photographer")
    page.get_by_label("Images (one person in each)").set_input_files(
        [image_file(tmp_path, "photographer.jpg", cameraman()[30:480, 100:400])])
    page.get_by_role("button", name="Enroll").click()
    page.wait_for_url(re.compile(r"/persons/\d+$"))

    page.goto("/")
    check(page)
    page.get_by_label("CCTV still or person crop").set_input_files(image_file(tmp_path, "cctv.jpg", two_person_still()))
    page.get_by_label("Top matches").fill("3")
    page.get_by_role("button", name="Search").click()
    page.wait_for_url(re.compile(r"/searches/\d+\?top_k=3&threshold="))
    search_url = page.url.split("?")[0]
    assert page.get_by_text("2 persons detected").is_visible()
    assert page.get_by_role("heading", name="Person 1").is_visible()
    assert page.get_by_role("heading", name="Person 2").is_visible()
    assert page.locator("li.match").count() == 2
    check(page, "search-page.png")

    page.goto(search_url)  # reopened from the address bar: ranked again, no upload
    assert page.locator("li.match").count() == 2
    page.get_by_label("Match threshold").fill("0.999")
    page.get_by_role("button", name="Rank again").click()
    page.wait_for_url(re.compile(r"threshold=0\.999"))
    assert page.locator("li.match").count() == 0 and page.locator("li.nomatch").count() >= 2
    full = page.request.get(page.locator(".still img").get_attribute("src"))
    assert full.ok and full.headers["content-type"] == "image/jpeg"

    page.goto(search_url)
    page.locator("ol.sightings a").first.click()  # the frame view of a sighting of the matched person
    page.wait_for_url(re.compile(r"/sightings/\d+\?person=\d+"))
    assert page.get_by_text("lobby_2026-11-27_21-00-00.avi").is_visible()
    assert page.get_by_text("2026-11-27 21:00:0").first.is_visible()
    clip = page.request.get(page.locator("video.clip").get_attribute("src"))
    assert clip.ok and clip.headers["content-type"] == "video/webm"
    check(page, "sighting-page.png")
    page.get_by_role("button", name=re.compile("^Confirm sighting")).click()
    page.wait_for_url(re.compile(r"/sightings/\d+\?person=\d+"))
    assert page.get_by_text(re.compile(r"Sighting \d+ confirmed as person")).is_visible()
    page.get_by_role("link", name=re.compile("Back to")).click()
    assert page.locator("tr.confirmed").count() == 1
    check(page, "person-page.png")
    page.get_by_role("button", name=re.compile("^Not this person")).click()
    page.wait_for_url(re.compile(r"/persons/\d+$"))
    assert page.get_by_text("No indexed footage matches this person").is_visible()

    page.goto("/persons")
    page.get_by_label("Name contains").fill("photo")
    page.get_by_role("button", name="Filter").click()
    assert page.locator("tbody tr").count() == 1
    check(page, "persons-page.png")
    page.get_by_role("link", name="Photographer").click()
    page.get_by_role("button", name="Delete Photographer").click()
    page.wait_for_url(re.compile(r"/persons$"))
    assert page.get_by_text(re.compile(r"Erased person \d+")).is_visible()
    assert [p["name"] for p in persons(page)] == ["Eileen Collins"]

    page.goto("/persons/999999")
    assert page.get_by_role("heading", name="Not found").is_visible()
    check(page)
