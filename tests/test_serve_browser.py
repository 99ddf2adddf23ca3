"""The page of `seq2seq serve` in a real headless browser (Debian's chromium + chromium-driver via selenium).

The test types a sentence, asks for the n-best list, uploads a Flickr8k image, checks what the page shows against
the SavedModels' own answers, and saves a screenshot as tmp_path/serve_page.png (a CI artifact-style file). It
skips only when chromium or its driver is not installed (`.ci/run` installs them) or the Flickr8k images are absent.
"""

import glob
import os
import shutil

import pytest
import tensorflow as tf
from test_serve_api import FLICKR_IMAGES, alone

from seq2seq.server.process import ServerProcess

CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1100,1400",
]
SENTENCE = "el gato come pan ."


@pytest.fixture()
def browser(tmp_path):
    webdriver = pytest.importorskip(
        "selenium.webdriver", reason="selenium not installed (pip install -r requirements.txt)"
    )
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        pytest.skip(
            "Debian's chromium and chromium-driver are not installed (apt-get install -y chromium "
            "chromium-driver; .ci/run does it)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROME_FLAGS + [f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    session = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=driver))
    session.set_script_timeout(120)
    yield session
    session.quit()


def test_page_translates_and_captions_with_attention(browser, translation_export, captioning_export, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    images = sorted(glob.glob(os.path.join(FLICKR_IMAGES, "*.jpg")))
    if not images:
        pytest.skip(f"no Flickr8k images in {FLICKR_IMAGES}")
    image = images[0]
    translation = alone(tf.saved_model.load(translation_export), "translate_with_attention", "text", SENTENCE)
    nbest = alone(tf.saved_model.load(translation_export), "translate_nbest", "text", SENTENCE)
    caption = alone(
        tf.saved_model.load(captioning_export), "caption_with_attention", "image_bytes", open(image, "rb").read()
    )

    with ServerProcess(
        [f"spa_en={translation_export}", f"flickr={captioning_export}"], log_path=str(tmp_path / "server.log")
    ) as server:
        browser.get(server.url + "/")
        wait = WebDriverWait(browser, 120)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Serving"))
        assert browser.find_element(By.ID, "status").text == "Serving flickr (captioning), spa_en (translation)."

        browser.find_element(By.ID, "source").send_keys(SENTENCE)
        browser.find_element(By.ID, "nbest").click()
        browser.find_element(By.ID, "translate-button").click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "Translated 1 sentence(s)."))
        assert browser.find_element(By.CSS_SELECTOR, "#translations .translation").text == translation["translation"]
        items = [li.text for li in browser.find_elements(By.CSS_SELECTOR, "#translations .nbest li")]
        assert items == [f"{t} ({s:.3f})" for t, s in zip(nbest["translations"], nbest["scores"])]
        rows = browser.find_elements(By.CSS_SELECTOR, "#translations table.attention tbody tr")
        source = [p for p in translation["source_pieces"] if p != "<pad>"]
        target = translation["target_pieces"][: translation["target_pieces"].index("</s>") + 1]
        assert [r.find_element(By.TAG_NAME, "th").text for r in rows] == target
        assert all(len(r.find_elements(By.TAG_NAME, "td")) == len(source) for r in rows)

        browser.find_element(By.ID, "image-file").send_keys(image)
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), f"Captioned {os.path.basename(image)}."))
        assert browser.find_element(By.ID, "caption").text == caption["caption"]
        canvases = browser.find_elements(By.CSS_SELECTOR, "#caption-attention canvas.word-attention")
        assert [c.get_attribute("data-word") for c in canvases] == caption["target_pieces"][: caption["lengths"]]
        # the overlay darkens the image unevenly: its pixels are not all one colour
        distinct = browser.execute_script(
            "const c = arguments[0], d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
            "const s = new Set(); for (let i = 0; i < d.length; i += 4) s.add(d[i] + ',' + d[i+1] + ',' + d[i+2]);"
            "return s.size;",
            canvases[0],
        )
        assert distinct > 100
        screenshot = tmp_path / "serve_page.png"
        assert browser.save_screenshot(str(screenshot)) and screenshot.stat().st_size > 10_000
        if os.environ.get("SEQ2SEQ_SCREENSHOT"):  # e.g. docs/serve_page.png for the README
            shutil.copyfile(screenshot, os.environ["SEQ2SEQ_SCREENSHOT"])
