// Unsent composer text, one draft per conversation, kept in localStorage so
// that a reload (or closing the tab) does not lose it. Keys carry the user
// id, and ending a session removes every draft: whoever logs in next on this
// browser must not see what the previous user was writing.

const DRAFT_KEY_PREFIX = 'banter.draft.';

function draftKey(userId, conversationId) {
  return `${DRAFT_KEY_PREFIX}${userId}.${conversationId}`;
}

export function loadDraft(userId, conversationId) {
  try {
    return localStorage.getItem(draftKey(userId, conversationId)) ?? '';
  } catch {
    return '';
  }
}

/** Saves the draft; an empty one (sent or erased) is removed. */
export function saveDraft(userId, conversationId, text) {
  try {
    if (text) localStorage.setItem(draftKey(userId, conversationId), text);
    else localStorage.removeItem(draftKey(userId, conversationId));
  } catch {
    // Storage full or disabled: the draft still lives in the open composer.
  }
}

/** Removes the drafts of every user but `keepUserId` (of everyone without it). */
export function clearDrafts({ keepUserId = null } = {}) {
  const keep = keepUserId === null ? null : `${DRAFT_KEY_PREFIX}${keepUserId}.`;
  try {
    const keys = [];
    for (let i = 0; i < localStorage.length; i += 1) keys.push(localStorage.key(i));
    for (const key of keys) {
      if (key.startsWith(DRAFT_KEY_PREFIX) && !(keep && key.startsWith(keep))) localStorage.removeItem(key);
    }
  } catch {
    // Storage disabled: nothing was saved either.
  }
}
