"""Headless Chromium for the widget tests: Debian's chromium and chromedriver, a fake
microphone that plays a WAV of caller speech (Piper voice, silence between utterances), and
helpers that read the widget's shadow DOM."""

from __future__ import annotations

import time
from functools import cache
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
MIC_RATE = 48000
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"


@cache
def _piper():
    from calls.speech.tts import PiperEngine

    # Deterministic, so the fake microphone plays the same audio on every run.
    return PiperEngine("joe", noise_scale=0.0, noise_w_scale=0.0)


def speech_seconds(text: str) -> float:
    speech = _piper().synthesize(text, sample_rate=16000)
    return len(speech.audio) / 2 / 16000


def caller_wav(path: Path, script: list[float | str]) -> Path:
    """A mono 48 kHz WAV: numbers are seconds of silence, strings are spoken by Piper."""
    from calls.speech.audio import write_wav

    pcm = bytearray()
    for part in script:
        if isinstance(part, str):
            pcm += _piper().synthesize(part, sample_rate=MIC_RATE).audio
        else:
            pcm += bytes(2 * int(part * MIC_RATE))
    return write_wav(path, bytes(pcm), MIC_RATE)


def chromium(*, microphone: Path | None = None, deny_microphone: bool = False, no_microphone: bool = False) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
        "--disable-component-update", "--no-first-run", "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.add_argument("--use-fake-device-for-media-stream")
    if deny_microphone:
        options.add_experimental_option("prefs", {"profile.default_content_setting_values.media_stream_mic": 2})
    else:
        options.add_argument("--use-fake-ui-for-media-stream")
    if microphone is not None:
        # %noloop: play the file once, then silence (by default Chromium loops it).
        options.add_argument(f"--use-file-for-fake-audio-capture={microphone}%noloop")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit driver path: Selenium Manager never runs (it would try to download drivers).
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    if no_microphone:
        # What a browser on a machine without any audio input answers (the real thing depends on
        # the machine the tests run on, so it is reproduced here).
        driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": """
            navigator.mediaDevices.getUserMedia = () =>
                Promise.reject(new DOMException('Requested device not found', 'NotFoundError'));
        """})
    return driver


WIDGET_JS = """
const widget = (window.VoiceCRM && window.VoiceCRM.widgets[0]) || null;
if (!widget) return null;
const root = widget.host.shadowRoot;
return {
  state: widget.state,
  callId: widget.callId,
  status: root.querySelector('.status').textContent,
  alert: root.querySelector('.alert').hidden ? '' : root.querySelector('.alert').textContent,
  captions: Array.from(root.querySelectorAll('.captions li')).map(li => ({
    speaker: li.dataset.speaker, text: li.textContent, final: li.dataset.final === 'true'})),
  stats: widget.stats,
  contextRate: widget.ctx ? widget.ctx.sampleRate : null,
};
"""


def widget(driver) -> dict | None:
    return driver.execute_script(WIDGET_JS)


def shadow(driver, selector: str):
    host = driver.find_element("css selector", ".voicecrm-widget")
    return host.shadow_root.find_element("css selector", selector)


def wait_for(driver, predicate, *, timeout: float, what: str, interval: float = 0.1):
    """Poll the widget until predicate(state) is truthy; fail with the last state seen."""
    deadline = time.monotonic() + timeout
    state = None
    while time.monotonic() < deadline:
        state = widget(driver)
        if state is not None:
            result = predicate(state)
            if result:
                return result
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; widget: {state}\n"
                         f"console: {console(driver)}")


def console(driver) -> list[str]:
    try:
        return [entry["message"] for entry in driver.get_log("browser")][-20:]
    except Exception:  # noqa: BLE001
        return []


def captions(state: dict, speaker: str) -> list[str]:
    return [c["text"] for c in state["captions"] if c["speaker"] == speaker and c["final"]]


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path
