// How a media message shows its attachment (protocol §6.8): a picture's
// thumbnail (click: the viewer, with zoom), a file card with a download
// button, a voice bubble with play/pause and its duration, or an inline video
// (a file card when this browser cannot play its type). Every byte comes
// through media.js (fetched with the token, shown via object URLs); names
// and captions reach the page only as text.

import { h } from '../dom.js';
import { t } from '../i18n.js';
import {
  canPlayVideo, downloadUpload, fileTypeLabel, fitSize, formatDuration, humanSize, mediaUrl,
} from '../media.js';
import { errorText, toast } from './common.js';
import { icon } from './icons.js';

/** Videos up to this size load by themselves when scrolled into view; larger ones on a click. */
const VIDEO_AUTOLOAD_BYTES_MAX = 16 * 1024 * 1024;

// ---- loading when scrolled into view ----

const whenVisible = new WeakMap();
let observer = null;

/** Runs `load` once, when `el` first comes near the screen. */
function onVisible(el, load) {
  if (!('IntersectionObserver' in window)) {
    load();
    return;
  }
  observer ??= new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting) continue;
      observer.unobserve(entry.target);
      const run = whenVisible.get(entry.target);
      whenVisible.delete(entry.target);
      run?.();
    }
  }, { rootMargin: '300px 0px' });
  whenVisible.set(el, load);
  observer.observe(el);
}

function showLoadError(el, err) {
  el.classList.add('media-failed');
  el.dataset.error = err?.code ?? 'internal';
  el.title = err?.code === 'not_found' ? t('media.gone') : t('media.loadFailed');
}

// ---- the attachment ----

/**
 * The element for `attachment` (an `Attachment`, or a pending send's preview of
 * one). `previewUrl`: a local object URL of a picture not uploaded yet.
 */
export function attachmentView(attachment, { previewUrl = null } = {}) {
  const uploaded = Boolean(attachment.upload_id);
  switch (attachment.kind) {
    case 'image':
      return imageView(attachment, { previewUrl, uploaded });
    case 'voice':
      return voiceView(attachment, { uploaded });
    case 'video':
      if (canPlayVideo(attachment.mime) || (!uploaded && attachment.mime.startsWith('video/'))) {
        return videoView(attachment, { uploaded });
      }
      return fileCard(attachment, { uploaded });
    default:
      return fileCard(attachment, { uploaded });
  }
}

function imageView(att, { previewUrl, uploaded }) {
  const img = h('img', { class: 'media-image', alt: att.name, testid: 'message-image', draggable: 'false' });
  const setSize = (width, height) => {
    const size = fitSize(width, height);
    // CSSOM, not a style attribute (the CSP allows only stylesheets).
    img.style.width = `${size.width}px`;
    img.style.height = `${size.height}px`;
  };
  setSize(att.width, att.height);
  if (!att.width || !att.height) {
    img.addEventListener('load', () => setSize(img.naturalWidth, img.naturalHeight), { once: true });
  }
  if (!uploaded) {
    if (previewUrl) img.src = previewUrl;
    return h('div', { class: 'media-image-frame' }, img);
  }
  const button = h('button', {
    type: 'button', class: 'media-image-frame media-image-btn', testid: 'open-image',
    'aria-label': t('media.openImage', { name: att.name }),
    onClick: () => openImageViewer(att, button),
  }, img);
  onVisible(button, () => {
    mediaUrl(att.upload_id, att.thumbnail ? 'thumbnail' : 'full')
      .then((url) => { img.src = url; }, (err) => showLoadError(button, err));
  });
  return button;
}

function fileCard(att, { uploaded }) {
  const type = fileTypeLabel(att.name, att.mime);
  const meta = type ? `${humanSize(att.size)} · ${type}` : humanSize(att.size);
  const download = uploaded ? h('button', {
    type: 'button', class: 'icon-btn file-download', testid: 'file-download',
    'aria-label': t('media.download', { name: att.name }), title: t('media.downloadShort'),
    onClick: async (e) => {
      const button = e.currentTarget;
      button.disabled = true;
      button.classList.add('busy');
      try {
        await downloadUpload(att.upload_id, att.name);
      } catch (err) {
        toast(err?.code === 'not_found' ? t('media.gone') : errorText(err), 'error');
      } finally {
        button.disabled = false;
        button.classList.remove('busy');
      }
    },
  }, icon('download', 20)) : null;
  return h('div', { class: 'file-card', testid: 'file-card', dataset: { mime: att.mime || '' } },
    h('span', { class: 'file-icon', 'aria-hidden': 'true' }, icon('file', 30)),
    h('span', { class: 'file-info' },
      h('span', { class: 'file-name', testid: 'file-name', title: att.name }, att.name),
      h('span', { class: 'file-meta', testid: 'file-meta' }, meta)),
    download);
}

