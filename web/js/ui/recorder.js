// Recording a voice message with MediaRecorder: Opus in WebM where the
// browser can (Chromium, Firefox), else Ogg. The client measures the length
// itself (the server stores `duration_ms` as given, and a recorded WebM has
// no duration in its header).

import { h } from '../dom.js';
import { t } from '../i18n.js';
import { formatDuration } from '../media.js';
import { icon } from './icons.js';

/** Shorter recordings are dropped as a slip of the finger. */
const VOICE_DURATION_MS_MIN = 500;
const RECORDING_TYPES = ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/ogg'];

export function recordingSupported() {
  return Boolean(navigator.mediaDevices?.getUserMedia) && 'MediaRecorder' in window;
}

function extensionFor(mime) {
  if (/ogg/.test(mime)) return 'ogg';
  if (/mp4|aac/.test(mime)) return 'm4a';
  return 'webm';
}

/** voice-20260103-142501.webm, in local time. */
function voiceFileName(mime) {
  const d = new Date();
  const two = (n) => String(n).padStart(2, '0');
  return `voice-${d.getFullYear()}${two(d.getMonth() + 1)}${two(d.getDate())}-${two(d.getHours())}${two(d.getMinutes())}${two(d.getSeconds())}.${extensionFor(mime)}`;
}

/**
 * One recording. `el` is its bar (red dot, elapsed time, cancel, send);
 * `maxDurationMs` is the longest the server takes (voice_duration_ms_max of
 * `hello`): the recording is sent by itself when it gets that long;
 * `onDone({ file, durationMs })` gets the recording when it is sent;
 * `onEnd()` runs when the recording is over either way; `onError(key)`
 * gets a translation key when the microphone cannot be used.
 */
export class VoiceRecorder {
  constructor({ maxDurationMs, onDone, onEnd, onError }) {
    this.maxDurationMs = maxDurationMs;
    this.onDone = onDone;
    this.onEnd = onEnd;
    this.onError = onError;
    this.stream = null;
    this.recorder = null;
    this.chunks = [];
    this.startedAt = 0;
    this.timer = null;
    this.limitTimer = null;
    this.finished = false;
    this.elapsed = h('span', { class: 'recorder-time', testid: 'voice-elapsed' }, formatDuration(0));
    this.el = h('div', { class: 'recorder', testid: 'voice-recorder', role: 'group', 'aria-label': t('voice.recording') },
      h('span', { class: 'recorder-dot', 'aria-hidden': 'true' }),
      h('span', { class: 'recorder-label' }, t('voice.recording')),
      this.elapsed,
      h('span', { class: 'recorder-spacer' }),
      h('button', { type: 'button', class: 'btn', testid: 'voice-cancel', onClick: () => this.cancel() }, t('cancel')),
      h('button', {
        type: 'button', class: 'btn btn-primary', testid: 'voice-send', onClick: () => this.stop(),
      }, icon('send', 16), ' ', t('voice.send')));
  }

  /** Asks for the microphone and starts; resolves false if it could not. */
  async start() {
    try {
      this.stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    } catch (err) {
      this.onError(err?.name === 'NotAllowedError' || err?.name === 'SecurityError' ? 'voice.denied' : 'voice.noMicrophone');
      this.#end();
      return false;
    }
    if (this.finished) { // cancelled while the browser asked for permission
      this.#release();
      return false;
    }
    const mimeType = RECORDING_TYPES.find((type) => MediaRecorder.isTypeSupported?.(type));
    try {
      this.recorder = new MediaRecorder(this.stream, mimeType ? { mimeType } : undefined);
    } catch {
      this.onError('voice.unsupported');
      this.#end();
      return false;
    }
    this.recorder.addEventListener('dataavailable', (e) => {
      if (e.data?.size) this.chunks.push(e.data);
    });
    this.recorder.addEventListener('stop', () => this.#stopped());
    this.recorder.start(250);
    this.startedAt = performance.now();
    this.timer = setInterval(() => {
      this.elapsed.textContent = formatDuration(performance.now() - this.startedAt);
    }, 250);
    // The server would refuse a longer one: send what there is.
    this.limitTimer = setTimeout(() => this.stop(), this.maxDurationMs);
    return true;
  }

  /** Stop = send. */
  stop() {
    if (this.finished || !this.recorder) return;
    this.durationMs = Math.min(this.maxDurationMs, performance.now() - this.startedAt);
    this.send = true;
    this.finished = true;
    this.#clearTimers();
    this.recorder.stop(); // the last data, then 'stop'
  }

  cancel() {
    if (this.finished && this.recorder) return;
    this.finished = true;
    this.send = false;
    this.#clearTimers();
    if (this.recorder && this.recorder.state !== 'inactive') this.recorder.stop();
    else this.#end();
  }

  #stopped() {
    const mime = this.recorder.mimeType || 'audio/webm';
    const chunks = this.chunks;
    this.chunks = [];
    this.#end();
    if (!this.send) return;
    if (this.durationMs < VOICE_DURATION_MS_MIN || chunks.length === 0) {
      this.onError('voice.tooShort');
      return;
    }
    const type = mime.split(';')[0];
    const file = new File(chunks, voiceFileName(type), { type });
    this.onDone({ file, durationMs: Math.max(1, Math.round(this.durationMs)) });
  }

  #release() {
    for (const track of this.stream?.getTracks() ?? []) track.stop();
    this.stream = null;
  }

  #clearTimers() {
    clearInterval(this.timer);
    clearTimeout(this.limitTimer);
  }

  #end() {
    this.#clearTimers();
    this.finished = true;
    this.#release();
    const onEnd = this.onEnd;
    this.onEnd = () => {};
    onEnd();
  }
}
