-- Uploads (pictures, files, voice messages, videos), the messages that carry them, and
-- group avatars. The same tables under the same number and name in every backend.

-- One row per upload, even when its bytes are stored once for several (content-addressed:
-- `blob_key` is the SHA-256 of the stored bytes). Only the upload's owner may attach it.
CREATE TABLE uploads (
    -- 32 lowercase hex characters, random.
    id              VARCHAR(32)   NOT NULL PRIMARY KEY,
    owner_id        BIGINT        NOT NULL,
    blob_key        VARCHAR(64)   NOT NULL,
    -- The name the uploader gave; display only, never a path.
    name            VARCHAR(1024) NOT NULL,
    size            BIGINT        NOT NULL,
    -- Detected from the bytes.
    mime            VARCHAR(255)  NOT NULL,
    -- 'image' | 'audio' | 'video' | 'file'
    kind            VARCHAR(16)   NOT NULL,
    width           BIGINT,
    height          BIGINT,
    thumbnail       BOOLEAN       NOT NULL DEFAULT FALSE,
    created_at_ms   BIGINT        NOT NULL,
    -- The quota sums a user's uploads.
    INDEX uploads_by_owner (owner_id),
    -- Whether any upload still uses a stored object.
    INDEX uploads_by_blob (blob_key),
    -- The clean-up walks old uploads.
    INDEX uploads_by_age (created_at_ms),
    FOREIGN KEY (owner_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

-- Which message carries which upload: who may download it is decided here (members of
-- `conversation_id`). A recall deletes its message's row.
CREATE TABLE attachments (
    upload_id       VARCHAR(32)   NOT NULL,
    message_id      BIGINT        NOT NULL,
    conversation_id BIGINT        NOT NULL,
    PRIMARY KEY (upload_id, message_id),
    INDEX attachments_by_message (message_id),
    FOREIGN KEY (upload_id) REFERENCES uploads (id),
    FOREIGN KEY (message_id) REFERENCES messages (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

-- A group's avatar: '/api/v1/avatars/<key>'; NULL when none is set, always for direct ones.
ALTER TABLE conversations ADD COLUMN avatar_url VARCHAR(1024);