function videoView(att, { uploaded }) {
  const video = h('video', {
    class: 'media-video', testid: 'message-video', controls: true, preload: 'metadata', playsinline: true,
    'aria-label': att.name,
  });
  const size = fitSize(att.width || 16, att.height || 9, 280, 120);
  video.style.width = `${size.width}px`;
  video.style.height = `${size.height}px`;
  video.addEventListener('loadedmetadata', () => {
    if (!video.videoWidth || !video.videoHeight) return;
    const fitted = fitSize(video.videoWidth, video.videoHeight, 280, 120);
    video.style.width = `${fitted.width}px`;
    video.style.height = `${fitted.height}px`;
  }, { once: true });
  const frame = h('div', { class: 'media-video-frame' }, video);
  if (!uploaded) return frame;
  const load = (play) => mediaUrl(att.upload_id, 'full').then((url) => {
    video.src = url;
    if (play) video.play().catch(() => {});
  }, (err) => showLoadError(frame, err));
  if (att.size <= VIDEO_AUTOLOAD_BYTES_MAX) {
    onVisible(frame, () => load(false));
  } else {
    const start = h('button', {
      type: 'button', class: 'video-load', testid: 'video-load',
      onClick: () => {
        start.remove();
        load(true);
      },
    }, icon('play', 28), h('span', {}, t('media.loadVideo', { size: humanSize(att.size) })));
    frame.appendChild(start);
  }
  return frame;
}

// ---- voice messages: one plays at a time ----

let playing = null; // { audio, uploadId, view }

/**
 * Stops the voice message that is playing, if any (leaving the chat, logging out),
 * or only if it is the upload `uploadId`.
 */
export function stopVoice(uploadId = null) {
  if (!playing || (uploadId !== null && playing.uploadId !== uploadId)) return;
  const { audio, view } = playing;
  playing = null;
  audio.pause();
  audio.removeAttribute('src');
  view.reset();
}

function voiceView(att, { uploaded }) {
  const seconds = Math.max(1, Math.round((att.duration_ms ?? 0) / 1000));
  const label = h('span', { class: 'voice-duration', testid: 'voice-duration' }, formatDuration(att.duration_ms));
  const buttonIcon = h('span', { class: 'voice-icon' }, icon('play', 18));
  const button = h('button', {
    type: 'button', class: 'voice-play', testid: 'voice-play', disabled: !uploaded,
    'aria-label': t('media.playVoice', { duration: formatDuration(att.duration_ms) }),
  }, buttonIcon);
  const bar = h('span', { class: 'voice-bar', 'aria-hidden': 'true' }, h('span', { class: 'voice-progress' }));
  const el = h('div', { class: 'voice', testid: 'voice-message', dataset: { durationMs: String(att.duration_ms ?? '') } },
    button, bar, label);
  // Longer messages get a longer bubble, as in the usual chat apps.
  el.style.width = `${Math.min(260, 130 + seconds * 4)}px`;
  const progress = bar.firstChild;
  const view = {
    reset() {
      el.classList.remove('playing');
      button.setAttribute('aria-label', t('media.playVoice', { duration: formatDuration(att.duration_ms) }));
      buttonIcon.replaceChildren(icon('play', 18));
      label.textContent = formatDuration(att.duration_ms);
      progress.style.width = '0';
    },
    playingNow() {
      el.classList.add('playing');
      button.setAttribute('aria-label', t('media.pauseVoice'));
      buttonIcon.replaceChildren(icon('pause', 18));
    },
    paused() {
      el.classList.remove('playing');
      button.setAttribute('aria-label', t('media.playVoice', { duration: formatDuration(att.duration_ms) }));
      buttonIcon.replaceChildren(icon('play', 18));
    },
  };
  button.addEventListener('click', async () => {
    if (playing?.view === view) {
      if (playing.audio.paused) {
        playing.audio.play().catch(() => {});
        view.playingNow();
      } else {
        playing.audio.pause();
        view.paused();
      }
      return;
    }
    stopVoice();
    let url;
    button.disabled = true;
    try {
      url = await mediaUrl(att.upload_id, 'full');
    } catch (err) {
      toast(err?.code === 'not_found' ? t('media.gone') : errorText(err), 'error');
      return;
    } finally {
      button.disabled = false;
    }
    const audio = new Audio(url);
    const total = (att.duration_ms ?? 0) / 1000;
    audio.addEventListener('timeupdate', () => {
      if (playing?.audio !== audio) return;
      label.textContent = formatDuration(audio.currentTime * 1000);
      if (total > 0) progress.style.width = `${Math.min(100, (audio.currentTime / total) * 100)}%`;
    });
    audio.addEventListener('ended', () => {
      if (playing?.audio === audio) stopVoice();
    });
    audio.addEventListener('error', () => {
      if (playing?.audio !== audio) return;
      stopVoice();
      toast(t('media.cannotPlay'), 'error');
    });
    playing = { audio, uploadId: att.upload_id, view };
    view.playingNow();
    audio.play().catch(() => {
      if (playing?.audio === audio) stopVoice();
    });
  });
  return el;
}

