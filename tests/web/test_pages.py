"""The HTML pages, through the Flask test client."""

from __future__ import annotations

import io
import re

from flask.testing import FlaskClient

from tests.conftest import form_token, jpeg_bytes, person_image


def enroll_form(client: FlaskClient, name: str, person: int):
    images = [(io.BytesIO(jpeg_bytes(person_image(person, v))), f"{v}.jpg") for v in range(2)]
    return client.post("/persons", data={
        "csrf_token": form_token(client), "name": name, "notes": "", "images": images}, follow_redirects=True)


def test_enroll_form_then_person_page(client: FlaskClient) -> None:
    page = enroll_form(client, "Dana <script>", 4)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Enrolled Dana &lt;script&gt; with 2 image(s) as person" in html
    assert "0.jpg: the whole image; 1.jpg: the whole image." in html  # no detector: taken whole
    assert "<script>" not in html
    assert len(re.findall(r'src="/images/\d+/thumb"', html)) == 2
    listing = client.get("/persons").get_data(as_text=True)
    assert "Dana &lt;script&gt;" in listing and "<td>2</td>" in listing


def test_search_page_shows_ranked_thumbnails_and_decisions(client: FlaskClient) -> None:
    enroll_form(client, "Eve", 1)
    enroll_form(client, "Finn", 2)
    assert 'name="threshold" value="0.800"' in client.get("/").get_data(as_text=True)
    html = client.post("/search", data={"image": (io.BytesIO(jpeg_bytes(person_image(1, 8))), "still.jpg"),
                                        "csrf_token": form_token(client),
                                        "top_k": "2"}).get_data(as_text=True)
    assert "data:image/jpeg;base64," in html
    assert html.index("Eve") < html.index("Finn")
    assert html.count(">MATCH<") == 1 and html.count(">NO MATCH<") == 1
    assert "Whole image" in html and "0 persons detected" in html
    assert "Nobody was detected in this still" in html  # not confident-looking scores alone
    for person in client.get("/api/persons").json["persons"]:
        assert f'{person["name"]}</a> <span class="muted">#{person["id"]}</span>' in html


def test_enrolling_a_name_that_exists_warns(client: FlaskClient) -> None:
    first = enroll_form(client, "Hana", 1).get_data(as_text=True)
    assert "Another person is already named" not in first
    page = enroll_form(client, "hana ", 2).get_data(as_text=True)
    ids = [p["id"] for p in client.get("/api/persons").json["persons"]]
    assert f"Another person is already named hana: person {min(ids)}." in page


def test_delete_buttons(client: FlaskClient) -> None:
    enroll_form(client, "Gil", 1)
    person = client.get("/api/persons").json["persons"][0]
    image_id = client.get(f"/api/persons/{person['id']}").json["person"]["images"][0]["id"]
    token = {"csrf_token": form_token(client)}
    page = client.post(f"/images/{image_id}/delete", data=token, follow_redirects=True)
    assert f"Deleted image {image_id}." in page.get_data(as_text=True)
    page = client.post(f"/persons/{person['id']}/delete", data=token, follow_redirects=True)
    assert "Nobody is enrolled yet." in page.get_data(as_text=True)


def test_page_errors_are_readable_pages(client: FlaskClient) -> None:
    missing = client.get("/persons/999")
    assert missing.status_code == 404 and "no person has id 999" in missing.get_data(as_text=True)
    bad = client.post("/persons", data={"csrf_token": form_token(client), "name": "",
                                        "images": [(io.BytesIO(b"x"), "x.jpg")]})
    assert bad.status_code == 400 and "text/html" in bad.content_type
    assert "a name is required" in bad.get_data(as_text=True)
