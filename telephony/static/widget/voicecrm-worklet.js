/*
 * VoiceCRM widget audio processors (AudioWorklet, runs on the audio thread).
 *
 * voicecrm-capture: microphone → mono → 16 kHz (band-limited windowed-sinc resampler, so 44.1 kHz
 *   and 48 kHz devices both work) → 20 ms PCM16 frames posted to the page with their RMS level and
 *   the audio-clock time of the frame's end. With no microphone connected it posts silence, so the
 *   call keeps its 50-frames-a-second clock in text-only mode.
 * voicecrm-player: agent audio (Float32 at the context rate, posted by the page) through a small
 *   jitter buffer: playback starts once 60 ms are queued (or 100 ms after the first chunk), and a
 *   "clear" message empties the queue at once. It posts "started" with the audio-clock time of the
 *   first sample it plays after being idle, which the page uses to measure voice-to-voice latency,
 *   and how much audio it has consumed (played or cleared), which the page reports for flow control.
 */
/* global sampleRate, currentTime, registerProcessor, AudioWorkletProcessor */

const TARGET_RATE = 16000;
const FRAME_SAMPLES = 320; // 20 ms at 16 kHz

class CaptureProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.step = sampleRate / TARGET_RATE; // input samples per output sample
    // Cut off a little below the output Nyquist frequency (7.36 kHz for 16 kHz output).
    this.cutoff = Math.min(1, TARGET_RATE / sampleRate) * 0.92;
    // Half-width of the kernel in input samples: about six zero crossings of the sinc.
    this.half = Math.ceil(6 / this.cutoff);
    // The kernel sampled at 1/256 of an input sample: no trigonometry per output sample.
    this.phases = 256;
    this.table = new Float32Array(2 * this.half * this.phases + 1);
    for (let i = 0; i < this.table.length; i++) this.table[i] = this.kernelAt(i / this.phases - this.half);
    this.buf = new Float32Array(8192);
    this.len = 0; // samples held in buf
    this.pos = 0; // input position (in buf) of the next output sample
    this.frame = new Int16Array(FRAME_SAMPLES);
    this.filled = 0;
    this.energy = 0;
    this.running = true;
    this.port.onmessage = (event) => {
      if (event.data && event.data.type === "stop") this.running = false;
    };
    // Prime with silence so the first output sample has its full left context.
    this.len = this.half;
    this.pos = this.half;
  }

  kernelAt(x) {
    if (x === 0) return this.cutoff;
    const a = Math.PI * this.cutoff * x;
    const window = 0.5 * (1 + Math.cos((Math.PI * x) / (this.half + 1)));
    return (this.cutoff * Math.sin(a) / a) * window;
  }

  append(channels, n) {
    if (this.len + n > this.buf.length) {
      // Drop what no future output sample can reach, then grow if still short.
      const keep = Math.max(0, Math.floor(this.pos) - this.half - 1);
      this.buf.copyWithin(0, keep, this.len);
      this.len -= keep;
      this.pos -= keep;
      if (this.len + n > this.buf.length) {
        const bigger = new Float32Array((this.len + n) * 2);
        bigger.set(this.buf.subarray(0, this.len));
        this.buf = bigger;
      }
    }
    const out = this.buf;
    if (!channels || channels.length === 0) {
      out.fill(0, this.len, this.len + n);
    } else if (channels.length === 1) {
      out.set(channels[0], this.len);
    } else {
      const scale = 1 / channels.length;
      for (let i = 0; i < n; i++) {
        let sum = 0;
        for (let c = 0; c < channels.length; c++) sum += channels[c][i];
        out[this.len + i] = sum * scale;
      }
    }
    this.len += n;
  }

  emit(value, endTime) {
    const clipped = value > 1 ? 1 : value < -1 ? -1 : value;
    this.frame[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
    this.energy += clipped * clipped;
    if (this.filled === FRAME_SAMPLES) {
      const rms = Math.sqrt(this.energy / FRAME_SAMPLES);
      const pcm = this.frame.buffer;
      this.port.postMessage({ type: "frame", pcm, rms, time: endTime }, [pcm]);
      this.frame = new Int16Array(FRAME_SAMPLES);
      this.filled = 0;
      this.energy = 0;
    }
  }

  process(inputs) {
    if (!this.running) return false;
    const input = inputs[0];
    const n = input && input.length ? input[0].length : 128;
    this.append(input, n);
    const endTime = currentTime + n / sampleRate;
    if (this.step === 1) {
      // Already 16 kHz: copy.
      while (this.pos < this.len) this.emit(this.buf[this.pos++], endTime);
      return true;
    }
    const half = this.half;
    while (this.pos + half < this.len) {
      const center = Math.floor(this.pos);
      const table = this.table;
      const phases = this.phases;
      let acc = 0;
      for (let k = center - half + 1; k <= center + half; k++) {
        // The kernel integrates to 1, so the passband keeps unity gain.
        acc += this.buf[k] * table[Math.round((this.pos - k + half) * phases)];
      }
      this.emit(acc, endTime);
      this.pos += this.step;
    }
    return true;
  }
}

