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
    posted = client.post("/search", data={"image": (io.BytesIO(jpeg_bytes(person_image(1, 8))), "still.jpg"),
                                          "csrf_token": form_token(client), "top_k": "2"})
    assert posted.status_code == 303
    search_url = posted.headers["Location"]
    assert re.fullmatch(r"/searches/\d+\?top_k=2&threshold=0\.8", search_url)
    html = client.get(search_url).get_data(as_text=True)
    still_url = search_url.split("?")[0] + "/still"
    assert f'src="{still_url}"' in html and "data:image" not in html  # served by URL, not inlined
    assert client.get(still_url).data.startswith(b"\xff\xd8")
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


def test_a_search_is_reopened_and_ranked_again_without_the_upload(client: FlaskClient) -> None:
    enroll_form(client, "Eve", 1)
    enroll_form(client, "Finn", 2)
    search_url = client.post("/search", data={"image": (io.BytesIO(jpeg_bytes(person_image(1, 8))), "still.jpg"),
                                              "csrf_token": form_token(client)}).headers["Location"]
    search_path = search_url.split("?")[0]
    first = client.get(search_path).get_data(as_text=True)  # reopened: the settings' defaults
    assert first.count('<li class="match">') == 1 and 'name="threshold" value="0.800"' in first
    strict = client.get(f"{search_path}?threshold=0.9999&top_k=1").get_data(as_text=True)
    assert '<li class="match">' not in strict and strict.count('<li class="nomatch">') == 1
    assert 'name="threshold" value="0.9999"' in strict or 'value="1.000"' in strict
    bad = client.get(f"{search_path}?threshold=2")
    assert bad.status_code == 400 and "between -1 and 1" in bad.get_data(as_text=True)
    assert client.get("/searches/999").status_code == 404
    assert client.get("/search").headers["Location"] == "/"  # Enter in the address bar after a search


def test_enroll_form_sent_twice_enrolls_once(client: FlaskClient) -> None:
    page = client.get("/persons").get_data(as_text=True)
    key = re.search(r'name="idempotency_key" value="([^"]+)"', page)[1]
    assert key != re.search(r'name="idempotency_key" value="([^"]+)"', client.get("/persons").get_data(as_text=True))[1]

    def send():
        images = [(io.BytesIO(jpeg_bytes(person_image(3, v))), f"{v}.jpg") for v in range(2)]
        return client.post("/persons", data={"csrf_token": form_token(client), "name": "Ines", "images": images,
                                             "idempotency_key": key}, follow_redirects=True)

    first, again = send().get_data(as_text=True), send().get_data(as_text=True)
    (person,) = client.get("/api/persons").json["persons"]
    assert "Enrolled Ines with 2 image(s)" in first and person["image_count"] == 2
    assert f"This form was sent before: it enrolled person {person['id']} then" in again


def test_persons_list_has_thumbnails_and_a_name_filter(client: FlaskClient) -> None:
    enroll_form(client, "Olga 100%", 1)
    enroll_form(client, "Pavel", 2)
    listing = client.get("/persons").get_data(as_text=True)
    assert len(re.findall(r'<img class="thumb" src="/images/\d+/thumb" alt="(Olga 100%|Pavel)"', listing)) == 2
    filtered = client.get("/persons?q=olga 100").get_data(as_text=True)
    assert ">Olga 100%</a>" in filtered and ">Pavel</a>" not in filtered
    assert "Nobody's name contains “%”." not in client.get("/persons?q=%25").get_data(as_text=True)
    assert "Nobody's name contains “_”." in client.get("/persons?q=_").get_data(as_text=True)
    assert [p["name"] for p in client.get("/api/persons?q=PAV").json["persons"]] == ["Pavel"]
