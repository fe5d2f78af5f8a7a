-- Uploads (pictures, files, voice messages, videos), the messages that carry them, and
-- group avatars. The same tables under the same number and name in every backend.

-- One row per upload, even when its bytes are stored once for several (content-addressed:
-- `blob_key` is the SHA-256 of the stored bytes). Only the upload's owner may attach it.
CREATE TABLE uploads (
    -- 32 lowercase hex characters, random.
    id              TEXT    PRIMARY KEY,
    owner_id        BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blob_key        TEXT    NOT NULL,
    -- The name the uploader gave; display only, never a path.
    name            TEXT    NOT NULL,
    size            BIGINT  NOT NULL,
    -- Detected from the bytes.
    mime            TEXT    NOT NULL,
    -- 'image' | 'audio' | 'video' | 'file'
    kind            TEXT    NOT NULL,
    width           BIGINT,
    height          BIGINT,
    thumbnail       BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms   BIGINT  NOT NULL
);
-- The quota sums a user's uploads.
CREATE INDEX uploads_by_owner ON uploads (owner_id);
-- Whether any upload still uses a stored object.
CREATE INDEX uploads_by_blob ON uploads (blob_key);
-- The clean-up walks old uploads.
CREATE INDEX uploads_by_age ON uploads (created_at_ms);

-- Which message carries which upload: who may download it is decided here (members of
-- `conversation_id`). A recall deletes its message's row.
CREATE TABLE attachments (
    upload_id       TEXT    NOT NULL REFERENCES uploads (id),
    message_id      BIGINT  NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    conversation_id BIGINT  NOT NULL,
    PRIMARY KEY (upload_id, message_id)
);
CREATE INDEX attachments_by_message ON attachments (message_id);

-- A group's avatar: '/api/v1/avatars/<key>'; NULL when none is set, always for direct ones.
ALTER TABLE conversations ADD COLUMN avatar_url TEXT;