class PlayerProcessor extends AudioWorkletProcessor {
  constructor() {
    super();
    this.queue = [];
    this.offset = 0; // read position in queue[0]
    this.buffered = 0;
    this.playing = false;
    this.waited = 0;
    this.prebuffer = Math.round(sampleRate * 0.06);
    this.maxWait = Math.round(sampleRate * 0.1);
    this.played = 0; // samples of agent audio played so far
    this.dropped = 0; // samples thrown away by "clear"
    this.sinceReport = 0;
    this.port.onmessage = (event) => {
      const data = event.data;
      if (data instanceof Float32Array) {
        this.queue.push(data);
        this.buffered += data.length;
      } else if (data && data.type === "clear") {
        const dropped = this.buffered;
        this.dropped += dropped;
        this.queue = [];
        this.offset = 0;
        this.buffered = 0;
        this.waited = 0;
        const wasPlaying = this.playing;
        this.playing = false;
        this.port.postMessage({ type: "cleared", wasPlaying, dropped, played: this.played, consumed: this.played + this.dropped });
      }
    };
  }

  process(inputs, outputs) {
    const channels = outputs[0];
    const out = channels[0];
    const n = out.length;
    if (!this.playing && this.buffered > 0) {
      this.waited += n;
      if (this.buffered >= this.prebuffer || this.waited >= this.maxWait) {
        this.playing = true;
        this.waited = 0;
        this.port.postMessage({ type: "started", time: currentTime, played: this.played, consumed: this.played + this.dropped });
      }
    }
    if (this.playing) {
      let written = 0;
      while (written < n && this.queue.length) {
        const chunk = this.queue[0];
        const take = Math.min(n - written, chunk.length - this.offset);
        out.set(chunk.subarray(this.offset, this.offset + take), written);
        written += take;
        this.offset += take;
        if (this.offset === chunk.length) {
          this.queue.shift();
          this.offset = 0;
        }
      }
      this.buffered -= written;
      this.played += written;
      this.sinceReport += written;
      if (written < n) {
        out.fill(0, written);
        this.playing = false;
        this.port.postMessage({ type: "drained", time: currentTime + written / sampleRate, played: this.played, consumed: this.played + this.dropped });
        this.sinceReport = 0;
      } else if (this.sinceReport >= sampleRate / 4) {
        this.port.postMessage({ type: "progress", played: this.played, consumed: this.played + this.dropped });
        this.sinceReport = 0;
      }
    }
    for (let c = 1; c < channels.length; c++) channels[c].set(out);
    return true;
  }
}

registerProcessor("voicecrm-capture", CaptureProcessor);
registerProcessor("voicecrm-player", PlayerProcessor);
