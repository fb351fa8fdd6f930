/*
 * VoiceCRM browser voice widget. No build step, no dependencies.
 *
 *   <script src="https://crm.example/static/widget/voicecrm.js" data-key="WIDGET-KEY" async></script>
 *
 * Optional attributes: data-mode="continuous|ptt" (default continuous), data-label (button text),
 * data-title (panel title), data-server (VoiceCRM origin; defaults to the script's origin),
 * data-container (CSS selector: render inside that element instead of floating).
 *
 * The wire protocol is documented in docs/protocols.md ("Browser widget").
 * window.VoiceCRM.widgets lists the mounted widgets (state, stats and call id, for pages and tests).
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.dataset.key) {
    if (window.console) console.error("VoiceCRM widget: the <script> tag needs a data-key attribute.");
    return;
  }

  var ENGINE_RATE = 16000;
  var PLAYBACK_RATES = [8000, 16000, 22050, 24000, 32000, 44100, 48000];
  var SPEECH_DBFS = -45; // a 20 ms frame louder than this counts as the caller speaking
  var MAX_UNSENT_BYTES = 32000; // ~1 s of audio stuck in the socket: drop frames instead of queueing
  var scriptUrl = new URL(script.src, document.baseURI);

  var config = {
    key: script.dataset.key,
    server: (script.dataset.server || scriptUrl.origin).replace(/\/+$/, ""),
    mode: script.dataset.mode === "ptt" ? "ptt" : "continuous",
    label: script.dataset.label || "Talk to us",
    title: script.dataset.title || "Voice assistant",
    container: script.dataset.container || "",
    assets: new URL(".", scriptUrl).href,
  };

  var CLOSE_MESSAGES = {
    1006: "The connection was lost.",
    1009: "The call was closed: the browser sent a message that was too large.",
    4400: "The call was closed: the browser sent something the server did not understand.",
    4403: "This website is not allowed to use this voice assistant.",
    4408: "The call was closed after a period of inactivity.",
    4429: "Too many calls from your network. Please wait a minute and try again.",
    4500: "The voice assistant is unavailable right now. Please try again later.",
    4503: "The voice assistant is busy right now. Please try again in a moment.",
  };

  var ENDED_MESSAGES = {
    transfer: "Call ended: the agent passed your request to our team.",
    silence_timeout: "Call ended: we could not hear you.",
    max_duration: "Call ended: the time limit was reached.",
    idle_timeout: "Call ended after a period of inactivity.",
  };

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (name === "text") node.textContent = attrs[name];
      else if (name === "hidden") node.hidden = !!attrs[name];
      else node.setAttribute(name, attrs[name]);
    });
    (children || []).forEach(function (child) { node.appendChild(child); });
    return node;
  }

  function micErrorMessage(error) {
    var name = error && error.name;
    if (name === "NotAllowedError" || name === "PermissionDeniedError" || name === "SecurityError") {
      return "Microphone access was denied. Allow the microphone for this site in your browser settings " +
        "and call again, or type your message below.";
    }
    if (name === "NotFoundError" || name === "DevicesNotFoundError" || name === "OverconstrainedError") {
      return "No microphone was found. Connect one and call again, or type your message below.";
    }
    if (name === "NotReadableError" || name === "TrackStartError" || name === "AbortError") {
      return "The microphone is in use by another application. Close it and call again, or type below.";
    }
    if (name === "NoSecureContext") {
      return "The microphone only works on secure (https) pages. You can type your message below.";
    }
    return "The microphone could not be started. You can type your message below.";
  }

  /** Linear resampler for agent audio when the context runs at a rate the server cannot send. */
  function Upsampler(from, to) {
    this.step = from / to;
    this.phase = 0;
    this.last = 0;
  }
  Upsampler.prototype.process = function (input) {
    var out = new Float32Array(Math.ceil((input.length - this.phase) / this.step) + 1);
    var n = 0;
    var t = this.phase;
    while (t < input.length) {
      var i = Math.floor(t);
      var frac = t - i;
      var a = i === 0 ? this.last : input[i - 1];
      out[n++] = a + (input[i] - a) * frac;
      t += this.step;
    }
    this.phase = t - input.length;
    this.last = input[input.length - 1] || 0;
    return out.subarray(0, n);
  };

  function Widget(options) {
    this.options = options;
    this.mode = options.mode;
    this.state = "idle"; // idle | starting | connecting | listening | thinking | speaking | ended | error
    this.callId = null;
    this.ctx = null;
    this.ws = null;
    this.muted = false;
    this.pressed = false;
    this.micStream = null;
    this.micError = null;
    this.agentTurn = null;
    this.speechEnd = null; // audio-clock time of the caller's last voiced frame
    this.pendingLatency = null; // speech end awaiting the agent's first audio
    this.ended = false;
    this.stats = this.freshStats();
    this.build();
  }

  Widget.prototype.freshStats = function () {
    return {
      framesSent: 0, framesDropped: 0, audioBytesIn: 0, playedMs: 0, playbackStarts: 0, clears: 0,
      latencies: [], closeCode: null, micError: null, sampleRate: null, captureRate: null,
    };
  };

  // ---- UI -------------------------------------------------------------------------------

  Widget.prototype.build = function () {
    var self = this;
    var inline = !!this.options.container;
    var parent = inline ? document.querySelector(this.options.container) : document.body;
    if (!parent) parent = document.body;
    this.host = el("div", { class: "voicecrm-widget", "data-state": "idle" });
    var root = this.host.attachShadow({ mode: "open" });
    root.appendChild(el("link", { rel: "stylesheet", href: this.options.assets + "voicecrm.css" }));

    this.launcher = el("button", { type: "button", class: "launcher", part: "launcher", "aria-expanded": "false" }, [
      el("span", { class: "icon", "aria-hidden": "true", text: "\u260e" }),
      el("span", { class: "label", text: this.options.label }),
    ]);
    this.status = el("p", { class: "status", role: "status", text: "Press Call to talk to us." });
    this.alert = el("p", { class: "alert", role: "alert", hidden: true });
    this.meterBar = el("span", { class: "meter-bar" });
    this.meter = el("div", { class: "meter", title: "Microphone level", "aria-hidden": "true" }, [this.meterBar]);
    this.captions = el("ol", { class: "captions", "aria-live": "polite", "aria-label": "Conversation" });
    this.callButton = el("button", { type: "button", class: "call", text: "Call" });
    this.talkButton = el("button", { type: "button", class: "talk", text: "Hold to talk", hidden: true,
      title: "Hold the button or the space bar while you speak" });
    this.muteButton = el("button", { type: "button", class: "mute", text: "Mute", "aria-pressed": "false", disabled: "" });
    this.keypadButton = el("button", { type: "button", class: "keypad-toggle", text: "Keypad", "aria-expanded": "false", disabled: "" });
    this.hangupButton = el("button", { type: "button", class: "hangup", text: "Hang up", disabled: "" });
    this.pttToggle = el("input", { type: "checkbox", class: "ptt-toggle" });
    this.pttToggle.checked = this.mode === "ptt";
    var modeLabel = el("label", { class: "mode" }, [this.pttToggle, document.createTextNode(" Push to talk")]);
    this.keypad = el("div", { class: "keypad", hidden: true, role: "group", "aria-label": "Keypad" });
    "123456789*0#".split("").forEach(function (digit) {
      var key = el("button", { type: "button", text: digit, "data-digit": digit });
      key.addEventListener("click", function () { self.sendDtmf(digit); });
      self.keypad.appendChild(key);
    });
    this.textInput = el("input", { type: "text", class: "text-input", placeholder: "Type a message",
      "aria-label": "Type a message", maxlength: "500", autocomplete: "off", disabled: "" });
    this.textForm = el("form", { class: "text" }, [this.textInput, el("button", { type: "submit", text: "Send" })]);
    this.closeButton = el("button", { type: "button", class: "close", "aria-label": "Close", text: "\u00d7" });
    this.panel = el("section", { class: "panel", part: "panel", hidden: !inline, "aria-label": this.options.title }, [
      el("header", {}, [el("h2", { text: this.options.title }), this.closeButton]),
      this.status, this.alert, this.meter, this.captions,
      el("div", { class: "controls" }, [this.callButton, this.talkButton, this.muteButton, this.keypadButton, this.hangupButton]),
      modeLabel, this.keypad, this.textForm,
    ]);
    if (inline) {
      this.host.classList.add("inline");
      this.launcher.hidden = true;
      this.closeButton.hidden = true;
    }
    root.appendChild(this.launcher);
    root.appendChild(this.panel);
    parent.appendChild(this.host);

    this.launcher.addEventListener("click", function () {
      self.open();
      if (self.state === "idle" || self.state === "ended" || self.state === "error") self.start();
    });
    this.closeButton.addEventListener("click", function () { self.hangup(); self.close(); });
    this.callButton.addEventListener("click", function () { self.start(); });
    this.hangupButton.addEventListener("click", function () { self.hangup(); });
    this.muteButton.addEventListener("click", function () { self.setMuted(!self.muted); });
    this.keypadButton.addEventListener("click", function () {
      self.keypad.hidden = !self.keypad.hidden;
      self.keypadButton.setAttribute("aria-expanded", String(!self.keypad.hidden));
    });
    this.pttToggle.addEventListener("change", function () { self.setMode(self.pttToggle.checked ? "ptt" : "continuous"); });
    this.textForm.addEventListener("submit", function (event) {
      event.preventDefault();
      self.sendText(self.textInput.value);
    });
    // Push-to-talk: hold the button (mouse or touch) or the space bar.
    this.talkButton.addEventListener("pointerdown", function (event) {
      event.preventDefault();
      if (self.talkButton.setPointerCapture) self.talkButton.setPointerCapture(event.pointerId);
      self.press();
    });
    ["pointerup", "pointercancel", "lostpointercapture"].forEach(function (type) {
      self.talkButton.addEventListener(type, function () { self.release(); });
    });
    this.talkButton.addEventListener("contextmenu", function (event) { event.preventDefault(); });
    document.addEventListener("keydown", function (event) { self.onKey(event, true); });
    document.addEventListener("keyup", function (event) { self.onKey(event, false); });
    window.addEventListener("pagehide", function () { self.hangup(); });
    // iOS Safari suspends the audio context when the page is hidden; resume it on the next touch.
    document.addEventListener("touchend", function () { self.resumeAudio(); }, { passive: true });
    document.addEventListener("click", function () { self.resumeAudio(); });
  };

  Widget.prototype.open = function () {
    this.panel.hidden = false;
    this.launcher.setAttribute("aria-expanded", "true");
  };

  Widget.prototype.close = function () {
    if (this.options.container) return;
    this.panel.hidden = true;
    this.launcher.setAttribute("aria-expanded", "false");
  };

  Widget.prototype.setState = function (state, text) {
    this.state = state;
    this.host.setAttribute("data-state", state);
    if (text) this.status.textContent = text;
    var inCall = ["starting", "connecting", "listening", "thinking", "speaking"].indexOf(state) >= 0;
    var live = inCall && state !== "starting" && state !== "connecting";
    this.callButton.hidden = inCall;
    this.callButton.textContent = this.callId ? "Call again" : "Call";
    this.hangupButton.disabled = !inCall;
    this.muteButton.disabled = !live || !this.micStream;
    this.keypadButton.disabled = !live;
    this.textInput.disabled = !live;
    this.pttToggle.disabled = inCall;
    this.talkButton.hidden = !(inCall && this.mode === "ptt");
    this.talkButton.disabled = !live || !this.micStream;
    this.launcher.classList.toggle("in-call", inCall);
  };

  Widget.prototype.showAlert = function (message) {
    this.alert.textContent = message || "";
    this.alert.hidden = !message;
  };

  Widget.prototype.setMode = function (mode) {
    if (this.ws) return; // the mode is fixed for the length of a call
    this.mode = mode === "ptt" ? "ptt" : "continuous";
    this.pttToggle.checked = this.mode === "ptt";
  };

  Widget.prototype.setMuted = function (muted) {
    this.muted = !!muted;
    this.muteButton.textContent = this.muted ? "Unmute" : "Mute";
    this.muteButton.setAttribute("aria-pressed", String(this.muted));
    this.host.classList.toggle("muted", this.muted);
  };

  Widget.prototype.addCaption = function (speaker, text, final, turn) {
    var last = this.captions.lastElementChild;
    var item;
    if (last && last.dataset.speaker === speaker && last.dataset.final === "false") {
      item = last; // a partial caption grows into its final form
    } else if (speaker === "agent" && turn != null && last && last.dataset.speaker === "agent" && last.dataset.turn === String(turn)) {
      item = last; // another sentence of the same agent turn
      text = item.textContent + " " + text;
    } else {
      item = el("li", { class: speaker });
      this.captions.appendChild(item);
    }
    item.dataset.speaker = speaker;
    item.dataset.final = String(final !== false);
    if (turn != null) item.dataset.turn = String(turn);
    item.textContent = text;
    this.captions.scrollTop = this.captions.scrollHeight;
    return item;
  };

  Widget.prototype.showLevel = function (rms) {
    this.level = rms;
    if (this.levelFrame) return;
    var self = this;
    this.levelFrame = window.requestAnimationFrame(function () {
      self.levelFrame = null;
      var db = 20 * Math.log10(self.level + 1e-9);
      self.meterBar.style.width = Math.max(0, Math.min(100, ((db + 60) / 60) * 100)).toFixed(0) + "%";
      self.meterBar.classList.toggle("gated", !self.isSendingMic());
    });
  };

  // ---- Call lifecycle ---------------------------------------------------------------------

  Widget.prototype.start = function () {
    if (this.ws || this.state === "starting") return;
    var self = this;
    this.showAlert("");
    this.captions.textContent = "";
    this.stats = this.freshStats();
    this.ended = false;
    this.callId = null;
    this.agentTurn = null;
    this.speechEnd = null;
    this.pendingLatency = null;
    this.reportedMs = 0;
    this.setMuted(false);
    this.setState("starting", "Starting\u2026");
    // Created and resumed inside the click handler: mobile Safari only allows audio started by a gesture.
    var AudioContextClass = window.AudioContext || window.webkitAudioContext;
    if (!AudioContextClass) return this.fail("This browser cannot make voice calls. Please use a current browser.");
    if (!this.ctx || this.ctx.state === "closed") {
      try {
        this.ctx = new AudioContextClass({ latencyHint: "interactive" });
      } catch (error) {
        return this.fail("Audio could not be started in this browser.");
      }
    }
    var resumed = this.ctx.resume();
    if (!this.ctx.audioWorklet) return this.fail("This browser is too old for voice calls. Please update it.");
    this.stats.sampleRate = this.ctx.sampleRate;
    var micPromise = this.openMicrophone();
    var modulePromise = this.workletLoaded || this.ctx.audioWorklet.addModule(this.options.assets + "voicecrm-worklet.js");
    this.workletLoaded = modulePromise;
    Promise.all([resumed, modulePromise, micPromise]).then(function () {
      self.setupAudio();
      self.connect();
    }).catch(function (error) {
      self.workletLoaded = null;
      self.fail("Audio could not be started: " + (error && error.message ? error.message : error));
    });
  };

  Widget.prototype.openMicrophone = function () {
    var self = this;
    this.micError = null;
    if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      this.micError = micErrorMessage({ name: window.isSecureContext ? "NotFoundError" : "NoSecureContext" });
      return Promise.resolve(null);
    }
    return navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
    }).then(function (stream) {
      self.micStream = stream;
      return stream;
    }).catch(function (error) {
      self.micStream = null;
      self.micError = micErrorMessage(error);
      self.stats.micError = (error && error.name) || "Error";
      return null;
    });
  };

  Widget.prototype.setupAudio = function () {
    var self = this;
    var ctx = this.ctx;
    this.capture = new AudioWorkletNode(ctx, "voicecrm-capture", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1] });
    if (this.micStream) {
      this.micSource = ctx.createMediaStreamSource(this.micStream);
      this.micSource.connect(this.capture);
    }
    // Connected so the audio thread runs it; it writes no sound.
    this.capture.connect(ctx.destination);
    this.capture.port.onmessage = function (event) { self.onFrame(event.data); };
    this.player = new AudioWorkletNode(ctx, "voicecrm-player", { numberOfInputs: 0, numberOfOutputs: 1, outputChannelCount: [1] });
    this.player.connect(ctx.destination);
    this.player.port.onmessage = function (event) { self.onPlayer(event.data); };
    this.playbackRate = PLAYBACK_RATES.indexOf(ctx.sampleRate) >= 0 ? ctx.sampleRate : 48000;
    this.upsampler = this.playbackRate === ctx.sampleRate ? null : new Upsampler(this.playbackRate, ctx.sampleRate);
    this.stats.captureRate = ENGINE_RATE;
    this.silence = new Int16Array(320).buffer;
    if (this.micError) this.showAlert(this.micError);
  };

  Widget.prototype.connect = function () {
    var self = this;
    var url = this.options.server.replace(/^http/, "ws") + "/ws/voice/" + encodeURIComponent(this.options.key) + "/";
    this.setState("connecting", "Connecting\u2026");
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (error) {
      return this.fail("Could not reach the voice assistant.");
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = function () {
      ws.send(JSON.stringify({ type: "start", sample_rate: self.playbackRate, mode: self.mode }));
    };
    ws.onmessage = function (event) {
      if (typeof event.data === "string") self.onEvent(event.data);
      else self.onAudio(event.data);
    };
    ws.onclose = function (event) { self.onClose(event); };
  };

  Widget.prototype.hangup = function () {
    var ws = this.ws;
    if (!ws) return;
    if (ws.readyState === WebSocket.OPEN) {
      ws.send(JSON.stringify({ type: "stop" }));
      // The server answers with "ended" and closes; don't wait for ever.
      window.setTimeout(function () { if (ws.readyState !== WebSocket.CLOSED) ws.close(1000); }, 2000);
    } else {
      ws.close();
    }
    this.clearPlayback();
    this.setState("ended", "Hanging up\u2026");
  };

  Widget.prototype.onClose = function (event) {
    this.stats.closeCode = event.code;
    this.ws = null;
    this.teardownAudio();
    if (this.ended || event.code === 1000) {
      this.setState("ended", this.ended ? this.status.textContent : "Call ended.");
    } else {
      var message = CLOSE_MESSAGES[event.code] || "The call was disconnected (" + event.code + ").";
      this.showAlert(message);
      this.setState("error", this.callId ? "Call ended." : "Could not connect.");
    }
  };

  Widget.prototype.fail = function (message) {
    this.showAlert(message);
    this.teardownAudio();
    if (this.ws) {
      try { this.ws.close(); } catch (error) { /* already closed */ }
      this.ws = null;
    }
    this.setState("error", "Call not started.");
  };

  Widget.prototype.teardownAudio = function () {
    if (this.capture) {
      this.capture.port.postMessage({ type: "stop" });
      this.capture.disconnect();
      this.capture = null;
    }
    if (this.micSource) {
      this.micSource.disconnect();
      this.micSource = null;
    }
    if (this.micStream) {
      this.micStream.getTracks().forEach(function (track) { track.stop(); });
      this.micStream = null;
    }
    if (this.player) {
      this.player.port.postMessage({ type: "clear" });
      this.player.disconnect();
      this.player = null;
    }
    this.pressed = false;
    this.host.classList.remove("talking");
    this.meterBar.style.width = "0%";
    // The AudioContext is kept: iOS allows only a few, and reusing it needs no new gesture.
  };

  Widget.prototype.resumeAudio = function () {
    if (this.ctx && this.ctx.state !== "running" && this.ws) this.ctx.resume();
  };

  // ---- Microphone -------------------------------------------------------------------------

  Widget.prototype.isSendingMic = function () {
    return !!this.micStream && !this.muted && (this.mode !== "ptt" || this.pressed);
  };

  Widget.prototype.onFrame = function (frame) {
    if (frame.type !== "frame") return;
    this.showLevel(frame.rms);
    var ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN || !this.callId) return;
    var sending = this.isSendingMic();
    if (sending && 20 * Math.log10(frame.rms + 1e-9) > SPEECH_DBFS) this.speechEnd = frame.time;
    if (ws.bufferedAmount > MAX_UNSENT_BYTES) {
      this.stats.framesDropped++; // the network is stalled: late audio is worse than lost audio
      return;
    }
    // Muted or push-to-talk released: keep the 20 ms clock going with silence.
    ws.send(sending ? frame.pcm : this.silence);
    this.stats.framesSent++;
  };

  Widget.prototype.press = function () {
    if (this.mode !== "ptt" || this.pressed || !this.micStream || !this.callId) return;
    this.pressed = true;
    this.host.classList.add("talking");
    this.talkButton.textContent = "Release to send";
    this.clearPlayback(); // talking over the agent stops it at once
    this.send({ type: "ptt", pressed: true });
  };

  Widget.prototype.release = function () {
    if (!this.pressed) return;
    this.pressed = false;
    this.host.classList.remove("talking");
    this.talkButton.textContent = "Hold to talk";
    this.send({ type: "ptt", pressed: false });
    if (this.speechEnd != null) this.pendingLatency = { speechEnd: this.speechEnd };
    this.speechEnd = null;
  };

  Widget.prototype.onKey = function (event, down) {
    if (event.code !== "Space" && event.key !== " ") return;
    if (this.mode !== "ptt" || !this.ws) return;
    var target = event.composedPath ? event.composedPath()[0] : event.target;
    var tag = target && target.tagName;
    if (tag === "INPUT" || tag === "TEXTAREA" || tag === "SELECT" || (target && target.isContentEditable)) return;
    event.preventDefault();
    if (down && !event.repeat) this.press();
    else if (!down) this.release();
  };

  // ---- Server messages --------------------------------------------------------------------

  Widget.prototype.send = function (message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  };

  Widget.prototype.sendText = function (text) {
    text = (text || "").trim();
    if (!text || !this.callId) return;
    this.send({ type: "text", text: text });
    this.textInput.value = "";
    this.clearPlayback();
    this.pendingLatency = null; // typed turns have no voice-to-voice latency
    this.speechEnd = null;
  };

  Widget.prototype.sendDtmf = function (digit) {
    if (!this.callId) return;
    this.send({ type: "dtmf", digits: digit });
    var self = this;
    var key = this.keypad.querySelector('[data-digit="' + digit + '"]');
    if (key) {
      key.classList.add("sent");
      window.setTimeout(function () { key.classList.remove("sent"); }, 150);
    }
    self.status.textContent = "Sent " + digit;
  };

  Widget.prototype.onEvent = function (raw) {
    var message;
    try {
      message = JSON.parse(raw);
    } catch (error) {
      return;
    }
    switch (message.type) {
      case "ready":
        this.callId = message.call_id;
        this.setState("listening", message.agent ? "Connected to " + message.agent + "." : "Connected.");
        break;
      case "caption":
        this.addCaption(message.speaker, message.text, message.final, message.turn);
        if (message.speaker === "caller" && message.final !== false && this.speechEnd != null) {
          // The server heard the end of the caller's turn; time from their last voiced frame.
          this.pendingLatency = { speechEnd: this.speechEnd };
          this.speechEnd = null;
        }
        break;
      case "agent_text":
        if (message.turn != null) this.agentTurn = message.turn;
        this.addCaption("agent", message.text, true, message.turn);
        break;
      case "state":
        if (message.state === "speaking" && message.turn != null) this.agentTurn = message.turn;
        if (!this.ended) {
          var labels = { listening: "Listening\u2026", thinking: "Thinking\u2026", speaking: "Speaking\u2026" };
          if (labels[message.state]) this.setState(message.state, labels[message.state]);
        }
        break;
      case "clear":
        this.clearPlayback();
        break;
      case "transfer":
        this.setState(this.state, "Passing you to our team\u2026");
        break;
      case "ended":
        this.ended = true;
        if (message.call_id) this.callId = message.call_id;
        this.setState("ended", ENDED_MESSAGES[message.reason] || "Call ended.");
        break;
      case "error":
        if (message.fatal) this.showAlert(message.message || "The call failed.");
        break;
      default:
        break;
    }
  };

  Widget.prototype.onAudio = function (buffer) {
    if (!this.player || buffer.byteLength < 2) return;
    this.stats.audioBytesIn += buffer.byteLength;
    var pcm = new Int16Array(buffer, 0, buffer.byteLength >> 1);
    var samples = new Float32Array(pcm.length);
    for (var i = 0; i < pcm.length; i++) samples[i] = pcm[i] / 32768;
    if (this.upsampler) samples = this.upsampler.process(samples);
    this.player.port.postMessage(samples, [samples.buffer]);
  };

  Widget.prototype.clearPlayback = function () {
    if (this.player) this.player.port.postMessage({ type: "clear" });
    this.stats.clears++;
  };

  Widget.prototype.onPlayer = function (message) {
    var rate = this.ctx ? this.ctx.sampleRate : 48000;
    if (message.played != null) this.stats.playedMs = Math.round((message.played / rate) * 1000);
    if (message.consumed != null) {
      // Flow control: the server holds agent audio back while too much is unplayed.
      var consumedMs = Math.round((message.consumed / rate) * 1000);
      if (consumedMs !== this.reportedMs) {
        this.reportedMs = consumedMs;
        this.send({ type: "played", ms: consumedMs });
      }
    }
    if (message.type !== "started") return;
    this.stats.playbackStarts++;
    var pending = this.pendingLatency;
    if (!pending) return;
    this.pendingLatency = null;
    // Audio-clock time the first agent sample reaches the speaker, minus the end of the caller's speech.
    var outputLatency = (this.ctx && this.ctx.outputLatency) || 0;
    var ms = Math.round((message.time + outputLatency - pending.speechEnd) * 1000);
    if (ms <= 0 || ms > 60000) return;
    var report = { type: "latency", ms: ms };
    if (this.agentTurn != null) report.turn = this.agentTurn;
    this.stats.latencies.push({ turn: report.turn, ms: ms });
    this.send(report);
  };

  window.VoiceCRM = window.VoiceCRM || { widgets: [] };
  function mount() {
    window.VoiceCRM.widgets.push(new Widget(config));
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})();
