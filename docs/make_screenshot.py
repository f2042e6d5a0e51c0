"""Rebuild docs/search-page.png: a demo gallery of public-domain photos, one search, a screenshot.

Run from the project root with the project's venv:  .venv/bin/python docs/make_screenshot.py
Needs Debian's chromium (apt-get install chromium). Uses only scikit-image's sample photos
(no research data), the default embedder and the real SSDLite person detector (pedestrian-adas,
made for walking people seen from afar, boxes parts of a person in these close-up photographs).
"""

from __future__ import annotations

import io
import re
import subprocess
import tempfile
import threading
from pathlib import Path

import cv2
import numpy as np
import waitress
from skimage import data as samples

from gallery.db import sqlite_url
from gallery.schema import upgrade
from web import create_app

PORT = 5099
OUT = Path(__file__).resolve().parent / "search-page.png"


def jpeg(bgr: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", bgr)[1].tobytes()


def main() -> None:
    astronaut = cv2.cvtColor(samples.astronaut(), cv2.COLOR_RGB2BGR)
    cameraman = cv2.cvtColor(samples.camera(), cv2.COLOR_GRAY2BGR)
    still = np.concatenate([cameraman, astronaut], axis=1)           # one frame, two persons
    enrolled = {
        "Eileen Collins": [astronaut[20:512, 60:470], cv2.flip(astronaut[0:500, 40:480], 1)],
        "Photographer": [cameraman[30:480, 100:400]],
    }
    with tempfile.TemporaryDirectory() as tmp:
        upgrade(sqlite_url(Path(tmp) / "reid.db"))
        app = create_app({"DATA_DIR": tmp, "DETECTOR": "ssdlite"})
        client = app.test_client()
        for name, crops in enrolled.items():
            files = [(io.BytesIO(jpeg(c)), f"{i}.jpg") for i, c in enumerate(crops)]
            assert client.post("/api/persons", data={"name": name, "images": files}).status_code == 201
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/").get_data(as_text=True))[1]
        html = client.post("/search", data={"image": (io.BytesIO(jpeg(still)), "cctv.jpg"),
                                            "top_k": "3", "csrf_token": token}).get_data(as_text=True)
        server = threading.Thread(target=waitress.serve, args=(app,),
                                  kwargs={"host": "127.0.0.1", "port": PORT}, daemon=True)
        server.start()
        page = Path(tmp) / "page.html"
        page.write_text(html.replace("<head>", f'<head><base href="http://127.0.0.1:{PORT}/">', 1))
        subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                        "--disable-background-networking", "--disable-component-update", "--disable-sync",
                        f"--user-data-dir={tmp}/chrome", "--hide-scrollbars", "--window-size=1280,900",
                        f"--screenshot={OUT}", f"file://{page}"], check=True, capture_output=True,
                       timeout=120)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
