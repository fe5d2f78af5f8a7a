-- Banter's initial schema (PostgreSQL): the tables of migrations/sqlite/0001_initial.sql
-- under the same number and name. BIGINT identity ids (never reused after a delete),
-- BIGINT millisecond timestamps, TEXT strings, BOOLEAN flags, BYTEA token hashes.

CREATE TABLE users (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- As registered, case preserved.
    username        TEXT    NOT NULL,
    -- Lowercased by the store (Unicode-aware), so uniqueness ignores case on every backend.
    username_key    TEXT    NOT NULL,
    nickname        TEXT    NOT NULL,
    avatar_url      TEXT,
    signature       TEXT,
    -- A PHC string; the store never sees a password.
    password_hash   TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    CONSTRAINT users_username_key_unique UNIQUE (username_key)
);

CREATE TABLE sessions (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SHA-256 of the bearer token.
    token_hash      BYTEA   NOT NULL UNIQUE,
    device_name     TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    expires_at_ms   BIGINT  NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);

CREATE TABLE friend_requests (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    from_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    to_id           BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    greeting        TEXT,
    -- 'pending' | 'accepted' | 'rejected' | 'cancelled'
    status          TEXT    NOT NULL,
    created_at_ms   BIGINT  NOT NULL,
    updated_at_ms   BIGINT  NOT NULL
);
-- Pending requests per user, both directions.
CREATE INDEX friend_requests_incoming ON friend_requests (to_id, status);
CREATE INDEX friend_requests_outgoing ON friend_requests (from_id, status);

-- Two rows per friendship, one from each side, so "my friends" is one index range.
CREATE TABLE friendships (
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    friend_id       BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    since_ms        BIGINT  NOT NULL,
    PRIMARY KEY (user_id, friend_id)
);

CREATE TABLE blocks (
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    blocked_id      BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at_ms   BIGINT  NOT NULL,
    PRIMARY KEY (user_id, blocked_id)
);

CREATE TABLE conversations (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- 'direct' | 'group'
    kind            TEXT    NOT NULL,
    -- The group's name; NULL for direct conversations.
    name            TEXT,
    -- "small_id:large_id" for direct conversations, so each pair has exactly one.
    direct_key      TEXT    UNIQUE,
    -- The seq of the newest stream entry. Bumped in the same transaction that inserts the
    -- entries; this row is the lock point that keeps seqs gapless with several writers.
    last_seq        BIGINT  NOT NULL DEFAULT 0,
    last_activity_ms BIGINT NOT NULL,
    created_at_ms   BIGINT  NOT NULL
);

CREATE TABLE members (
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    user_id         BIGINT  NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- 'member' | 'admin' | 'owner'
    role            TEXT    NOT NULL,
    -- Every entry up to this seq counts as read by this member.
    read_seq        BIGINT  NOT NULL DEFAULT 0,
    joined_at_ms    BIGINT  NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
-- The conversation list of a user.
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE messages (
    id              BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    conversation_id BIGINT  NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    seq             BIGINT  NOT NULL,
    sender_id       BIGINT  NOT NULL REFERENCES users (id),
    -- The sender's idempotency key; NULL for entries the server made.
    client_msg_id   TEXT,
    -- 'text' | 'recall' | 'system'
    kind            TEXT    NOT NULL,
    -- The text (blank once recalled), or JSON: {"target_id": n} for a recall, the notice
    -- for a system entry.
    body            TEXT    NOT NULL,
    recalled        BOOLEAN NOT NULL DEFAULT FALSE,
    created_at_ms   BIGINT  NOT NULL,
    -- Also the index that sync and paging walk.
    CONSTRAINT messages_seq_unique UNIQUE (conversation_id, seq),
    -- Idempotent sends; NULLs (server entries) never collide.
    CONSTRAINT messages_client_msg_id_unique UNIQUE (conversation_id, sender_id, client_msg_id)
);
