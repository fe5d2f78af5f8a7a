-- Banter's initial schema (MySQL 8 / MariaDB 10.6+): the tables of
-- migrations/sqlite/0001_initial.sql under the same number and name.
--
-- InnoDB for transactions and row locks; utf8mb4 so that emoji round-trip, with the binary
-- collation so that text compares exactly (case folding of usernames is done by the store
-- into username_key, never by a collation). BIGINT AUTO_INCREMENT ids, BIGINT millisecond
-- timestamps, BOOLEAN (TINYINT(1)) flags, VARBINARY(32) token hashes. Indexed strings are
-- VARCHAR, since TEXT cannot be a unique key without a prefix.

CREATE TABLE users (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- As registered, case preserved.
    username        VARCHAR(255) NOT NULL,
    -- Lowercased by the store (Unicode-aware), so uniqueness ignores case on every backend.
    username_key    VARCHAR(255) NOT NULL,
    nickname        VARCHAR(255) NOT NULL,
    avatar_url      TEXT,
    signature       TEXT,
    -- A PHC string; the store never sees a password.
    password_hash   TEXT         NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    CONSTRAINT users_username_key_unique UNIQUE (username_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE sessions (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    user_id         BIGINT       NOT NULL,
    -- SHA-256 of the bearer token.
    token_hash      VARBINARY(32) NOT NULL,
    device_name     VARCHAR(255) NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    expires_at_ms   BIGINT       NOT NULL,
    CONSTRAINT sessions_token_hash_unique UNIQUE (token_hash),
    INDEX sessions_by_user (user_id),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE friend_requests (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    from_id         BIGINT       NOT NULL,
    to_id           BIGINT       NOT NULL,
    greeting        TEXT,
    -- 'pending' | 'accepted' | 'rejected' | 'cancelled'
    status          VARCHAR(16)  NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    updated_at_ms   BIGINT       NOT NULL,
    -- Pending requests per user, both directions.
    INDEX friend_requests_incoming (to_id, status),
    INDEX friend_requests_outgoing (from_id, status),
    FOREIGN KEY (from_id) REFERENCES users (id) ON DELETE CASCADE,
    FOREIGN KEY (to_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

-- Two rows per friendship, one from each side, so "my friends" is one index range.
CREATE TABLE friendships (
    user_id         BIGINT       NOT NULL,
    friend_id       BIGINT       NOT NULL,
    since_ms        BIGINT       NOT NULL,
    PRIMARY KEY (user_id, friend_id),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    FOREIGN KEY (friend_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE blocks (
    user_id         BIGINT       NOT NULL,
    blocked_id      BIGINT       NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    PRIMARY KEY (user_id, blocked_id),
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE,
    FOREIGN KEY (blocked_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE conversations (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    -- 'direct' | 'group'
    kind            VARCHAR(16)  NOT NULL,
    -- The group's name; NULL for direct conversations.
    name            TEXT,
    -- "small_id:large_id" for direct conversations, so each pair has exactly one.
    direct_key      VARCHAR(64),
    -- The seq of the newest stream entry. Bumped in the same transaction that inserts the
    -- entries; this row is the lock point that keeps seqs gapless with several writers.
    last_seq        BIGINT       NOT NULL DEFAULT 0,
    last_activity_ms BIGINT      NOT NULL,
    created_at_ms   BIGINT       NOT NULL,
    CONSTRAINT conversations_direct_key_unique UNIQUE (direct_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE members (
    conversation_id BIGINT       NOT NULL,
    user_id         BIGINT       NOT NULL,
    -- 'member' | 'admin' | 'owner'
    role            VARCHAR(16)  NOT NULL,
    -- Every entry up to this seq counts as read by this member.
    read_seq        BIGINT       NOT NULL DEFAULT 0,
    joined_at_ms    BIGINT       NOT NULL,
    PRIMARY KEY (conversation_id, user_id),
    -- The conversation list of a user.
    INDEX members_by_user (user_id, conversation_id),
    FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
    FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;

CREATE TABLE messages (
    id              BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    conversation_id BIGINT       NOT NULL,
    seq             BIGINT       NOT NULL,
    sender_id       BIGINT       NOT NULL,
    -- The sender's idempotency key; NULL for entries the server made.
    client_msg_id   VARCHAR(255),
    -- 'text' | 'recall' | 'system'
    kind            VARCHAR(16)  NOT NULL,
    -- The text (blank once recalled), or JSON: {"target_id": n} for a recall, the notice
    -- for a system entry. MEDIUMTEXT: a notice naming many members outgrows TEXT's 64 KiB.
    body            MEDIUMTEXT   NOT NULL,
    recalled        BOOLEAN      NOT NULL DEFAULT FALSE,
    created_at_ms   BIGINT       NOT NULL,
    -- Also the index that sync and paging walk.
    CONSTRAINT messages_seq_unique UNIQUE (conversation_id, seq),
    -- Idempotent sends; NULLs (server entries) never collide.
    CONSTRAINT messages_client_msg_id_unique UNIQUE (conversation_id, sender_id, client_msg_id),
    FOREIGN KEY (conversation_id) REFERENCES conversations (id) ON DELETE CASCADE,
    FOREIGN KEY (sender_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_bin;