// ---- the picture viewer ----

let closeViewer = null;

/** Closes the picture viewer if it is open (the chat it came from is going away). */
export function closeImageViewer() {
  closeViewer?.();
}

const ZOOM_STEP = 1.25;
const ZOOM_MIN = 0.25;
const ZOOM_MAX = 8;

/**
 * Shows the full picture over the page: wheel or the buttons zoom, Escape or
 * a click beside the picture closes, focus returns to `opener`.
 */
export function openImageViewer(att, opener = null) {
  closeImageViewer();
  const img = h('img', { class: 'viewer-image', testid: 'viewer-image', alt: att.name, draggable: 'false' });
  const zoomLabel = h('span', { class: 'viewer-zoom', testid: 'viewer-zoom', 'aria-live': 'polite' });
  const toolButton = (name, label, testid, onClick) => h('button', {
    type: 'button', class: 'viewer-btn', testid, 'aria-label': label, title: label, onClick,
  }, icon(name, 20));
  const stage = h('div', { class: 'viewer-stage', testid: 'viewer-stage' }, img);
  const closeButton = toolButton('close', t('close'), 'viewer-close', () => close());
  const overlay = h('div', {
    class: 'viewer', testid: 'image-viewer', role: 'dialog', 'aria-modal': 'true', 'aria-label': att.name,
  },
  h('div', { class: 'viewer-toolbar' },
    h('span', { class: 'viewer-name' }, att.name),
    toolButton('zoomOut', t('media.zoomOut'), 'viewer-zoom-out', () => zoomBy(1 / ZOOM_STEP)),
    zoomLabel,
    toolButton('zoomIn', t('media.zoomIn'), 'viewer-zoom-in', () => zoomBy(ZOOM_STEP)),
    toolButton('download', t('media.downloadShort'), 'viewer-download', () => {
      downloadUpload(att.upload_id, att.name).catch((err) => toast(errorText(err), 'error'));
    }),
    closeButton),
  stage);

  let natural = { width: att.width || 0, height: att.height || 0 };
  let zoom = 1; // relative to "fit in the window"
  const fitScale = () => {
    if (!natural.width || !natural.height) return 1;
    const room = stage.getBoundingClientRect();
    return Math.min(1, (room.width - 32) / natural.width, (room.height - 32) / natural.height);
  };
  const layout = () => {
    if (!natural.width || !natural.height) return;
    const scale = fitScale() * zoom;
    img.style.width = `${Math.max(1, Math.round(natural.width * scale))}px`;
    img.style.height = `${Math.max(1, Math.round(natural.height * scale))}px`;
    zoomLabel.textContent = `${Math.round(scale * 100)}%`;
    overlay.dataset.zoom = String(zoom);
  };
  const zoomBy = (factor) => {
    zoom = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, zoom * factor));
    layout();
  };
  const onKey = (e) => {
    if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === '+' || e.key === '=') {
      zoomBy(ZOOM_STEP);
    } else if (e.key === '-') {
      zoomBy(1 / ZOOM_STEP);
    }
  };
  const onResize = () => layout();
  function close() {
    if (closeViewer === close) closeViewer = null;
    overlay.remove();
    document.removeEventListener('keydown', onKey, true);
    window.removeEventListener('resize', onResize);
    if (opener?.isConnected) opener.focus();
  }
  stage.addEventListener('wheel', (e) => {
    e.preventDefault();
    zoomBy(e.deltaY < 0 ? ZOOM_STEP : 1 / ZOOM_STEP);
  }, { passive: false });
  // A click beside the picture (not on it, not on the toolbar) closes.
  stage.addEventListener('click', (e) => {
    if (e.target === stage) close();
  });
  img.addEventListener('load', () => {
    // The full picture's size is the truth; a thumbnail's stands in while it is unknown.
    if (img.naturalWidth && img.naturalHeight && (img.dataset.variant === 'full' || !natural.width)) {
      natural = { width: img.naturalWidth, height: img.naturalHeight };
    }
    layout();
  });
  document.addEventListener('keydown', onKey, true);
  window.addEventListener('resize', onResize);
  document.body.appendChild(overlay);
  closeViewer = close;
  closeButton.focus();
  layout();

  // The thumbnail (cached already) at once, the full picture when it has arrived.
  let full = false;
  if (att.thumbnail) {
    mediaUrl(att.upload_id, 'thumbnail').then((url) => {
      if (!full) {
        img.dataset.variant = 'thumbnail';
        img.src = url;
      }
    }, () => {});
  }
  mediaUrl(att.upload_id, 'full').then((url) => {
    full = true;
    img.dataset.variant = 'full';
    img.src = url;
  }, (err) => {
    if (!overlay.isConnected) return;
    toast(err?.code === 'not_found' ? t('media.gone') : errorText(err), 'error');
    close();
  });
}
